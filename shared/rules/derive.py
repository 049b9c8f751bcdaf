"""From a profile document to what scoring, pool entry and searches need, as of one day.

Everything here is a function of (document, as_of), so replaying an event with its own date gives
the facts the candidate had then: ages, expired tests and ECAs, and the windows of work experience.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

from shared.rules.categories import eligible_categories
from shared.rules.document import JobOffer, ProfileDocument, accompanying_spouse, whole_years_between
from shared.rules.education import canadian_education, education_level
from shared.rules.eligibility import ProgramAssessment, assess, is_arranged_employment, programs_passed
from shared.rules.experience import canadian_work_years, foreign_work_years
from shared.rules.factors import CrsFactors, Language, SpouseFactors
from shared.rules.language import clb_of, lowest_clb_by_language, most_recent_valid, official_languages

ArrangedEmployment = Literal["none", "teer_0_major_00", "other_skilled"]


def derive_factors(doc: ProfileDocument, as_of: date, nominated: bool) -> CrsFactors:
    first_language, second_language = official_languages(doc.language_tests, as_of)
    certificate = doc.certificate_of_qualification
    return CrsFactors(
        age=whole_years_between(doc.date_of_birth, as_of),
        education_level=education_level(doc.education, as_of),
        canadian_education=canadian_education(doc.education, as_of),
        first_language=first_language,
        second_language=second_language,
        canadian_work_years=canadian_work_years(doc.work_experience, as_of),
        foreign_work_years=foreign_work_years(doc.work_experience, as_of),
        certificate_of_qualification=certificate is not None and certificate.issued_on <= as_of,
        provincial_nomination=nominated,
        sibling_in_canada=doc.sibling_in_canada,
        spouse=spouse_factors(doc, as_of),
        arranged_employment=arranged_employment(doc.job_offer),
    )


def spouse_factors(doc: ProfileDocument, as_of: date) -> SpouseFactors | None:
    """Spouse factors, or None when the candidate is scored as single (§1)."""
    spouse = accompanying_spouse(doc)
    if spouse is None:
        return None
    # The spouse's language factor has no first/second split: their most recent valid result counts.
    latest = most_recent_valid(spouse.language_tests, as_of)
    return SpouseFactors(
        education_level=education_level(spouse.education, as_of),
        clb=clb_of(latest) if latest is not None else None,
        canadian_work_years=canadian_work_years(spouse.work_experience, as_of),
    )


def arranged_employment(offer: JobOffer | None) -> ArrangedEmployment:
    """The job-offer factor of the rule versions before 2025-03-25 (200 or 50 points)."""
    if offer is None or not is_arranged_employment(offer):  # a valid offer in TEER 0 to 3
        return "none"
    if offer.teer == 0 and offer.noc_code.startswith("00"):  # NOC major group 00: senior managers
        return "teer_0_major_00"
    return "other_skilled"


@dataclass(frozen=True, slots=True)
class DerivedProfile:
    factors: CrsFactors
    programs: list[str]  # the programs the candidate is eligible for: "fsw", "cec", "fst"
    categories: list[str]  # draw categories in force on the as-of day that the candidate meets
    lowest_clb: dict[Language, int]  # per official language with a valid result
    noc_codes: list[str]  # occupations worked in, offered or certified, for provincial searches
    assessments: dict[str, ProgramAssessment]  # per program, with the reasons when not eligible


def derive_profile(doc: ProfileDocument, as_of: date, nominated: bool) -> DerivedProfile:
    assessments = assess(doc, as_of)
    programs = programs_passed(assessments)
    return DerivedProfile(
        factors=derive_factors(doc, as_of, nominated),
        programs=programs,
        categories=eligible_categories(doc, as_of, programs=programs),
        lowest_clb=lowest_clb_by_language(doc.language_tests, as_of),
        noc_codes=occupations(doc),
        assessments=assessments,
    )


def occupations(doc: ProfileDocument) -> list[str]:
    codes = {job.noc_code for job in doc.work_experience}
    if doc.job_offer is not None:
        codes.add(doc.job_offer.noc_code)
    if doc.certificate_of_qualification is not None:
        codes.add(doc.certificate_of_qualification.noc_code)
    return sorted(codes)
