"""CRS engine against crs-rules.md §1. Expected values are typed in from the doc, never read from the
engine's own tables, so a wrong table row fails here."""

from __future__ import annotations

import dataclasses
import random
from datetime import date
from typing import Any

import pytest

from shared.rules.crs import (
    CURRENT_RULES,
    RULE_VERSIONS,
    RULES_2020_10_27,
    RULES_2025_03_25,
    CrsInputError,
    CrsResult,
    Steps,
    calculate,
    rules_in_force,
)
from shared.rules.factors import (
    CanadianEducation,
    Clb,
    CrsFactors,
    EducationLevel,
    LanguageAbility,
    SpouseFactors,
)

E = EducationLevel
BREAKDOWN_KEYS = {
    "age",
    "education",
    "first_language",
    "second_language",
    "canadian_work",
    "spouse_education",
    "spouse_language",
    "spouse_canadian_work",
    "education_x_language",
    "education_x_canadian_work",
    "foreign_work_x_language",
    "foreign_work_x_canadian_work",
    "certificate_x_language",
    "provincial_nomination",
    "french",
    "canadian_education",
    "sibling",
    "arranged_employment",
}
NO_SPOUSE_POINTS = SpouseFactors(education_level=E.LESS_THAN_SECONDARY, clb=None, canadian_work_years=0)


def clb(*levels: int) -> Clb:
    """clb(7) = 7 in all four abilities; clb(9, 9, 9, 8) = speaking, listening, reading, writing."""
    s, li, r, w = levels * 4 if len(levels) == 1 else levels
    return Clb(speaking=s, listening=li, reading=r, writing=w)


def en(*levels: int) -> LanguageAbility:
    return LanguageAbility("en", clb(*levels))


def fr(*levels: int) -> LanguageAbility:
    return LanguageAbility("fr", clb(*levels))


def factors(**overrides: Any) -> CrsFactors:
    """A candidate who scores 0 everywhere, except what the test sets."""
    base: dict[str, Any] = dict(
        age=50,
        education_level=E.LESS_THAN_SECONDARY,
        canadian_education=CanadianEducation.NONE,
        first_language=None,
        second_language=None,
        canadian_work_years=0,
        foreign_work_years=0,
        certificate_of_qualification=False,
        provincial_nomination=False,
        sibling_in_canada=False,
        spouse=None,
    )
    return CrsFactors(**(base | overrides))


def spouse_kw(with_spouse: bool) -> dict[str, Any]:
    return {"spouse": NO_SPOUSE_POINTS if with_spouse else None}


# --- section A --------------------------------------------------------------------------------------

AGE_ROWS = [  # (age, with spouse, without spouse), §1.2
    (0, 0, 0),
    (17, 0, 0),
    (18, 90, 99),
    (19, 95, 105),
    (20, 100, 110),
    (21, 100, 110),
    (22, 100, 110),
    (23, 100, 110),
    (24, 100, 110),
    (25, 100, 110),
    (26, 100, 110),
    (27, 100, 110),
    (28, 100, 110),
    (29, 100, 110),
    (30, 95, 105),
    (31, 90, 99),
    (32, 85, 94),
    (33, 80, 88),
    (34, 75, 83),
    (35, 70, 77),
    (36, 65, 72),
    (37, 60, 66),
    (38, 55, 61),
    (39, 50, 55),
    (40, 45, 50),
    (41, 35, 39),
    (42, 25, 28),
    (43, 15, 17),
    (44, 5, 6),
    (45, 0, 0),
    (80, 0, 0),
]


@pytest.mark.parametrize(("age", "with_spouse", "without_spouse"), AGE_ROWS)
def test_age(age: int, with_spouse: int, without_spouse: int) -> None:
    assert calculate(factors(age=age, **spouse_kw(True))).breakdown["age"] == with_spouse
    assert calculate(factors(age=age)).breakdown["age"] == without_spouse


