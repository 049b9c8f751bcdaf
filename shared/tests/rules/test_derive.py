"""derive_factors / derive_profile: the CRS factors and the bundle the services store."""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

import pytest

from shared.rules.crs import calculate
from shared.rules.derive import arranged_employment, derive_factors, derive_profile
from shared.rules.document import (
    PROFILE_DOCUMENT_EXAMPLE,
    CertificateOfQualification,
    EducationCredential,
    JobOffer,
    LanguageTest,
    ProfileDocument,
    Spouse,
    WorkExperience,
)
from shared.rules.factors import (
    CanadianEducation,
    Clb,
    CrsFactors,
    EducationLevel,
    LanguageAbility,
    SpouseFactors,
)

AS_OF = date(2026, 3, 1)


def doc(**changes: Any) -> ProfileDocument:
    return ProfileDocument.model_validate(copy.deepcopy(PROFILE_DOCUMENT_EXAMPLE) | changes)


def offer(noc: str, **changes: Any) -> JobOffer:
    fields = {
        "employer": "Maple Software Inc.",
        "full_time": True,
        "non_seasonal": True,
        "duration_months": 24,
        "lmia_or_exempt": True,
        "canadian_armed_forces": False,
    }
    return JobOffer(noc_code=noc, teer=int(noc[1]), **(fields | changes))


def test_the_example_candidate() -> None:
    assert derive_factors(doc(), AS_OF, nominated=False) == CrsFactors(
        age=31,
        education_level=EducationLevel.BACHELORS,
        canadian_education=CanadianEducation.NONE,
        # IELTS listening 8.5, reading 7.5, writing 7.0, speaking 7.0
        first_language=LanguageAbility("en", Clb(speaking=9, listening=10, reading=9, writing=9)),
        second_language=None,
        canadian_work_years=0,
        foreign_work_years=8,  # 2017-07-01 to 2026-03-01 at 40 h/week, capped at 30
        certificate_of_qualification=False,
        provincial_nomination=False,
        sibling_in_canada=False,
        spouse=None,
        arranged_employment="none",
    )


def test_age_is_whole_years_on_the_as_of_day() -> None:
    assert derive_factors(doc(), date(2026, 3, 13), nominated=False).age == 31
    assert derive_factors(doc(), date(2026, 3, 14), nominated=False).age == 32


def test_nomination_and_sibling_pass_through() -> None:
    factors = derive_factors(doc(sibling_in_canada=True), AS_OF, nominated=True)
    assert factors.provincial_nomination is True and factors.sibling_in_canada is True


def test_expired_results_and_ecas_drop_out_as_time_passes() -> None:
    later = derive_factors(doc(), date(2030, 1, 20), nominated=False)  # ECA of 2025-01-20 is 5 years old
    assert later.education_level == EducationLevel.LESS_THAN_SECONDARY
    assert later.first_language is None  # IELTS of 2025-02-08 expired on 2027-02-08


def test_canadian_work_and_education() -> None:
    candidate = doc(
        education=[
            EducationCredential(
                level="masters", program_years=1, completed_on=date(2022, 5, 1), country="CA", canadian=True
            )
        ],
        work_experience=[
            WorkExperience(
                noc_code="21231",
                teer=1,
                country="CA",
                start=date(2022, 6, 1),
                end=None,
                hours_per_week=37.5,
                self_employed=False,
                while_full_time_student=False,
            )
        ],
    )
    factors = derive_factors(candidate, AS_OF, nominated=False)
    assert factors.education_level == EducationLevel.MASTERS
    assert factors.canadian_education == CanadianEducation.THREE_YEAR_OR_LONGER
    assert (factors.canadian_work_years, factors.foreign_work_years) == (3, 0)


def test_a_certificate_counts_once_issued() -> None:
    certificate = CertificateOfQualification(province="BC", noc_code="72310", issued_on=date(2026, 3, 2))
    assert (
        derive_factors(
            doc(certificate_of_qualification=certificate), AS_OF, False
        ).certificate_of_qualification
        is False
    )
    assert derive_factors(
        doc(certificate_of_qualification=certificate), date(2026, 3, 2), False
    ).certificate_of_qualification


