"""Program eligibility: FSWP (with the 67-point grid), CEC, FSTP, settlement funds and Quebec."""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

import pytest

from shared.rules.document import (
    PROFILE_DOCUMENT_EXAMPLE,
    CertificateOfQualification,
    CredentialLevel,
    EducationCredential,
    JobOffer,
    LanguageTest,
    ProfileDocument,
    Spouse,
    WorkExperience,
)
from shared.rules.eligibility import (
    assess,
    eligible_programs,
    fsw_age_points,
    fsw_experience_points,
    fsw_grid,
    fsw_language_points,
    is_arranged_employment,
    settlement_funds_required,
)
from shared.rules.factors import Clb, Language

AS_OF = date(2026, 3, 1)


def doc(**changes: Any) -> ProfileDocument:
    return ProfileDocument.model_validate(copy.deepcopy(PROFILE_DOCUMENT_EXAMPLE) | changes)


def work(noc: str, start: date, end: date | None = None, **changes: Any) -> WorkExperience:
    fields = {
        "country": "CA",
        "hours_per_week": 30.0,
        "self_employed": False,
        "while_full_time_student": False,
    }
    return WorkExperience(noc_code=noc, teer=int(noc[1]), start=start, end=end, **(fields | changes))


def celpip(
    listening: int, reading: int, writing: int, speaking: int, taken_on: date = date(2025, 6, 1)
) -> LanguageTest:
    return LanguageTest(
        test="CELPIP_G",
        taken_on=taken_on,
        listening=listening,
        reading=reading,
        writing=writing,
        speaking=speaking,
    )


def offer(noc: str = "21231", **changes: Any) -> JobOffer:
    fields = {
        "employer": "Maple Software Inc.",
        "full_time": True,
        "non_seasonal": True,
        "duration_months": None,
        "lmia_or_exempt": True,
        "canadian_armed_forces": False,
    }
    return JobOffer(noc_code=noc, teer=int(noc[1]), **(fields | changes))


def credential(level: CredentialLevel, years: float, canadian: bool = True) -> EducationCredential:
    return EducationCredential(
        level=level,
        program_years=years,
        completed_on=date(2015, 6, 1),
        country="CA" if canadian else "IN",
        canadian=canadian,
    )


# --- the example and the FSW grid ----------------------------------------------------------------------


def test_the_example_candidate_is_fsw_eligible_with_72_points() -> None:
    assessments = assess(doc(), AS_OF)
    assert assessments["fsw"].eligible and assessments["fsw"].reasons == []
    assert assessments["fsw"].points == 72
    assert not assessments["cec"].eligible and assessments["cec"].points is None
    assert not assessments["fst"].eligible
    assert eligible_programs(doc(), AS_OF) == ["fsw"]


def test_the_example_grid_factor_by_factor() -> None:
    grid = fsw_grid(doc(), AS_OF)
    assert (grid.language, grid.education, grid.experience, grid.age) == (24, 21, 15, 12)
    assert (grid.arranged_employment, grid.adaptability) == (0, 0)


@pytest.mark.parametrize(
    ("levels", "points"),
    [
        ({"en": Clb(9, 9, 9, 9)}, 24),
        ({"en": Clb(10, 12, 9, 9)}, 24),
        ({"en": Clb(8, 8, 8, 8)}, 20),
        ({"en": Clb(7, 7, 7, 7)}, 16),
        (
            {"en": Clb(9, 8, 7, 6)},
            15,
        ),  # an ability below 7 earns nothing (and makes the candidate ineligible)
        ({"en": Clb(7, 7, 7, 7), "fr": Clb(5, 5, 5, 5)}, 20),  # second language CLB 5+ in all four: +4
        ({"en": Clb(7, 7, 7, 7), "fr": Clb(5, 5, 5, 4)}, 16),
        ({"en": Clb(7, 7, 7, 7), "fr": Clb(9, 9, 9, 6)}, 20),  # French is higher but not CLB 7 in all four
        ({}, 0),
    ],
)
def test_fsw_language_points(levels: dict[Language, Clb], points: int) -> None:
    assert fsw_language_points(levels) == points