EDUCATION_ROWS = [  # §1.3
    (E.LESS_THAN_SECONDARY, 0, 0),
    (E.SECONDARY, 28, 30),
    (E.ONE_YEAR, 84, 90),
    (E.TWO_YEAR, 91, 98),
    (E.BACHELORS, 112, 120),
    (E.TWO_OR_MORE, 119, 128),
    (E.MASTERS, 126, 135),
    (E.DOCTORAL, 140, 150),
]


@pytest.mark.parametrize(("level", "with_spouse", "without_spouse"), EDUCATION_ROWS)
def test_education(level: EducationLevel, with_spouse: int, without_spouse: int) -> None:
    assert calculate(factors(education_level=level, **spouse_kw(True))).breakdown["education"] == with_spouse
    assert calculate(factors(education_level=level)).breakdown["education"] == without_spouse


FIRST_LANGUAGE_ROWS = [  # (CLB, with spouse, without spouse) per ability, §1.4
    (0, 0, 0),
    (3, 0, 0),
    (4, 6, 6),
    (5, 6, 6),
    (6, 8, 9),
    (7, 16, 17),
    (8, 22, 23),
    (9, 29, 31),
    (10, 32, 34),
    (11, 32, 34),
    (12, 32, 34),
]


@pytest.mark.parametrize(("level", "with_spouse", "without_spouse"), FIRST_LANGUAGE_ROWS)
@pytest.mark.parametrize("ability", range(4))
def test_first_language_per_ability(level: int, with_spouse: int, without_spouse: int, ability: int) -> None:
    levels = [0, 0, 0, 0]
    levels[ability] = level
    f = factors(first_language=en(*levels))
    assert (
        calculate(dataclasses.replace(f, spouse=NO_SPOUSE_POINTS)).breakdown["first_language"] == with_spouse
    )
    assert calculate(f).breakdown["first_language"] == without_spouse


def test_first_language_sums_the_four_abilities() -> None:
    # 6 + 9 + 17 + 34 without spouse; 6 + 8 + 16 + 32 with.
    assert calculate(factors(first_language=en(4, 6, 7, 10))).breakdown["first_language"] == 66
    with_spouse = factors(first_language=en(4, 6, 7, 10), **spouse_kw(True))
    assert calculate(with_spouse).breakdown["first_language"] == 62


def test_first_language_maxima() -> None:
    assert calculate(factors(first_language=fr(12))).breakdown["first_language"] == 136
    assert calculate(factors(first_language=fr(12), **spouse_kw(True))).breakdown["first_language"] == 128


SECOND_LANGUAGE_ROWS = [(0, 0), (4, 0), (5, 1), (6, 1), (7, 3), (8, 3), (9, 6), (10, 6), (12, 6)]  # §1.5


@pytest.mark.parametrize(("level", "points"), SECOND_LANGUAGE_ROWS)
@pytest.mark.parametrize("with_spouse", [True, False])
def test_second_language_per_ability(level: int, points: int, with_spouse: bool) -> None:
    f = factors(first_language=en(4), second_language=fr(level, 0, 0, 0), **spouse_kw(with_spouse))
    assert calculate(f).breakdown["second_language"] == points


@pytest.mark.parametrize(
    ("levels", "with_spouse", "expected"),
    [
        ((9, 9, 9, 9), True, 22),  # 24 capped at 22
        ((9, 9, 9, 9), False, 24),
        ((12, 12, 12, 12), True, 22),
        ((9, 9, 9, 8), True, 21),  # under the cap
        ((9, 9, 9, 8), False, 21),
    ],
)
def test_second_language_cap(levels: tuple[int, ...], with_spouse: bool, expected: int) -> None:
    f = factors(first_language=en(4), second_language=fr(*levels), **spouse_kw(with_spouse))
    assert calculate(f).breakdown["second_language"] == expected


