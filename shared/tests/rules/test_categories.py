"""Draw categories: versions in force, the experience rule before and after 2026-02-18, French, military."""

from __future__ import annotations

import copy
from datetime import date, timedelta
from typing import Any

import pytest

from shared.rules.categories import (
    CATEGORY_CODES,
    CATEGORY_VERSIONS,
    ExperienceRule,
    categories_in_force,
    eligible_categories,
)
from shared.rules.document import (
    PROFILE_DOCUMENT_EXAMPLE,
    JobOffer,
    LanguageTest,
    ProfileDocument,
    WorkExperience,
)

SIX_MONTHS_CONTINUOUS = ExperienceRule(months=6, continuous=True)
TWELVE_MONTHS = ExperienceRule(months=12, continuous=False)
FIRST_DAY_2023 = date(2023, 5, 31)
LAST_DAY_2024 = date(2025, 2, 26)
LAST_DAY_2025 = date(2026, 2, 17)
FIRST_DAY_2026 = date(2026, 2, 18)
IN_POOL = ["fsw"]


def doc(**changes: Any) -> ProfileDocument:
    return ProfileDocument.model_validate(copy.deepcopy(PROFILE_DOCUMENT_EXAMPLE) | changes)


def between(noc: str, start: date, end: date, country: str = "CA") -> WorkExperience:
    return WorkExperience(
        noc_code=noc,
        teer=int(noc[1]),
        country=country,
        start=start,
        end=end,
        hours_per_week=30,
        self_employed=False,
        while_full_time_student=False,
    )


def stretch(noc: str, start: date, weeks: int, country: str = "CA") -> WorkExperience:
    """`weeks` of full-time work from `start`; 26 weeks at 30 h is exactly 6 months (780 h)."""
    return between(noc, start, start + timedelta(weeks=weeks, days=-1), country)


def categories(candidate: ProfileDocument, as_of: date) -> list[str]:
    return eligible_categories(candidate, as_of, programs=IN_POOL)


# --- versions in force ---------------------------------------------------------------------------------


def test_no_category_versions_before_2023_05_31() -> None:
    assert categories_in_force(date(2023, 5, 30)) == []


@pytest.mark.parametrize("day", [FIRST_DAY_2023, date(2024, 6, 1), LAST_DAY_2024])
def test_the_2023_versions_also_serve_2024(day: date) -> None:
    versions = categories_in_force(day)
    assert [version.code for version in versions] == [
        "french",
        "healthcare",
        "stem",
        "trades",
        "transport",
        "agriculture",
    ]
    assert {version.version for version in versions} == {"2023"}
    assert {version.experience for version in versions if version.kind == "occupation"} == {
        SIX_MONTHS_CONTINUOUS
    }


# The counts category-occupations.md gives for every list.
LIST_SIZES = {
    ("healthcare", "2023"): 35,
    ("stem", "2023"): 24,
    ("trades", "2023"): 10,
    ("transport", "2023"): 10,
    ("agriculture", "2023"): 3,
    ("healthcare", "2025"): 37,
    ("stem", "2025"): 11,
    ("trades", "2025"): 25,
    ("education", "2025"): 5,
    ("agriculture", "2025"): 1,
    ("physicians", "2025"): 3,
    ("healthcare", "2026"): 37,
    ("stem", "2026"): 11,
    ("trades", "2026"): 25,
    ("education", "2026"): 5,
    ("transport", "2026"): 4,
    ("physicians", "2026"): 3,
    ("researchers", "2026"): 2,
    ("senior_managers", "2026"): 4,
    ("military", "2026"): 3,
}


def test_every_list_is_complete_with_codes_titles_and_sources() -> None:
    sizes = {(v.code, v.version): len(v.occupations) for v in CATEGORY_VERSIONS if v.kind != "french"}
    assert sizes == LIST_SIZES
    for version in CATEGORY_VERSIONS:
        assert version.code in CATEGORY_CODES
        assert version.provenance
        assert set(version.titles) == version.occupations
        assert all(len(code) == 5 and code.isdigit() for code in version.occupations)


def test_list_changes_match_what_ircc_announced() -> None:
    lists = {(v.code, v.version): v.occupations for v in CATEGORY_VERSIONS}
    # 2025 healthcare: 8 added, 6 removed; STEM: 6 added, 19 removed; trades: 19 added, 4 removed.
    for code, added, removed in (("healthcare", 8, 6), ("stem", 6, 19), ("trades", 19, 4)):
        old, new = lists[(code, "2023")], lists[(code, "2025")]
        assert (len(new - old), len(old - new)) == (added, removed)
    assert lists[("trades", "2026")] == lists[("trades", "2025")] - {"63200"} | {"63201"}
    assert lists[("healthcare", "2026")] == lists[("healthcare", "2025")]
    assert "31301" in lists[("healthcare", "2025")]  # registered nurses