@pytest.mark.parametrize(
    ("credentials", "points"),
    [
        ([credential("doctoral", 4)], 25),
        ([credential("masters", 2)], 23),
        ([credential("professional_degree", 4)], 23),
        ([credential("bachelors", 4), credential("one_year", 1)], 22),
        ([credential("bachelors", 3)], 21),
        ([credential("two_year", 2)], 19),
        ([credential("one_year", 1)], 15),
        ([credential("secondary", 4)], 5),
        ([credential("bachelors", 4, canadian=False)], 0),  # foreign without an ECA
    ],
)
def test_fsw_education_points(credentials: list[EducationCredential], points: int) -> None:
    assert fsw_grid(doc(education=credentials), AS_OF).education == points


@pytest.mark.parametrize(
    ("years", "points"), [(0, 0), (1, 9), (2, 11), (3, 11), (4, 13), (5, 13), (6, 15), (9, 15)]
)
def test_fsw_experience_points(years: int, points: int) -> None:
    assert fsw_experience_points(years) == points


def test_fsw_experience_counts_skilled_work_in_the_last_10_years() -> None:
    jobs = [work("21231", date(2022, 1, 1), date(2024, 12, 31), country="IN")]  # 3 years abroad
    assert fsw_grid(doc(work_experience=jobs), AS_OF).experience == 11


@pytest.mark.parametrize(
    ("age", "points"),
    [(17, 0), (18, 12), (35, 12), (36, 11), (37, 10), (38, 9), (39, 8), (40, 7), (41, 6), (42, 5), (43, 4),
     (44, 3), (45, 2), (46, 1), (47, 0)],
)  # fmt: skip
def test_fsw_age_points(age: int, points: int) -> None:
    assert fsw_age_points(age) == points


def test_fsw_age_is_whole_years_on_the_as_of_day() -> None:
    born = {"date_of_birth": "1990-03-02"}
    assert fsw_grid(doc(**born), date(2026, 3, 1)).age == 12  # still 35
    assert fsw_grid(doc(**born), date(2026, 3, 2)).age == 11  # 36 today


@pytest.mark.parametrize(
    ("job_offer", "points"),
    [
        (offer(), 10),
        (offer(duration_months=12), 10),
        (offer(duration_months=11), 0),
        (offer(full_time=False), 0),
        (offer(non_seasonal=False), 0),
        (offer(lmia_or_exempt=False), 0),
        (offer("44101"), 0),  # TEER 4
        (None, 0),
    ],
)
def test_fsw_arranged_employment(job_offer: JobOffer | None, points: int) -> None:
    assert is_arranged_employment(job_offer) is (points == 10)
    assert fsw_grid(doc(job_offer=job_offer), AS_OF).arranged_employment == points


def married(spouse_changes: dict[str, Any], **changes: Any) -> ProfileDocument:
    spouse = {"accompanying": True, "canadian_citizen_or_pr": False} | spouse_changes
    return doc(marital_status="married", family_size=2, spouse=Spouse.model_validate(spouse), **changes)


@pytest.mark.parametrize(
    ("candidate", "points"),
    [
        (doc(relative_in_canada=True), 5),
        (doc(sibling_in_canada=True), 5),
        (doc(education=[credential("two_year", 2)]), 5),  # own 2 years of study in Canada
        (doc(work_experience=[work("21231", date(2024, 1, 1), date(2024, 12, 31))]), 10),  # a year in Canada
        (doc(job_offer=offer()), 5),
        (married({"language_tests": [celpip(4, 4, 4, 4)]}), 5),
        (married({"language_tests": [celpip(4, 4, 4, 3)]}), 0),
        (married({"education": [credential("bachelors", 4)]}), 5),
        (married({"work_experience": [work("21231", date(2024, 1, 1), date(2024, 12, 31))]}), 5),
        (married({"accompanying": False, "education": [credential("bachelors", 4)]}), 0),
        (married({"canadian_citizen_or_pr": True, "education": [credential("bachelors", 4)]}), 0),
        (doc(relative_in_canada=True, job_offer=offer(), education=[credential("two_year", 2)]), 10),  # cap
    ],
)
def test_fsw_adaptability(candidate: ProfileDocument, points: int) -> None:
    assert fsw_grid(candidate, AS_OF).adaptability == points


# --- FSWP requirements and reasons ----------------------------------------------------------------------


def fsw(candidate: ProfileDocument, as_of: date = AS_OF) -> tuple[bool, list[str]]:
    assessment = assess(candidate, as_of)["fsw"]
    return assessment.eligible, assessment.reasons