CANADIAN_WORK_ROWS = [(0, 0, 0), (1, 35, 40), (2, 46, 53), (3, 56, 64), (4, 63, 72), (5, 70, 80), (9, 70, 80)]


@pytest.mark.parametrize(("years", "with_spouse", "without_spouse"), CANADIAN_WORK_ROWS)
def test_canadian_work(years: int, with_spouse: int, without_spouse: int) -> None:
    f = factors(canadian_work_years=years)
    assert (
        calculate(dataclasses.replace(f, spouse=NO_SPOUSE_POINTS)).breakdown["canadian_work"] == with_spouse
    )
    assert calculate(f).breakdown["canadian_work"] == without_spouse


def test_core_maxima_500_single_460_with_spouse() -> None:
    best = dict(
        age=25,
        education_level=E.DOCTORAL,
        first_language=en(10),
        second_language=fr(9),
        canadian_work_years=5,
    )
    assert calculate(factors(**best)).core == 110 + 150 + 136 + 24 + 80 == 500
    assert calculate(factors(**best, **spouse_kw(True))).core == 100 + 140 + 128 + 22 + 70 == 460


# --- section B --------------------------------------------------------------------------------------

SPOUSE_EDUCATION_ROWS = [
    (E.LESS_THAN_SECONDARY, 0),
    (E.SECONDARY, 2),
    (E.ONE_YEAR, 6),
    (E.TWO_YEAR, 7),
    (E.BACHELORS, 8),
    (E.TWO_OR_MORE, 9),
    (E.MASTERS, 10),
    (E.DOCTORAL, 10),
]


@pytest.mark.parametrize(("level", "points"), SPOUSE_EDUCATION_ROWS)
def test_spouse_education(level: EducationLevel, points: int) -> None:
    spouse = SpouseFactors(education_level=level, clb=None, canadian_work_years=0)
    result = calculate(factors(spouse=spouse))
    assert result.breakdown["spouse_education"] == points
    assert result.spouse == points


@pytest.mark.parametrize(
    ("level", "points"), [(0, 0), (4, 0), (5, 1), (6, 1), (7, 3), (8, 3), (9, 5), (10, 5), (12, 5)]
)
def test_spouse_language_per_ability(level: int, points: int) -> None:
    spouse = SpouseFactors(
        education_level=E.LESS_THAN_SECONDARY, clb=clb(level, 0, 0, 0), canadian_work_years=0
    )
    assert calculate(factors(spouse=spouse)).breakdown["spouse_language"] == points


def test_spouse_language_sums_abilities_and_none_scores_zero() -> None:
    spouse = SpouseFactors(education_level=E.LESS_THAN_SECONDARY, clb=clb(9), canadian_work_years=0)
    assert calculate(factors(spouse=spouse)).breakdown["spouse_language"] == 20
    assert calculate(factors(spouse=NO_SPOUSE_POINTS)).breakdown["spouse_language"] == 0


@pytest.mark.parametrize(("years", "points"), [(0, 0), (1, 5), (2, 7), (3, 8), (4, 9), (5, 10), (8, 10)])
def test_spouse_canadian_work(years: int, points: int) -> None:
    spouse = SpouseFactors(education_level=E.LESS_THAN_SECONDARY, clb=None, canadian_work_years=years)
    assert calculate(factors(spouse=spouse)).breakdown["spouse_canadian_work"] == points


def test_spouse_section_maximum_40() -> None:
    spouse = SpouseFactors(education_level=E.DOCTORAL, clb=clb(12), canadian_work_years=6)
    assert calculate(factors(spouse=spouse)).spouse == 40