@pytest.mark.parametrize(
    ("noc", "counts"),
    [
        ("72310", True),  # carpenters: an FSTP trade (major group 72)
        ("62200", True),  # chefs
        ("63210", True),  # hairstylists and barbers: listed in §1.8, not an FSTP trade
        ("22312", True),  # industrial instrument technicians: listed in §1.8
        ("21231", False),  # software engineers: no trade, whatever the certificate says
        ("72600", False),  # air pilots: sub-major group 726 is not a trade
        ("31301", False),  # registered nurses
    ],
)
def test_a_certificate_counts_only_in_a_listed_trade(noc: str, counts: bool) -> None:
    certificate = CertificateOfQualification(province="BC", noc_code=noc, issued_on=date(2025, 1, 2))
    factors = derive_factors(doc(certificate_of_qualification=certificate), AS_OF, False)
    assert factors.certificate_of_qualification is counts


# --- spouse ------------------------------------------------------------------------------------------------

SPOUSE_CELPIP = LanguageTest(
    test="CELPIP_G", taken_on=date(2025, 1, 1), listening=9, reading=9, writing=9, speaking=9
)
SPOUSE_TCF = LanguageTest(
    test="TCF_CANADA", taken_on=date(2025, 6, 1), listening=460, reading=460, writing=10, speaking=6
)


def married(**spouse: Any) -> ProfileDocument:
    fields = {"accompanying": True, "canadian_citizen_or_pr": False} | spouse
    return doc(marital_status="married", family_size=2, spouse=Spouse.model_validate(fields))


def test_an_accompanying_foreign_spouse_counts() -> None:
    bachelor = EducationCredential(
        level="bachelors", program_years=4, completed_on=date(2015, 1, 1), country="CA", canadian=True
    )
    factors = derive_factors(married(education=[bachelor], language_tests=[SPOUSE_CELPIP]), AS_OF, False)
    assert factors.spouse == SpouseFactors(
        education_level=EducationLevel.BACHELORS, clb=Clb(9, 9, 9, 9), canadian_work_years=0
    )


def test_the_spouse_best_valid_result_counts_in_either_language() -> None:
    factors = derive_factors(married(language_tests=[SPOUSE_CELPIP, SPOUSE_TCF]), AS_OF, False)
    assert factors.spouse is not None
    # The older CELPIP (CLB 9 x 4: 20 spouse points) beats the newer TCF (5/7/7/7: 9 points).
    assert factors.spouse.clb == Clb(speaking=9, listening=9, reading=9, writing=9)
    # Once the CELPIP has expired (2027-01-01), the TCF counts.
    later = derive_factors(married(language_tests=[SPOUSE_CELPIP, SPOUSE_TCF]), date(2027, 1, 1), False)
    assert later.spouse is not None
    assert later.spouse.clb == Clb(speaking=5, listening=7, reading=7, writing=7)


def test_a_spouse_without_a_valid_result_has_no_clb() -> None:
    factors = derive_factors(married(language_tests=[SPOUSE_CELPIP]), date(2027, 1, 1), False)
    assert factors.spouse is not None and factors.spouse.clb is None


@pytest.mark.parametrize("spouse", [{"accompanying": False}, {"canadian_citizen_or_pr": True}])
def test_candidate_is_scored_single_otherwise(spouse: dict[str, bool]) -> None:
    assert derive_factors(married(**spouse), AS_OF, False).spouse is None


# --- arranged employment (rule versions before 2025-03-25) ------------------------------------------------


@pytest.mark.parametrize(
    ("job_offer", "kind"),
    [
        (offer("00012"), "teer_0_major_00"),
        (offer("10010"), "other_skilled"),  # TEER 0 outside major group 00
        (offer("21231"), "other_skilled"),
        (offer("72410"), "other_skilled"),
        (offer("33102"), "other_skilled"),
        (offer("44101"), "none"),  # TEER 4
        (offer("21231", full_time=False), "none"),
        (offer("21231", lmia_or_exempt=False), "none"),
        (offer("21231", duration_months=6), "none"),
        (None, "none"),
    ],
)
def test_arranged_employment(job_offer: JobOffer | None, kind: str) -> None:
    assert arranged_employment(job_offer) == kind
    assert derive_factors(doc(job_offer=job_offer), AS_OF, False).arranged_employment == kind


# --- derive_profile --------------------------------------------------------------------------------------