def test_fsw_needs_a_continuous_year_in_one_skilled_occupation() -> None:
    split = [
        work("21231", date(2024, 1, 1), date(2024, 6, 30), country="IN"),
        work("21232", date(2024, 7, 1), date(2024, 12, 31), country="IN"),
    ]
    eligible, reasons = fsw(doc(work_experience=split))
    assert not eligible
    assert reasons[0] == (
        "You need 1 year (1,560 hours) of continuous full-time work, or the part-time equivalent, in one "
        "TEER 0-3 occupation in the last 10 years; your longest is 789 hours (NOC 21232)."
    )


def test_fsw_experience_must_be_in_the_last_10_years() -> None:
    old = [work("21231", date(2010, 1, 1), date(2016, 2, 29), country="IN")]
    eligible, reasons = fsw(doc(work_experience=old))
    assert not eligible
    assert reasons[0].endswith("your longest is 0 hours (NOC 21231).")


def test_fsw_needs_clb_7_in_all_four() -> None:
    eligible, reasons = fsw(doc(language_tests=[celpip(9, 9, 9, 6)]))
    assert not eligible
    assert reasons[0] == (
        "You need CLB 7 in all four abilities in English or French, from a test taken in the last 2 years; "
        "your levels (listening/reading/writing/speaking) are English 9/9/9/6."
    )


def test_fsw_language_can_be_met_in_french() -> None:
    tcf = LanguageTest(
        test="TCF_CANADA", taken_on=date(2025, 6, 1), listening=460, reading=460, writing=10, speaking=10
    )
    eligible, _ = fsw(doc(language_tests=[celpip(9, 9, 9, 6), tcf]))
    assert eligible


@pytest.mark.parametrize(("declared", "eligible"), [(None, True), ("french", True), ("english", False)])
def test_fsw_language_is_met_in_the_declared_first_official_language(
    declared: str | None, eligible: bool
) -> None:
    # English CLB 6 in speaking, French NCLC 7 in all four: only French can be the first language.
    tcf = LanguageTest(
        test="TCF_CANADA", taken_on=date(2025, 6, 1), listening=460, reading=460, writing=10, speaking=10
    )
    candidate = doc(language_tests=[celpip(9, 9, 9, 6), tcf], first_official_language=declared)
    met, reasons = fsw(candidate)
    assert met is eligible
    if not eligible:
        assert reasons[0].startswith(
            "You need CLB 7 in all four abilities in your first official language (English)"
        )


def test_a_declared_language_without_a_valid_result_leaves_the_choice_open() -> None:
    candidate = doc(first_official_language="french")  # an English result only
    assert fsw(candidate)[0]


def test_the_fsw_grid_scores_the_declared_first_language() -> None:
    english, french = Clb(10, 10, 10, 10), Clb(7, 7, 7, 7)
    levels: dict[Language, Clb] = {"en": english, "fr": french}
    assert fsw_language_points(levels) == 24 + 4
    assert fsw_language_points(levels, "fr") == 16 + 4


def test_an_expired_test_is_named_in_the_reason() -> None:
    eligible, reasons = fsw(doc(), as_of=date(2027, 2, 8))  # the example's IELTS of 2025-02-08 is 2 years old
    assert not eligible
    assert "your IELTS_GENERAL result of 2025-02-08 expired on 2027-02-08; take a new test." in reasons[0]


def test_fsw_needs_an_eca_for_foreign_education() -> None:
    eligible, reasons = fsw(doc(education=[credential("bachelors", 4, canadian=False)]))
    assert not eligible
    assert any(
        reason.startswith("Add a completed secondary or post-secondary credential") for reason in reasons
    )


def test_fsw_needs_67_grid_points() -> None:
    # Age 45 (2), CLB 7 (16), secondary (5), 1 year (9), and 5 for studying 2+ years in Canada: 37,
    # with every other minimum met.
    candidate = doc(
        date_of_birth="1980-06-01",
        language_tests=[celpip(7, 7, 7, 7)],
        education=[credential("secondary", 4)],
        work_experience=[work("21231", date(2024, 1, 1), date(2024, 12, 31), country="IN")],
    )
    assessment = assess(candidate, AS_OF)["fsw"]
    assert not assessment.eligible and assessment.points == 37
    assert assessment.reasons == [
        "Your FSW selection grid score is 37/100 and the pass mark is 67: better language results, an ECA "
        "for more education, or a job offer add points."
    ]