def test_without_spouse_the_candidate_is_scored_single() -> None:
    # The same candidate: single columns without a spouse, spouse columns plus section B with one.
    candidate = dict(age=30, education_level=E.BACHELORS, first_language=en(10), canadian_work_years=1)
    single = calculate(factors(**candidate))
    assert (single.core, single.spouse) == (105 + 120 + 136 + 40, 0)
    assert {single.breakdown[k] for k in ("spouse_education", "spouse_language", "spouse_canadian_work")} == {
        0
    }
    spouse = SpouseFactors(education_level=E.BACHELORS, clb=clb(7), canadian_work_years=0)
    coupled = calculate(factors(**candidate, spouse=spouse))
    assert (coupled.core, coupled.spouse) == (95 + 112 + 128 + 35, 8 + 12)


# --- section C --------------------------------------------------------------------------------------

# (education, points at CLB 7+, points at CLB 9+); the same rows give C1b at 1 yr / ≥ 2 yrs.
EDUCATION_TRANSFER_ROWS = [
    (E.LESS_THAN_SECONDARY, 0, 0),
    (E.SECONDARY, 0, 0),
    (E.ONE_YEAR, 13, 25),
    (E.TWO_YEAR, 13, 25),
    (E.BACHELORS, 13, 25),
    (E.TWO_OR_MORE, 25, 50),
    (E.MASTERS, 25, 50),
    (E.DOCTORAL, 25, 50),
]

# (first-language levels, column): 0 = below CLB 7 in some ability, 1 = "CLB 7+", 2 = "CLB 9+".
LANGUAGE_COLUMNS = [
    ((6, 6, 6, 6), 0),
    ((12, 12, 12, 6), 0),  # one ability below 7 closes both columns
    ((7, 7, 7, 7), 1),
    ((8, 8, 8, 8), 1),
    ((9, 9, 9, 8), 1),  # all four ≥ 7, one below 9
    ((9, 9, 9, 9), 2),
    ((12, 10, 9, 11), 2),
]


def _column_points(low: int, high: int, column: int) -> int:
    return (0, low, high)[column]


@pytest.mark.parametrize(("level", "at_7", "at_9"), EDUCATION_TRANSFER_ROWS)
@pytest.mark.parametrize(("levels", "column"), LANGUAGE_COLUMNS)
def test_education_x_language(
    level: EducationLevel, at_7: int, at_9: int, levels: tuple[int, ...], column: int
) -> None:
    result = calculate(factors(education_level=level, first_language=en(*levels)))
    assert result.breakdown["education_x_language"] == _column_points(at_7, at_9, column)


@pytest.mark.parametrize(("level", "one_year", "two_years"), EDUCATION_TRANSFER_ROWS)
@pytest.mark.parametrize(("years", "column"), [(0, 0), (1, 1), (2, 2), (5, 2)])
def test_education_x_canadian_work(
    level: EducationLevel, one_year: int, two_years: int, years: int, column: int
) -> None:
    result = calculate(factors(education_level=level, canadian_work_years=years))
    assert result.breakdown["education_x_canadian_work"] == _column_points(one_year, two_years, column)


FOREIGN_ROWS = [(0, 0, 0), (1, 13, 25), (2, 13, 25), (3, 25, 50), (10, 25, 50)]  # (years, lower, higher)


@pytest.mark.parametrize(("foreign", "low", "high"), FOREIGN_ROWS)
@pytest.mark.parametrize(("levels", "column"), LANGUAGE_COLUMNS)
def test_foreign_work_x_language(
    foreign: int, low: int, high: int, levels: tuple[int, ...], column: int
) -> None:
    result = calculate(factors(foreign_work_years=foreign, first_language=en(*levels)))
    assert result.breakdown["foreign_work_x_language"] == _column_points(low, high, column)


@pytest.mark.parametrize(("foreign", "low", "high"), FOREIGN_ROWS)
@pytest.mark.parametrize(("years", "column"), [(0, 0), (1, 1), (2, 2), (4, 2)])
def test_foreign_work_x_canadian_work(foreign: int, low: int, high: int, years: int, column: int) -> None:
    result = calculate(factors(foreign_work_years=foreign, canadian_work_years=years))
    assert result.breakdown["foreign_work_x_canadian_work"] == _column_points(low, high, column)


