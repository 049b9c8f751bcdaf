"""CLB/NCLC conversion (every row boundary of crs-rules.md §2), validity, and the first official language."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

import pytest

from shared.rules.document import Ability, LanguageTest, TestName
from shared.rules.factors import Clb, LanguageAbility
from shared.rules.language import (
    best_valid,
    clb_for_score,
    clb_of,
    expires_on,
    is_valid_on,
    levels_by_language,
    lowest_clb_by_language,
    official_languages,
    spouse_language_points,
)

NEW_TEF = date(2024, 6, 1)
OLD_TEF = date(2023, 12, 10)

# The published ranges, copied from crs-rules.md: per ability, (lowest, highest) of CLB 10, 9, ..., 4.
PTE_CORE = {
    "reading": ((88, 90), (78, 87), (69, 77), (60, 68), (51, 59), (42, 50), (33, 41)),
    "writing": ((90, 90), (88, 89), (79, 87), (69, 78), (60, 68), (51, 59), (41, 50)),
    "listening": ((89, 90), (82, 88), (71, 81), (60, 70), (50, 59), (39, 49), (28, 38)),
    "speaking": ((89, 90), (84, 88), (76, 83), (68, 75), (59, 67), (51, 58), (42, 50)),
}
TEF_FROM_2023_12_11 = {
    "reading": ((546, 699), (503, 545), (462, 502), (434, 461), (393, 433), (352, 392), (306, 351)),
    "writing": ((558, 699), (512, 557), (472, 511), (428, 471), (379, 427), (330, 378), (268, 329)),
    "listening": ((546, 699), (503, 545), (462, 502), (434, 461), (393, 433), (352, 392), (306, 351)),
    "speaking": ((556, 699), (518, 555), (494, 517), (456, 493), (422, 455), (387, 421), (328, 386)),
}
TEF_BEFORE_2023_12_11 = {
    "reading": ((263, 300), (248, 262), (233, 247), (207, 232), (181, 206), (151, 180), (121, 150)),
    "writing": ((393, 450), (371, 392), (349, 370), (310, 348), (271, 309), (226, 270), (181, 225)),
    "listening": ((316, 360), (298, 315), (280, 297), (249, 279), (217, 248), (181, 216), (145, 180)),
    "speaking": ((393, 450), (371, 392), (349, 370), (310, 348), (271, 309), (226, 270), (181, 225)),
}
TCF_CANADA = {
    "reading": ((549, 699), (524, 548), (499, 523), (453, 498), (406, 452), (375, 405), (342, 374)),
    "writing": ((16, 20), (14, 15), (12, 13), (10, 11), (7, 9), (6, 6), (4, 5)),
    "listening": ((549, 699), (523, 548), (503, 522), (458, 502), (398, 457), (369, 397), (331, 368)),
    "speaking": ((16, 20), (14, 15), (12, 13), (10, 11), (7, 9), (6, 6), (4, 5)),
}
# IELTS: the minimum band per level; the next half band down is the level below.
IELTS_GENERAL_MINIMUM = {
    "reading": {10: 8.0, 9: 7.0, 8: 6.5, 7: 6.0, 6: 5.0, 5: 4.0, 4: 3.5},
    "writing": {10: 7.5, 9: 7.0, 8: 6.5, 7: 6.0, 6: 5.5, 5: 5.0, 4: 4.0},
    "listening": {10: 8.5, 9: 8.0, 8: 7.5, 7: 6.0, 6: 5.5, 5: 5.0, 4: 4.5},
    "speaking": {10: 7.5, 9: 7.0, 8: 6.5, 7: 6.0, 6: 5.5, 5: 5.0, 4: 4.0},
}

RangeTable = Mapping[str, Sequence[tuple[int, int]]]
LEVELS = (10, 9, 8, 7, 6, 5, 4)


def range_boundaries(test: TestName, taken_on: date, table: RangeTable) -> list[tuple[object, ...]]:
    """Both ends of every row give that row's level; one below the lowest row gives 0."""
    cases: list[tuple[object, ...]] = []
    for ability, rows in table.items():
        for level, (lowest, highest) in zip(LEVELS, rows, strict=True):
            cases.append((test, taken_on, ability, lowest, level))
            cases.append((test, taken_on, ability, highest, level))
        cases.append((test, taken_on, ability, rows[-1][0] - 1, 0))
    return cases


def ielts_boundaries() -> list[tuple[object, ...]]:
    cases: list[tuple[object, ...]] = []
    for ability, rows in IELTS_GENERAL_MINIMUM.items():
        for level, band in rows.items():
            cases.append(("IELTS_GENERAL", NEW_TEF, ability, band, level))
            below = max((lvl for lvl, minimum in rows.items() if minimum <= band - 0.5), default=0)
            cases.append(("IELTS_GENERAL", NEW_TEF, ability, band - 0.5, below))
        cases.append(("IELTS_GENERAL", NEW_TEF, ability, 9.0, 10))
    return cases