def test_derive_profile_bundles_what_the_services_need() -> None:
    french = LanguageTest(
        test="TEF_CANADA", taken_on=date(2025, 9, 1), listening=434, reading=434, writing=428, speaking=456
    )
    candidate = doc(
        language_tests=[*PROFILE_DOCUMENT_EXAMPLE["language_tests"], french],
        job_offer=offer("21232"),
    )
    derived = derive_profile(candidate, AS_OF, nominated=True)
    assert derived.factors == derive_factors(candidate, AS_OF, nominated=True)
    assert derived.factors.second_language == LanguageAbility("fr", Clb(7, 7, 7, 7))
    assert derived.programs == ["fsw"]
    assert derived.categories == ["french"]
    assert derived.lowest_clb == {"en": 9, "fr": 7}
    assert derived.noc_codes == ["21231", "21232"]
    assert derived.assessments["fsw"].points == 24 + 4 + 21 + 15 + 12 + 10 + 5


def test_no_program_means_no_category() -> None:
    french = LanguageTest(
        test="TEF_CANADA", taken_on=date(2025, 9, 1), listening=434, reading=434, writing=428, speaking=456
    )
    derived = derive_profile(
        doc(language_tests=[french], intends_to_reside_in_quebec=True), AS_OF, nominated=False
    )
    assert derived.programs == []
    assert derived.categories == []
    assert derived.assessments["fsw"].reasons[0].startswith("You plan to live in Quebec")


# --- first official language (issue 12) --------------------------------------------------------------

# Single, born 1997-01-15, bachelor's with an ECA, no work experience.
# IELTS General S 7.0 / L 5.5 / R 6.5 / W 7.5 -> CLB 9 / 6 / 8 / 10 (lowest 6);
# TCF Canada S 12 / L 458 / R 499 / W 16 -> NCLC 8 / 7 / 8 / 10 (lowest 7).
# Both are worth 97 first-language points, so only the whole CRS tells which order is better: with
# French first the lowest first-language level is 7, which opens education x language (13 points), and
# English second scores 16 instead of French second's 15.
BILINGUAL_IELTS = LanguageTest(
    test="IELTS_GENERAL", taken_on=date(2026, 6, 1), listening=5.5, reading=6.5, writing=7.5, speaking=7.0
)
BILINGUAL_TCF = LanguageTest(
    test="TCF_CANADA", taken_on=date(2026, 6, 1), listening=458, reading=499, writing=16, speaking=12
)
BILINGUAL_SCORED_ON = date(2026, 12, 4)  # age 29 (110 points) until the 30th birthday on 2027-01-15


def bilingual(first_official_language: str | None = None) -> ProfileDocument:
    return doc(
        date_of_birth="1997-01-15",
        education=[
            {
                "level": "bachelors",
                "program_years": 4,
                "completed_on": "2019-05-31",
                "country": "IN",
                "canadian": False,
                "eca": {"organization": "WES", "issued_on": "2025-01-20"},
            }
        ],
        language_tests=[BILINGUAL_IELTS, BILINGUAL_TCF],
        work_experience=[],
        first_official_language=first_official_language,
    )


def crs_of(candidate: ProfileDocument, on: date = BILINGUAL_SCORED_ON) -> int:
    return calculate(derive_factors(candidate, on, nominated=False)).total


def test_the_declared_first_official_language_counts() -> None:
    assert crs_of(bilingual("english")) == 392
    assert crs_of(bilingual("french")) == 406
    factors = derive_factors(bilingual("english"), BILINGUAL_SCORED_ON, nominated=False)
    assert factors.first_language == LanguageAbility("en", Clb(9, 6, 8, 10))  # speaking, listening, ...
    assert factors.second_language == LanguageAbility("fr", Clb(8, 7, 8, 10))


def test_undeclared_the_order_with_the_higher_crs_counts() -> None:
    factors = derive_factors(bilingual(), BILINGUAL_SCORED_ON, nominated=False)
    assert factors.first_language is not None and factors.first_language.language == "fr"
    assert crs_of(bilingual()) == 406


def test_the_example_holds_while_the_candidate_is_29() -> None:
    # The 392 / 406 of the example need 110 age points: on the 30th birthday both lose 5.
    assert crs_of(bilingual("english"), date(2027, 1, 14)) == 392
    assert crs_of(bilingual("english"), date(2027, 1, 15)) == 387
    assert crs_of(bilingual("french"), date(2027, 1, 15)) == 401


def test_a_declared_language_without_a_valid_result_leaves_the_other_first() -> None:
    english_only = bilingual("french").model_copy(update={"language_tests": [BILINGUAL_IELTS]})
    factors = derive_factors(english_only, BILINGUAL_SCORED_ON, nominated=False)
    assert factors.first_language is not None and factors.first_language.language == "en"
    assert factors.second_language is None