@pytest.mark.parametrize(
    ("levels", "points"),
    [
        ((4, 4, 4, 4), 0),
        ((12, 12, 12, 4), 0),  # one ability below 5
        ((5, 5, 5, 5), 25),
        ((7, 7, 7, 6), 25),  # all ≥ 5, one below 7
        ((7, 7, 7, 7), 50),
        ((12, 12, 12, 12), 50),
    ],
)
def test_certificate_x_language(levels: tuple[int, ...], points: int) -> None:
    f = factors(first_language=en(*levels), certificate_of_qualification=True)
    assert calculate(f).breakdown["certificate_x_language"] == points
    no_certificate = dataclasses.replace(f, certificate_of_qualification=False)
    assert calculate(no_certificate).breakdown["certificate_x_language"] == 0


def test_no_first_language_no_language_combinations_but_work_combinations_count() -> None:
    f = factors(
        education_level=E.DOCTORAL,
        foreign_work_years=3,
        canadian_work_years=1,
        certificate_of_qualification=True,
    )
    b = calculate(f).breakdown
    assert (b["education_x_language"], b["foreign_work_x_language"], b["certificate_x_language"]) == (0, 0, 0)
    assert (b["education_x_canadian_work"], b["foreign_work_x_canadian_work"]) == (25, 25)


def test_education_group_cap_50() -> None:
    result = calculate(factors(education_level=E.DOCTORAL, first_language=en(9), canadian_work_years=2))
    b = result.breakdown
    assert b["education_x_language"] + b["education_x_canadian_work"] == 50  # 50 + 50 before the cap
    assert result.transferability == 50


def test_education_group_under_cap_adds_up() -> None:
    result = calculate(factors(education_level=E.BACHELORS, first_language=en(9), canadian_work_years=2))
    assert result.transferability == 25 + 25


def test_foreign_work_group_cap_50() -> None:
    result = calculate(factors(foreign_work_years=3, first_language=en(9), canadian_work_years=2))
    b = result.breakdown
    assert b["foreign_work_x_language"] + b["foreign_work_x_canadian_work"] == 50


def test_foreign_work_group_under_cap_adds_up() -> None:
    result = calculate(factors(foreign_work_years=1, first_language=en(7), canadian_work_years=1))
    b = result.breakdown
    assert (b["foreign_work_x_language"], b["foreign_work_x_canadian_work"]) == (13, 13)


def test_transferability_section_cap_100() -> None:
    f = factors(
        education_level=E.MASTERS,
        first_language=en(9),
        canadian_work_years=2,
        foreign_work_years=3,
        certificate_of_qualification=True,
    )
    result = calculate(f)  # 50 + 50 + 50 before the section cap
    assert result.transferability == 100
    transfer_keys = [k for k in BREAKDOWN_KEYS if "_x_" in k]
    assert sum(result.breakdown[k] for k in transfer_keys) == 100


# --- section D --------------------------------------------------------------------------------------


def test_provincial_nomination_600() -> None:
    assert calculate(factors(provincial_nomination=True)).breakdown["provincial_nomination"] == 600
    assert calculate(factors(provincial_nomination=True)).additional == 600


@pytest.mark.parametrize(
    ("credential", "points"),
    [
        (CanadianEducation.NONE, 0),
        (CanadianEducation.ONE_OR_TWO_YEAR, 15),
        (CanadianEducation.THREE_YEAR_OR_LONGER, 30),
    ],
)
def test_canadian_education(credential: CanadianEducation, points: int) -> None:
    assert calculate(factors(canadian_education=credential)).breakdown["canadian_education"] == points


def test_sibling_15() -> None:
    assert calculate(factors(sibling_in_canada=True)).breakdown["sibling"] == 15
    assert calculate(factors(sibling_in_canada=False)).breakdown["sibling"] == 0