def test_fsw_needs_settlement_funds() -> None:
    eligible, reasons = fsw(doc(settlement_funds_cad=15_262))
    assert not eligible
    assert reasons == [
        "Show at least $15,263 CAD in settlement funds for a family of 1 (you have $15,262), unless you are "
        "authorized to work in Canada and have a valid job offer."
    ]
    assert fsw(doc(settlement_funds_cad=15_263)) == (True, [])


def test_no_funds_needed_when_authorized_to_work_with_a_valid_offer() -> None:
    assert fsw(doc(settlement_funds_cad=0, authorized_to_work_in_canada=True, job_offer=offer())) == (
        True,
        [],
    )
    assert not fsw(doc(settlement_funds_cad=0, authorized_to_work_in_canada=False, job_offer=offer()))[0]
    assert not fsw(doc(settlement_funds_cad=0, authorized_to_work_in_canada=True, job_offer=offer("44101")))[
        0
    ]


@pytest.mark.parametrize(
    ("family_size", "required"),
    [(1, 15_263), (2, 19_001), (3, 23_360), (4, 28_362), (5, 32_168), (6, 36_280), (7, 40_392), (8, 44_504),
     (10, 52_728)],
)  # fmt: skip
def test_settlement_funds_table(family_size: int, required: int) -> None:
    assert settlement_funds_required(family_size, date(2025, 7, 7)) == required


QUEBEC_REASON = (
    "You plan to live in Quebec, which selects its own skilled workers: the federal programs need you "
    "to plan to live in another province or territory."
)


# --- CEC ------------------------------------------------------------------------------------------------


def cec(candidate: ProfileDocument) -> tuple[bool, list[str]]:
    assessment = assess(candidate, AS_OF)["cec"]
    return assessment.eligible, assessment.reasons


CANADIAN_YEAR_TEER_1 = work("21231", date(2024, 1, 1), date(2024, 12, 31))
CANADIAN_YEAR_TEER_2 = work("72410", date(2024, 1, 1), date(2024, 12, 31))


def test_cec_with_a_year_of_teer_1_work_and_clb_7() -> None:
    assert cec(doc(work_experience=[CANADIAN_YEAR_TEER_1], language_tests=[celpip(7, 7, 7, 7)])) == (True, [])


def test_cec_teer_0_or_1_work_needs_clb_7() -> None:
    eligible, [reason] = cec(doc(work_experience=[CANADIAN_YEAR_TEER_1], language_tests=[celpip(6, 7, 7, 7)]))
    assert not eligible
    assert reason.startswith("You need CLB 7 in all four abilities for TEER 0 or 1 experience")


def test_cec_teer_2_or_3_work_needs_clb_5() -> None:
    assert cec(doc(work_experience=[CANADIAN_YEAR_TEER_2], language_tests=[celpip(5, 5, 5, 5)])) == (True, [])
    eligible, [reason] = cec(doc(work_experience=[CANADIAN_YEAR_TEER_2], language_tests=[celpip(5, 5, 5, 4)]))
    assert not eligible and reason.startswith("You need CLB 5 in all four abilities in English or French")


def test_cec_half_teer_1_half_teer_2_needs_clb_7() -> None:
    mixed = [
        work("21231", date(2024, 1, 1), date(2024, 6, 30)),
        work("72410", date(2024, 7, 1), date(2024, 12, 31)),
    ]
    assert not cec(doc(work_experience=mixed, language_tests=[celpip(5, 5, 5, 5)]))[0]
    assert cec(doc(work_experience=mixed, language_tests=[celpip(7, 7, 7, 7)]))[0]


def test_cec_counts_only_the_last_3_years() -> None:
    # The window of 2026-03-01 starts on 2023-03-02. 52 weeks from that day is exactly 1,560 hours.
    first_52_weeks = work("21231", date(2023, 3, 2), date(2024, 2, 28))
    assert cec(doc(work_experience=[first_52_weeks], language_tests=[celpip(9, 9, 9, 9)])) == (True, [])
    a_day_earlier = work("21231", date(2023, 3, 1), date(2024, 2, 27))
    eligible, [reason] = cec(doc(work_experience=[a_day_earlier], language_tests=[celpip(9, 9, 9, 9)]))
    assert not eligible and reason.endswith("you have 1,556 hours.")