BOUNDARIES = (
    ielts_boundaries()
    + range_boundaries("PTE_CORE", NEW_TEF, PTE_CORE)
    + range_boundaries("TEF_CANADA", NEW_TEF, TEF_FROM_2023_12_11)
    + range_boundaries("TEF_CANADA", OLD_TEF, TEF_BEFORE_2023_12_11)
    + range_boundaries("TCF_CANADA", NEW_TEF, TCF_CANADA)
)


@pytest.mark.parametrize(("test", "taken_on", "ability", "score", "level"), BOUNDARIES)
def test_every_row_boundary_converts_to_its_level(
    test: TestName, taken_on: date, ability: Ability, score: float, level: int
) -> None:
    assert clb_for_score(test, ability, score, taken_on) == level


def test_ielts_cases_include_the_gaps_between_rows() -> None:
    # Listening: 6.0 is CLB 7 and 7.5 is CLB 8, so 6.5 and 7.0 stay at CLB 7.
    assert clb_for_score("IELTS_GENERAL", "listening", 7.0, NEW_TEF) == 7
    assert clb_for_score("IELTS_GENERAL", "listening", 7.5, NEW_TEF) == 8


@pytest.mark.parametrize(("level", "clb"), [(1, 1), (3, 3), (4, 4), (9, 9), (10, 10), (11, 10), (12, 10)])
def test_the_celpip_level_is_the_clb_up_to_10(level: int, clb: int) -> None:
    assert clb_for_score("CELPIP_G", "reading", level, NEW_TEF) == clb


def test_tef_uses_the_chart_of_the_day_the_test_was_taken() -> None:
    # 300 in reading is the top of the old scale (NCLC 10) but below NCLC 4 on the 0-699 scale.
    assert clb_for_score("TEF_CANADA", "reading", 300, date(2023, 12, 10)) == 10
    assert clb_for_score("TEF_CANADA", "reading", 300, date(2023, 12, 11)) == 0


def result(test: TestName, taken_on: date, l: float, r: float, w: float, s: float) -> LanguageTest:  # noqa: E741
    return LanguageTest(test=test, taken_on=taken_on, listening=l, reading=r, writing=w, speaking=s)


def test_clb_of_converts_each_ability_separately() -> None:
    ielts = result("IELTS_GENERAL", NEW_TEF, l=8.5, r=6.5, w=6.0, s=5.5)
    assert clb_of(ielts) == Clb(speaking=6, listening=10, reading=8, writing=7)


# --- validity ---------------------------------------------------------------------------------------

TAKEN = date(2024, 5, 6)


@pytest.mark.parametrize(
    ("as_of", "valid"),
    [
        (date(2024, 5, 5), False),  # not taken yet
        (date(2024, 5, 6), True),
        (date(2026, 5, 5), True),  # the last day
        (date(2026, 5, 6), False),  # exactly 2 years old: expired
    ],
)
def test_a_result_counts_for_two_years(as_of: date, valid: bool) -> None:
    assert is_valid_on(result("CELPIP_G", TAKEN, 9, 9, 9, 9), as_of) is valid


def test_expiry_is_the_second_anniversary() -> None:
    assert expires_on(result("CELPIP_G", TAKEN, 9, 9, 9, 9)) == date(2026, 5, 6)


def test_the_best_valid_result_counts_not_the_latest() -> None:
    better = result("CELPIP_G", date(2024, 1, 1), 10, 10, 10, 10)
    newer = result("IELTS_GENERAL", date(2025, 1, 1), 6.0, 6.0, 6.0, 6.0)
    assert best_valid([better, newer], date(2025, 6, 1), "en") == better
    assert levels_by_language([better, newer], date(2025, 6, 1)) == {"en": Clb(10, 10, 10, 10)}
    # Once the better one has expired, the other counts.
    assert levels_by_language([better, newer], date(2026, 1, 1)) == {"en": Clb(7, 7, 7, 7)}


def test_the_best_is_the_whole_result_worth_most_points_never_a_mix() -> None:
    # 10/10/10/4 is worth 34 x 3 + 6 = 108 first-language points, 8 x 4 only 92; abilities never mix.
    uneven = result("CELPIP_G", date(2025, 1, 1), 10, 10, 10, 4)
    even = result("CELPIP_G", date(2025, 2, 1), 8, 8, 8, 8)
    assert levels_by_language([even, uneven], date(2025, 6, 1)) == {"en": Clb(4, 10, 10, 10)}