def test_additional_section_cap_600() -> None:
    f = factors(
        provincial_nomination=True,
        first_language=fr(7),
        second_language=en(5),
        canadian_education=CanadianEducation.THREE_YEAR_OR_LONGER,
        sibling_in_canada=True,
    )
    result = calculate(f)  # 600 + 50 + 30 + 15 before the cap
    assert result.additional == 600
    assert result.breakdown["provincial_nomination"] == 600


def test_additional_under_cap_adds_up() -> None:
    f = factors(
        first_language=fr(7),
        second_language=en(5),
        canadian_education=CanadianEducation.THREE_YEAR_OR_LONGER,
        sibling_in_canada=True,
    )
    assert calculate(f).additional == 50 + 30 + 15


@pytest.mark.parametrize(
    ("first", "second", "bonus"),
    [
        (fr(7), en(5), 50),  # French first, English second, both good enough
        (en(5), fr(7), 50),  # English first, French second
        (fr(12), en(12), 50),
        (fr(7), en(5, 5, 5, 4), 25),  # English CLB 4 in one ability
        (fr(7), en(4), 25),
        (fr(8), None, 25),  # no English test
        (fr(7, 7, 7, 6), en(9), 0),  # NCLC 6 in one ability
        (fr(6), None, 0),
        (en(10), fr(6, 12, 12, 12), 0),
        (en(10), None, 0),  # no French at all
    ],
)
def test_french_bonus(first: LanguageAbility, second: LanguageAbility | None, bonus: int) -> None:
    assert calculate(factors(first_language=first, second_language=second)).breakdown["french"] == bonus


def test_french_bonus_is_on_top_of_language_points() -> None:
    b = calculate(factors(first_language=fr(7), second_language=en(5))).breakdown
    assert (b["first_language"], b["second_language"], b["french"]) == (4 * 17, 4 * 1, 50)


# --- rule versions ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "before", "now"), [("none", 0, 0), ("teer_0_major_00", 200, 0), ("other_skilled", 50, 0)]
)
def test_arranged_employment_by_rule_version(kind: str, before: int, now: int) -> None:
    f = factors(arranged_employment=kind)
    old = calculate(f, RULES_2020_10_27)
    assert (old.breakdown["arranged_employment"], old.additional, old.rules_version) == (
        before,
        before,
        "2020-10-27",
    )
    new = calculate(f, RULES_2025_03_25)
    assert (new.breakdown["arranged_employment"], new.additional, new.rules_version) == (
        now,
        now,
        "2025-03-25",
    )
    assert calculate(f).breakdown["arranged_employment"] == now  # the default is the current grid


def test_arranged_employment_counts_under_the_old_additional_cap() -> None:
    f = factors(provincial_nomination=True, arranged_employment="teer_0_major_00")
    assert calculate(f, RULES_2020_10_27).additional == 600


@pytest.mark.parametrize(
    ("on", "name"),
    [
        (date(2020, 10, 27), "2020-10-27"),
        (date(2024, 12, 31), "2020-10-27"),
        (date(2025, 3, 24), "2020-10-27"),
        (date(2025, 3, 25), "2025-03-25"),
        (date(2026, 9, 16), "2025-03-25"),
    ],
)
def test_rules_in_force(on: date, name: str) -> None:
    assert rules_in_force(on).name == name
    assert rules_in_force(on) is RULE_VERSIONS[name]


def test_rules_in_force_refuses_dates_before_the_first_version() -> None:
    with pytest.raises(ValueError, match="2020-10-27"):
        rules_in_force(date(2020, 10, 26))


def test_rule_version_registry() -> None:
    assert set(RULE_VERSIONS) == {"2020-10-27", "2025-03-25"}
    assert CURRENT_RULES is RULES_2025_03_25
    assert RULES_2025_03_25.effective_from == date(2025, 3, 25)
    assert RULES_2020_10_27.effective_from == date(2020, 10, 27)