@pytest.mark.parametrize(
    "changes", [{"self_employed": True}, {"while_full_time_student": True}, {"country": "US"}]
)
def test_cec_excludes_self_employment_student_work_and_work_abroad(changes: dict[str, Any]) -> None:
    job = work("21231", date(2024, 1, 1), date(2024, 12, 31), **changes)
    eligible, reasons = cec(doc(work_experience=[job], language_tests=[celpip(9, 9, 9, 9)]))
    assert not eligible
    assert reasons[0].startswith("You need 1 year (1,560 hours) of skilled (TEER 0-3) work in Canada")


# --- FSTP -----------------------------------------------------------------------------------------------


def fst(candidate: ProfileDocument) -> tuple[bool, list[str]]:
    assessment = assess(candidate, AS_OF)["fst"]
    return assessment.eligible, assessment.reasons


TWO_YEARS_AS_MECHANIC = work("72410", date(2023, 1, 1), date(2024, 12, 31), country="PH")
MECHANIC_CERTIFICATE = CertificateOfQualification(province="ON", noc_code="72410", issued_on=date(2025, 3, 1))


def trades_person(**changes: Any) -> ProfileDocument:
    fields = {
        "work_experience": [TWO_YEARS_AS_MECHANIC],
        "certificate_of_qualification": MECHANIC_CERTIFICATE,
        "language_tests": [celpip(5, 4, 4, 5)],
    }
    return doc(**(fields | changes))


def test_fst_with_two_years_in_a_trade_a_certificate_and_the_minimum_language() -> None:
    assert fst(trades_person()) == (True, [])


def test_fst_a_valid_offer_in_the_trade_replaces_the_certificate() -> None:
    assert fst(trades_person(certificate_of_qualification=None, job_offer=offer("72410"))) == (True, [])


def test_fst_the_offer_or_certificate_must_be_in_the_trade() -> None:
    certificate = CertificateOfQualification(province="ON", noc_code="72310", issued_on=date(2025, 3, 1))
    eligible, [reason] = fst(
        trades_person(certificate_of_qualification=certificate, job_offer=offer("72300"))
    )
    assert not eligible
    assert reason == (
        "You need a valid full-time job offer of at least 1 year, or a Canadian certificate of "
        "qualification, in your trade (NOC 72410)."
    )


def test_fst_needs_two_years_in_the_last_5() -> None:
    short = work("72410", date(2023, 1, 8), date(2024, 12, 31), country="PH")  # one week short
    eligible, [reason] = fst(trades_person(work_experience=[short]))
    assert not eligible and "your most is 3,103 hours (NOC 72410)" in reason


def test_fst_experience_outside_the_trade_groups_does_not_count() -> None:
    eligible, [reason] = fst(trades_person(work_experience=[work("72600", date(2020, 1, 1), None)]))
    assert not eligible and reason.endswith("you have none.")


@pytest.mark.parametrize(
    ("levels", "eligible"), [((5, 4, 4, 5), True), ((4, 4, 4, 5), False), ((5, 3, 4, 5), False)]
)
def test_fst_language_5_for_speaking_and_listening_4_for_reading_and_writing(
    levels: tuple[int, int, int, int], eligible: bool
) -> None:
    assert fst(trades_person(language_tests=[celpip(*levels)]))[0] is eligible


def test_fst_needs_funds_unless_authorized_with_a_trade_offer() -> None:
    assert not fst(trades_person(settlement_funds_cad=0))[0]
    exempt = trades_person(
        settlement_funds_cad=0, authorized_to_work_in_canada=True, job_offer=offer("72410")
    )
    assert fst(exempt) == (True, [])


# --- Quebec ----------------------------------------------------------------------------------------------


def test_quebec_excludes_every_program() -> None:
    candidate = trades_person(
        intends_to_reside_in_quebec=True,
        work_experience=[TWO_YEARS_AS_MECHANIC, CANADIAN_YEAR_TEER_2],
        language_tests=[celpip(9, 9, 9, 9)],
    )
    outside_quebec = candidate.model_copy(update={"intends_to_reside_in_quebec": False})
    assert eligible_programs(outside_quebec, AS_OF) == ["fsw", "cec", "fst"]
    assessments = assess(candidate, AS_OF)
    for program in ("fsw", "cec", "fst"):
        assert assessments[program].eligible is False
        assert assessments[program].reasons == [QUEBEC_REASON]