def test_among_results_worth_the_same_the_higher_lowest_then_the_newer() -> None:
    older = result("CELPIP_G", date(2025, 1, 1), 9, 9, 9, 9)
    newer = result("CELPIP_G", date(2025, 2, 1), 9, 9, 9, 9)
    assert best_valid([older, newer], date(2025, 6, 1)) == newer
    assert best_valid([newer, older], date(2025, 6, 1)) == newer


def test_the_spouse_best_is_by_spouse_points() -> None:
    # First-language points prefer 10/4/4/4 (34 + 18 = 52) to 7/7/4/4 (34 + 12 = 46); spouse points
    # (§1.7: 5 for CLB 9+, 3 for 7-8, 0 for 4) prefer 7/7/4/4 (6) to 10/4/4/4 (5).
    one_high = result("CELPIP_G", date(2025, 1, 1), 10, 4, 4, 4)
    two_sevens = result("CELPIP_G", date(2025, 1, 1), 7, 7, 4, 4)
    on = date(2025, 6, 1)
    assert best_valid([one_high, two_sevens], on) == one_high
    assert best_valid([one_high, two_sevens], on, points=spouse_language_points) == two_sevens


def test_an_expired_result_is_skipped() -> None:
    expired = result("CELPIP_G", date(2023, 1, 1), 10, 10, 10, 10)
    assert best_valid([expired], date(2025, 6, 1)) is None
    assert levels_by_language([expired], date(2025, 6, 1)) == {}


def test_a_result_taken_after_the_as_of_date_is_ignored() -> None:
    earlier = result("CELPIP_G", date(2025, 1, 1), 8, 8, 8, 8)
    later = result("CELPIP_G", date(2025, 7, 1), 10, 10, 10, 10)
    assert best_valid([earlier, later], date(2025, 6, 1)) == earlier


def test_best_in_any_language_when_no_language_is_given() -> None:
    english = result("CELPIP_G", date(2025, 1, 1), 8, 8, 8, 8)
    french = result("TCF_CANADA", date(2025, 2, 1), 549, 549, 16, 16)
    assert best_valid([english, french], date(2025, 6, 1)) == french
    assert best_valid([english, french], date(2025, 6, 1), "en") == english


def test_lowest_clb_per_language() -> None:
    english = result("CELPIP_G", date(2025, 1, 1), 9, 8, 7, 10)
    french = result("TCF_CANADA", date(2025, 2, 1), 460, 500, 12, 6)
    assert lowest_clb_by_language([english, french], date(2025, 6, 1)) == {"en": 7, "fr": 5}


# --- first official language ------------------------------------------------------------------------

AS_OF = date(2025, 6, 1)


def test_the_language_worth_more_points_is_first() -> None:
    english = result("CELPIP_G", date(2025, 1, 1), 7, 7, 7, 7)  # 4 x 17 = 68
    french = result("TCF_CANADA", date(2025, 1, 1), 503, 499, 12, 12)  # NCLC 8 x 4 = 92
    first, second = official_languages([english, french], AS_OF)
    assert first == LanguageAbility("fr", Clb(8, 8, 8, 8))
    assert second == LanguageAbility("en", Clb(7, 7, 7, 7))


def test_points_not_the_lowest_level_decide_the_first_language() -> None:
    # English 10,10,10,5 = 108 points beats French 8 x 4 = 92 though its lowest level is lower.
    english = result("CELPIP_G", date(2025, 1, 1), 10, 10, 10, 5)
    french = result("TCF_CANADA", date(2025, 1, 1), 503, 499, 12, 12)
    first, _ = official_languages([english, french], AS_OF)
    assert first is not None and first.language == "en"


def test_a_tie_goes_to_english() -> None:
    french = result("TCF_CANADA", date(2025, 1, 1), 503, 499, 12, 12)
    english = result("CELPIP_G", date(2025, 1, 1), 8, 8, 8, 8)
    first, second = official_languages([french, english], AS_OF)
    assert (first and first.language, second and second.language) == ("en", "fr")


def test_one_language_only_has_no_second() -> None:
    french = result("TEF_CANADA", date(2025, 1, 1), 546, 546, 558, 556)
    assert official_languages([french], AS_OF) == (LanguageAbility("fr", Clb(10, 10, 10, 10)), None)


def test_no_valid_result_means_no_official_language() -> None:
    assert official_languages([result("CELPIP_G", date(2022, 1, 1), 9, 9, 9, 9)], AS_OF) == (None, None)


def test_clb_10_is_worth_34_points_per_ability_in_the_comparison() -> None:
    # French 34 x 3 + 17 = 119 against English 31 x 3 + 23 = 116: French is first by 3 points.
    french = result("TCF_CANADA", date(2025, 1, 1), 549, 549, 16, 10)
    english = result("CELPIP_G", date(2025, 1, 1), 9, 9, 9, 8)
    first, _ = official_languages([english, french], AS_OF)
    assert first is not None and first.language == "fr"