def test_rule_versions_are_read_only() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        RULES_2025_03_25.sibling = 30  # type: ignore[misc]
    with pytest.raises(TypeError):
        RULES_2025_03_25.arranged_employment["other_skilled"] = 50  # type: ignore[index]


def test_steps_table_lookup_and_shape() -> None:
    table = Steps.of((0, 0), (4, 6), (10, 32))
    assert [table.at(k) for k in (0, 3, 4, 9, 10, 99)] == [0, 0, 6, 6, 32, 32]
    with pytest.raises(ValueError, match="0 or more"):
        table.at(-1)  # must not wrap round to the last row
    with pytest.raises(ValueError, match="strictly increasing"):
        Steps.of((1, 5))
    with pytest.raises(ValueError, match="strictly increasing"):
        Steps.of((0, 0), (5, 1), (5, 2))


# --- worked examples, §1.10 -------------------------------------------------------------------------


def test_worked_example_single_469() -> None:
    f = factors(age=29, education_level=E.MASTERS, first_language=en(9), foreign_work_years=3)
    result = calculate(f)
    assert (result.core, result.spouse, result.transferability, result.additional) == (369, 0, 100, 0)
    assert result.total == 469


def test_worked_example_with_spouse_428() -> None:
    spouse = SpouseFactors(education_level=E.BACHELORS, clb=clb(7), canadian_work_years=0)
    f = factors(
        age=30, education_level=E.BACHELORS, first_language=en(10), canadian_work_years=1, spouse=spouse
    )
    result = calculate(f)
    assert (result.core, result.spouse, result.transferability) == (370, 20, 38)
    assert (result.breakdown["education_x_language"], result.breakdown["education_x_canadian_work"]) == (
        25,
        13,
    )
    assert result.total == 428


def test_worked_example_citizen_spouse_scored_single_110() -> None:
    # The caller drops a citizen spouse (spouse=None), so the single column applies.
    assert calculate(factors(age=25)).total == 110


def test_worked_example_french_bonuses() -> None:
    assert calculate(factors(first_language=fr(7), second_language=en(5))).breakdown["french"] == 50
    assert calculate(factors(first_language=fr(8))).breakdown["french"] == 25


# --- result shape and invariants --------------------------------------------------------------------


def test_grand_total_maximum_1200_both_ways() -> None:
    best = dict(
        age=25,
        education_level=E.DOCTORAL,
        first_language=en(12),
        second_language=fr(12),
        canadian_work_years=5,
        foreign_work_years=3,
        certificate_of_qualification=True,
        provincial_nomination=True,
        canadian_education=CanadianEducation.THREE_YEAR_OR_LONGER,
        sibling_in_canada=True,
    )
    assert calculate(factors(**best)).total == 1200
    spouse = SpouseFactors(education_level=E.DOCTORAL, clb=clb(12), canadian_work_years=5)
    coupled = calculate(factors(**best, spouse=spouse))
    assert (coupled.core, coupled.spouse, coupled.transferability, coupled.additional) == (460, 40, 100, 600)


def test_to_dict_contract() -> None:
    result = calculate(factors(age=25, sibling_in_canada=True))
    d = result.to_dict()
    assert set(d) == {
        "total",
        "core",
        "spouse",
        "transferability",
        "additional",
        "breakdown",
        "rules_version",
    }
    assert (d["total"], d["core"], d["additional"], d["rules_version"]) == (125, 110, 15, "2025-03-25")
    assert set(d["breakdown"]) == BREAKDOWN_KEYS
    d["breakdown"]["age"] = 0  # a copy: the result is not changed through it
    assert result.breakdown["age"] == 110