@pytest.mark.parametrize(
    ("noc", "day", "category"),
    [
        ("31301", FIRST_DAY_2026, "healthcare"),  # registered nurses (missing before)
        ("31301", LAST_DAY_2025, "healthcare"),
        ("31301", date(2024, 6, 1), "healthcare"),
        ("21301", FIRST_DAY_2026, "stem"),  # mechanical engineers: STEM invited nobody before
        ("21231", date(2024, 6, 1), "stem"),  # software engineers: 2023-24 STEM only
        ("72310", FIRST_DAY_2026, "trades"),  # carpenters: trades invited nobody before
        ("72014", date(2024, 6, 1), "trades"),
        ("73300", date(2024, 6, 1), "transport"),  # truck drivers: the 2023-24 transport list
    ],
)
def test_listed_occupations_qualify(noc: str, day: date, category: str) -> None:
    worker = doc(work_experience=[stretch(noc, day - timedelta(weeks=60), 56)])
    assert categories(worker, day) == [category]


def test_software_engineers_left_stem_in_2025() -> None:
    engineer = doc(work_experience=[stretch("21231", date(2023, 9, 4), 56)])
    assert categories(engineer, LAST_DAY_2024) == ["stem"]
    assert categories(engineer, date(2025, 2, 27)) == []


@pytest.mark.parametrize(("day", "physicians"), [(date(2025, 2, 27), []), (LAST_DAY_2025, ["physicians"])])
def test_the_2025_versions(day: date, physicians: list[str]) -> None:
    versions = categories_in_force(day)
    assert [version.code for version in versions] == [
        "french",
        "healthcare",
        "stem",
        "trades",
        "education",
        "agriculture",
        *physicians,  # announced 2025-12-08
    ]
    assert {version.version for version in versions} == {"2025"}
    assert {
        version.experience for version in versions if version.code in ("healthcare", "stem", "trades")
    } == {SIX_MONTHS_CONTINUOUS}


def test_the_physicians_category_of_december_2025() -> None:
    [physicians] = [v for v in categories_in_force(LAST_DAY_2025) if v.code == "physicians"]
    assert physicians.canadian_experience_only and physicians.experience == TWELVE_MONTHS
    doctor = doc(work_experience=[stretch("31102", date(2024, 9, 2), 56)])
    assert categories(doctor, date(2025, 12, 7)) == ["healthcare"]
    assert categories(doctor, date(2025, 12, 8)) == ["healthcare", "physicians"]


def test_the_2026_versions() -> None:
    versions = categories_in_force(FIRST_DAY_2026)
    assert [version.code for version in versions] == [
        "french",
        "healthcare",
        "stem",
        "trades",
        "education",
        "transport",
        "physicians",
        "researchers",
        "senior_managers",
        "military",
    ]
    assert {version.version for version in versions} == {"2026"}
    assert {version.experience for version in versions if version.kind == "occupation"} == {TWELVE_MONTHS}
    canadian_only = {version.code for version in versions if version.canadian_experience_only}
    assert canadian_only == {"physicians", "researchers", "senior_managers"}


def test_transport_occupations_of_2026() -> None:
    [transport] = [version for version in categories_in_force(FIRST_DAY_2026) if version.code == "transport"]
    assert transport.occupations == {"72600", "72404", "22313", "72410"}


# --- the experience rule before and after 2026-02-18 ---------------------------------------------------


def test_six_continuous_months_qualify_until_2026_02_17_only() -> None:
    nurse = doc(work_experience=[stretch("31302", date(2025, 1, 6), 26)])
    assert categories(nurse, LAST_DAY_2025) == ["healthcare"]
    assert categories(nurse, FIRST_DAY_2026) == []


def test_just_under_six_continuous_months_do_not_qualify() -> None:
    nurse = doc(work_experience=[stretch("31302", date(2025, 1, 6), 25)])
    assert categories(nurse, LAST_DAY_2025) == []


def test_twelve_months_in_stretches_qualify_from_2026_02_18_only() -> None:
    # Three 20-week stretches with gaps: 60 weeks (about 13.8 months), never 6 months in a row.
    stretches = [stretch("41221", date(2023, 9, 4) + timedelta(weeks=26 * i), 20) for i in range(3)]
    teacher = doc(work_experience=stretches)
    assert categories(teacher, LAST_DAY_2025) == []
    assert categories(teacher, FIRST_DAY_2026) == ["education"]


def test_months_in_different_listed_occupations_are_not_added() -> None:
    split = [stretch("41220", date(2024, 1, 1), 30), stretch("41221", date(2024, 8, 1), 30)]
    assert categories(doc(work_experience=split), FIRST_DAY_2026) == []


def test_only_the_last_3_years_count() -> None:
    # On 2026-03-01 the window starts on 2023-03-02, and 2023-03-02..2024-02-28 is exactly 52 weeks;
    # a day later the window loses one of those days.
    teacher = doc(work_experience=[between("41221", date(2022, 12, 1), date(2024, 2, 28))])
    assert categories(teacher, date(2026, 3, 1)) == ["education"]
    assert categories(teacher, date(2026, 3, 2)) == []


