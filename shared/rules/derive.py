"""From a profile document to what scoring, pool entry and searches need, as of one day.

Everything here is a function of (document, as_of), so replaying an event with its own date gives
the facts the candidate had then: ages, expired tests and ECAs, and the windows of work experience.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date
from typing import Literal

from shared.rules.asof import AsOf
from shared.rules.categories import eligible_categories_of
from shared.rules.crs import CrsInputError, calculate, rules_for_day
from shared.rules.document import JobOffer, ProfileDocument
from shared.rules.eligibility import ProgramAssessment, assess_facts, is_arranged_employment, programs_passed
from shared.rules.experience import is_certificate_trade
from shared.rules.factors import CrsFactors, Language, LanguageAbility, SpouseFactors
from shared.rules.language import first_language_order

ArrangedEmployment = Literal["none", "teer_0_major_00", "other_skilled"]
SENIOR_MANAGERS_MAJOR_GROUP = "00"  # NOC 2021 major group 00: the 200-point job offers before 2025-03-25


def derive_factors(doc: ProfileDocument, as_of: date, nominated: bool) -> CrsFactors:
    return _factors(AsOf(doc, as_of), nominated)


def _factors(facts: AsOf, nominated: bool) -> CrsFactors:
    first_language, second_language = _official_languages(facts)
    return _factors_with(facts, first_language, second_language, nominated)


def _factors_with(
    facts: AsOf,
    first_language: LanguageAbility | None,
    second_language: LanguageAbility | None,
    nominated: bool = False,
) -> CrsFactors:
    doc, as_of = facts.doc, facts.as_of
    certificate = doc.certificate_of_qualification
    return CrsFactors(
        age=facts.age,
        education_level=facts.education_level,
        canadian_education=facts.canadian_education,
        first_language=first_language,
        second_language=second_language,
        canadian_work_years=facts.canadian_work_years,
        foreign_work_years=facts.foreign_work_years,
        certificate_of_qualification=(
            certificate is not None
            and certificate.issued_on <= as_of
            and is_certificate_trade(certificate.noc_code)
        ),
        provincial_nomination=nominated,
        sibling_in_canada=doc.sibling_in_canada,
        spouse=_spouse_factors(facts),
        arranged_employment=arranged_employment(doc.job_offer),
    )


def _official_languages(facts: AsOf) -> tuple[LanguageAbility | None, LanguageAbility | None]:
    """(first, second) official language, each with the levels of its best valid result.

    The candidate's declared `first_official_language` counts when it has a valid result. Otherwise,
    with valid results in both languages, the order that gives the higher CRS counts (the first
    language's lowest level opens the transferability columns, so equal first-language points do not
    make the two orders equal); a tie goes to English.
    """
    by_points = first_language_order(facts.levels)
    if len(by_points) < 2:
        return (by_points[0] if by_points else None), None
    declared = facts.declared_first_language
    if declared is not None:
        first, second = sorted(by_points, key=lambda ability: ability.language != declared)
        return first, second
    return _higher_crs_order(facts, by_points[0], by_points[1])


def _higher_crs_order(
    facts: AsOf, one: LanguageAbility, other: LanguageAbility
) -> tuple[LanguageAbility, LanguageAbility]:
    english, french = (one, other) if one.language == "en" else (other, one)
    base = _factors_with(facts, english, french)
    rules = rules_for_day(None, facts.as_of)
    try:
        english_first = calculate(base, rules).total
        swapped = dataclasses.replace(base, first_language=french, second_language=english)
        french_first = calculate(swapped, rules).total
    except CrsInputError:  # not scorable either way (e.g. a day before the birth): keep the points order
        return one, other
    return (french, english) if french_first > english_first else (english, french)


def spouse_factors(doc: ProfileDocument, as_of: date) -> SpouseFactors | None:
    """Spouse factors, or None when the candidate is scored as single (§1)."""
    return _spouse_factors(AsOf(doc, as_of))


def _spouse_factors(facts: AsOf) -> SpouseFactors | None:
    if facts.spouse is None:
        return None
    # The spouse's language factor has no first/second split: their most recent valid result counts.
    return SpouseFactors(
        education_level=facts.spouse_education_level,
        clb=facts.spouse_clb,
        canadian_work_years=facts.spouse_canadian_work_years,
    )


def arranged_employment(offer: JobOffer | None) -> ArrangedEmployment:
    """The job-offer factor of the rule versions before 2025-03-25 (200 or 50 points)."""
    if offer is None or not is_arranged_employment(offer):  # a valid offer in TEER 0 to 3
        return "none"
    if offer.teer == 0 and offer.noc_code.startswith(SENIOR_MANAGERS_MAJOR_GROUP):
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


def derive_profile(
    doc: ProfileDocument, as_of: date, nominated: bool, *, explain: bool = True
) -> DerivedProfile:
    """Everything scoring, pool entry and searches need of `doc` on `as_of`.

    `explain=False` (scoring): the assessments' unmet requirements are listed as
    `eligibility.UNEXPLAINED`, not as sentences; everything else is the same.
    """
    # One set of facts for the whole derivation: the language levels, work hours, education and
    # spouse facts are each computed once, however many rules read them.
    return derive_facts(AsOf(doc, as_of), nominated, explain=explain)


def derive_facts(facts: AsOf, nominated: bool, *, explain: bool = True) -> DerivedProfile:
    """`derive_profile` over facts the caller keeps (to read more of them afterwards)."""
    doc = facts.doc
    assessments = assess_facts(facts, explain=explain)
    programs = programs_passed(assessments)
    return DerivedProfile(
        factors=_factors(facts, nominated),
        programs=programs,
        categories=eligible_categories_of(facts, programs=programs),
        lowest_clb={language: clb.lowest() for language, clb in facts.levels.items()},
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