def _random_factors(rng: random.Random) -> CrsFactors:
    def any_clb() -> Clb:
        return Clb(*(rng.randint(0, 12) for _ in range(4)))

    first_language = rng.choice(["en", "fr", None])
    second_language = {"en": "fr", "fr": "en"}.get(first_language or "") if rng.random() < 0.5 else None
    spouse = SpouseFactors(rng.choice(list(E)), rng.choice([None, any_clb()]), rng.randint(0, 6))
    return CrsFactors(
        age=rng.randint(0, 60),
        education_level=rng.choice(list(E)),
        canadian_education=rng.choice(list(CanadianEducation)),
        first_language=LanguageAbility(first_language, any_clb()) if first_language else None,  # type: ignore[arg-type]
        second_language=LanguageAbility(second_language, any_clb()) if second_language else None,  # type: ignore[arg-type]
        canadian_work_years=rng.randint(0, 8),
        foreign_work_years=rng.randint(0, 8),
        certificate_of_qualification=rng.random() < 0.3,
        provincial_nomination=rng.random() < 0.2,
        sibling_in_canada=rng.random() < 0.3,
        spouse=spouse if rng.random() < 0.5 else None,
        arranged_employment=rng.choice(["none", "teer_0_major_00", "other_skilled"]),
    )


@pytest.mark.parametrize("rules", [RULES_2020_10_27, RULES_2025_03_25], ids=lambda r: r.name)
def test_sections_and_breakdown_add_up_within_the_maxima(rules: Any) -> None:
    rng = random.Random(20250325)
    for _ in range(2000):
        f = _random_factors(rng)
        r: CrsResult = calculate(f, rules)
        assert set(r.breakdown) == BREAKDOWN_KEYS
        assert r.total == r.core + r.spouse + r.transferability + r.additional == sum(r.breakdown.values())
        assert all(v >= 0 for v in r.breakdown.values())
        assert r.core + r.spouse <= 500 and r.transferability <= 100 and r.additional <= 600, f
        assert r.core <= (460 if f.spouse else 500) and r.spouse <= (40 if f.spouse else 0), f


# --- validation -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"age": -1}, "age"),
        ({"canadian_work_years": -1}, "canadian_work_years"),
        ({"foreign_work_years": -2}, "foreign_work_years"),
        ({"first_language": en(13, 7, 7, 7)}, "first_language.clb.speaking"),
        ({"first_language": en(7, 7, 7, -1)}, "first_language.clb.writing"),
        ({"first_language": en(7), "second_language": fr(7, 7, 13, 7)}, "second_language.clb.reading"),
        ({"first_language": en(7), "second_language": en(7)}, "second_language"),
        ({"second_language": fr(7)}, "second_language"),
        ({"first_language": LanguageAbility("de", clb(7))}, "first_language.language"),  # type: ignore[arg-type]
        ({"spouse": SpouseFactors(E.SECONDARY, clb(7, 13, 7, 7), 0)}, "spouse.clb.listening"),
        ({"spouse": SpouseFactors(E.SECONDARY, None, -1)}, "spouse.canadian_work_years"),
        ({"education_level": "phd"}, "education_level"),
        ({"canadian_education": "lots"}, "canadian_education"),
        ({"arranged_employment": "lmia"}, "arranged_employment"),
        ({"age": 30.5}, "age"),
        ({"age": True}, "age"),
    ],
)
def test_invalid_input_is_a_value_error_naming_the_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field.replace(".", r"\.")) as raised:
        calculate(factors(**overrides))
    assert isinstance(raised.value, CrsInputError)
    assert field in [e["field"] for e in raised.value.errors]


def test_every_invalid_field_is_reported_at_once() -> None:
    with pytest.raises(CrsInputError) as raised:
        calculate(factors(age=-1, foreign_work_years=-1, first_language=en(13)))
    fields = {e["field"] for e in raised.value.errors}
    assert {
        "age",
        "foreign_work_years",
        "first_language.clb.speaking",
        "first_language.clb.writing",
    } <= fields


@pytest.mark.parametrize("level", [0, 12])
def test_clb_bounds_are_accepted(level: int) -> None:
    calculate(factors(first_language=en(level), spouse=SpouseFactors(E.SECONDARY, clb(level), 0)))