def test_transport_is_a_2026_category_only() -> None:
    mechanic = doc(work_experience=[stretch("72410", date(2024, 1, 1), 52, country="PH")])
    assert categories(mechanic, LAST_DAY_2025) == []
    assert categories(mechanic, FIRST_DAY_2026) == ["transport"]


def test_agriculture_ends_with_2025_and_butchers_move_to_trades() -> None:
    butcher = doc(work_experience=[stretch("63201", date(2024, 1, 1), 52)])
    assert categories(butcher, LAST_DAY_2025) == ["agriculture"]
    assert categories(butcher, FIRST_DAY_2026) == ["trades"]


# --- Canadian experience for physicians, researchers, senior managers ----------------------------------


def test_physicians_need_canadian_experience_healthcare_does_not() -> None:
    abroad = doc(work_experience=[stretch("31102", date(2024, 1, 1), 52, country="GB")])
    assert categories(abroad, FIRST_DAY_2026) == ["healthcare"]
    in_canada = doc(work_experience=[stretch("31102", date(2024, 1, 1), 52)])
    assert categories(in_canada, FIRST_DAY_2026) == ["healthcare", "physicians"]


@pytest.mark.parametrize(("noc", "category"), [("41200", "researchers"), ("00013", "senior_managers")])
def test_researchers_and_senior_managers_in_canada(noc: str, category: str) -> None:
    assert categories(doc(work_experience=[stretch(noc, date(2024, 1, 1), 52)]), FIRST_DAY_2026) == [category]
    abroad = doc(work_experience=[stretch(noc, date(2024, 1, 1), 52, country="US")])
    assert categories(abroad, FIRST_DAY_2026) == []


# --- French and military -------------------------------------------------------------------------------


def tcf(
    listening: int, reading: int, writing: int, speaking: int, taken_on: date = date(2025, 6, 1)
) -> LanguageTest:
    return LanguageTest(
        test="TCF_CANADA",
        taken_on=taken_on,
        listening=listening,
        reading=reading,
        writing=writing,
        speaking=speaking,
    )


@pytest.mark.parametrize(
    ("french", "member"),
    [
        (tcf(458, 453, 10, 10), True),  # NCLC 7 in all four
        (tcf(458, 453, 10, 9), False),  # speaking NCLC 6
        (tcf(549, 549, 16, 16, taken_on=date(2024, 1, 10)), False),  # expired on 2026-01-10
    ],
)
def test_french_needs_nclc_7_in_all_four_from_a_valid_test(french: LanguageTest, member: bool) -> None:
    candidate = doc(language_tests=[*PROFILE_DOCUMENT_EXAMPLE["language_tests"], french])
    assert ("french" in categories(candidate, date(2026, 3, 1))) is member


def test_english_results_do_not_make_a_french_category_member() -> None:
    assert "french" not in categories(doc(), date(2026, 3, 1))


def test_military_needs_a_canadian_armed_forces_offer_from_2026() -> None:
    offer = JobOffer(
        noc_code="40042",
        teer=0,
        employer="Canadian Armed Forces",
        full_time=True,
        non_seasonal=True,
        duration_months=None,
        lmia_or_exempt=True,
        canadian_armed_forces=True,
    )
    recruit = doc(job_offer=offer)
    assert categories(recruit, FIRST_DAY_2026) == ["military"]
    assert categories(recruit, LAST_DAY_2025) == []
    assert (
        categories(doc(job_offer=offer.model_copy(update={"canadian_armed_forces": False})), FIRST_DAY_2026)
        == []
    )


@pytest.mark.parametrize(
    "change",
    [
        {"noc_code": "31102", "teer": 1},  # a physician's offer: not one of the three listed occupations
        {"duration_months": 24},  # shorter than 3 years
    ],
)
def test_military_needs_a_listed_occupation_for_3_years(change: dict[str, Any]) -> None:
    offer = JobOffer(
        noc_code="40042",
        teer=0,
        employer="Canadian Armed Forces",
        full_time=True,
        non_seasonal=True,
        duration_months=36,
        lmia_or_exempt=True,
        canadian_armed_forces=True,
    )
    assert categories(doc(job_offer=offer), FIRST_DAY_2026) == ["military"]
    assert categories(doc(job_offer=offer.model_copy(update=change)), FIRST_DAY_2026) == []


# --- the pool-entry condition --------------------------------------------------------------------------


def test_a_candidate_eligible_for_no_program_has_no_category() -> None:
    french = tcf(549, 549, 16, 16, taken_on=date(2025, 6, 1))
    candidate = doc(language_tests=[*PROFILE_DOCUMENT_EXAMPLE["language_tests"], french])
    assert eligible_categories(candidate, date(2026, 3, 1)) == ["french"]  # programs assessed: FSW
    not_in_pool = candidate.model_copy(update={"intends_to_reside_in_quebec": True})
    assert eligible_categories(not_in_pool, date(2026, 3, 1)) == []
    assert eligible_categories(candidate, date(2026, 3, 1), programs=[]) == []
