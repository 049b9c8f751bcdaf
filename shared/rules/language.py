"""CLB (English) and NCLC (French) levels from test results, and which results count on a given day."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import date

from shared.rules.crs import CURRENT_RULES
from shared.rules.document import (
    TEF_NEW_SCALE_FROM,
    Ability,
    LanguageTest,
    TestName,
    whole_years_between,
    years_after,
)
from shared.rules.factors import Clb, Language, LanguageAbility
from shared.tracked import TrackedDict

DECLARED_LANGUAGES: dict[str, Language] = {"english": "en", "french": "fr"}
"""The document's `first_official_language` values, as the language codes used here."""

RESULTS_VALID_YEARS = 2  # crs-rules.md §2.1: results stop counting once 2 years old

TEST_LANGUAGE: dict[TestName, Language] = {
    "IELTS_GENERAL": "en",
    "CELPIP_G": "en",
    "PTE_CORE": "en",
    "TEF_CANADA": "fr",
    "TCF_CANADA": "fr",
}

# The rows of every conversion table, highest first. Below the CLB 4 row the tables give nothing
# finer, so such a score is level 0 (CELPIP is the exception: its level is the CLB).
_ROWS = (10, 9, 8, 7, 6, 5, 4)

# Lowest score of each row, per ability, in the order of _ROWS (crs-rules.md §2.3 to §2.6).
# The published tables are contiguous ranges, so their lower bounds say everything.
_Minimums = Mapping[Ability, tuple[float, ...]]
_IELTS_GENERAL: _Minimums = {
    "reading": (8.0, 7.0, 6.5, 6.0, 5.0, 4.0, 3.5),
    "writing": (7.5, 7.0, 6.5, 6.0, 5.5, 5.0, 4.0),
    "listening": (8.5, 8.0, 7.5, 6.0, 5.5, 5.0, 4.5),
    "speaking": (7.5, 7.0, 6.5, 6.0, 5.5, 5.0, 4.0),
}
_PTE_CORE: _Minimums = {
    "reading": (88, 78, 69, 60, 51, 42, 33),
    "writing": (90, 88, 79, 69, 60, 51, 41),
    "listening": (89, 82, 71, 60, 50, 39, 28),
    "speaking": (89, 84, 76, 68, 59, 51, 42),
}
_TEF_CANADA_0_TO_699: _Minimums = {
    "reading": (546, 503, 462, 434, 393, 352, 306),
    "writing": (558, 512, 472, 428, 379, 330, 268),
    "listening": (546, 503, 462, 434, 393, 352, 306),
    "speaking": (556, 518, 494, 456, 422, 387, 328),
}
_TEF_CANADA_OLD_SCALE: _Minimums = {
    "reading": (263, 248, 233, 207, 181, 151, 121),
    "writing": (393, 371, 349, 310, 271, 226, 181),
    "listening": (316, 298, 280, 249, 217, 181, 145),
    "speaking": (393, 371, 349, 310, 271, 226, 181),
}
_TCF_CANADA: _Minimums = {
    "reading": (549, 524, 499, 453, 406, 375, 342),
    "writing": (16, 14, 12, 10, 7, 6, 4),
    "listening": (549, 523, 503, 458, 398, 369, 331),
    "speaking": (16, 14, 12, 10, 7, 6, 4),
}


def clb_for_score(test: TestName, ability: Ability, score: float, taken_on: date) -> int:
    """CLB/NCLC level (0..10) of one ability's score."""
    if test == "CELPIP_G":
        return min(int(score), 10)  # the CELPIP level is the CLB; 10 to 12 all count as CLB 10
    return _level(_minimums(test, taken_on)[ability], score)


def _level(minimums: tuple[float, ...], score: float) -> int:
    return next((level for level, lowest in zip(_ROWS, minimums, strict=True) if score >= lowest), 0)


def _minimums(test: TestName, taken_on: date) -> _Minimums:
    if test == "IELTS_GENERAL":
        return _IELTS_GENERAL
    if test == "PTE_CORE":
        return _PTE_CORE
    if test == "TCF_CANADA":
        return _TCF_CANADA
    # TEF Canada: the chart of the scale in force on the day the test was taken.
    return _TEF_CANADA_0_TO_699 if taken_on >= TEF_NEW_SCALE_FROM else _TEF_CANADA_OLD_SCALE


# Levels already converted, by (chart, score): scores sit on small fixed scales, so this stays small
# (a few thousand entries at most) and a profile's conversion is a handful of dict lookups.
_LEVELS: TrackedDict[tuple[int, float], int] = TrackedDict()
_MAX_MEMO = 50_000


def clb_of(result: LanguageTest) -> Clb:
    test = result.test
    if test == "CELPIP_G":
        return Clb(
            speaking=min(int(float(result.speaking)), 10),
            listening=min(int(float(result.listening)), 10),
            reading=min(int(float(result.reading)), 10),
            writing=min(int(float(result.writing)), 10),
        )
    chart = _minimums(test, result.taken_on)
    return Clb(
        speaking=_memo_level(chart["speaking"], float(result.speaking)),
        listening=_memo_level(chart["listening"], float(result.listening)),
        reading=_memo_level(chart["reading"], float(result.reading)),
        writing=_memo_level(chart["writing"], float(result.writing)),
    )


def clb_of_scores(
    test: TestName, taken_on: date, speaking: float, listening: float, reading: float, writing: float
) -> tuple[int, int, int, int]:
    """`clb_of` of a result with these scores, as (speaking, listening, reading, writing)."""
    if test == "CELPIP_G":
        return (
            min(int(float(speaking)), 10),
            min(int(float(listening)), 10),
            min(int(float(reading)), 10),
            min(int(float(writing)), 10),
        )
    chart = _minimums(test, taken_on)
    return (
        _memo_level(chart["speaking"], float(speaking)),
        _memo_level(chart["listening"], float(listening)),
        _memo_level(chart["reading"], float(reading)),
        _memo_level(chart["writing"], float(writing)),
    )


def _memo_level(minimums: tuple[float, ...], score: float) -> int:
    key = (id(minimums), score)  # the charts are module constants: their ids never change
    level = _LEVELS.get(key)
    if level is None:
        level = _level(minimums, score)
        if len(_LEVELS) >= _MAX_MEMO:  # only scores off every scale (unvalidated models) could get here
            _LEVELS.clear()
        _LEVELS[key] = level
    return level


def expires_on(result: LanguageTest) -> date:
    """The first day the result no longer counts."""
    return years_after(result.taken_on, RESULTS_VALID_YEARS)


def is_valid_on(result: LanguageTest, as_of: date) -> bool:
    """Taken by `as_of` and not yet 2 years old (a result exactly 2 years old has expired)."""
    return result.taken_on <= as_of and whole_years_between(result.taken_on, as_of) < RESULTS_VALID_YEARS


def first_language_points(clb: Clb) -> int:
    """CRS first-official-language points without a spouse (crs-rules.md §1.4), over the four abilities."""
    table = CURRENT_RULES.first_language.without_spouse
    return sum(table.at(level) for level in clb.abilities())


def spouse_language_points(clb: Clb) -> int:
    """CRS spouse language points (crs-rules.md §1.7), over the four abilities."""
    table = CURRENT_RULES.spouse_language
    return sum(table.at(level) for level in clb.abilities())


PointsOf = Callable[[Clb], int]


def best_valid(
    results: Iterable[LanguageTest],
    as_of: date,
    language: Language | None = None,
    points: PointsOf = first_language_points,
) -> LanguageTest | None:
    """The best result valid on `as_of`, in `language` or (None) in either official language.

    Several valid results in one language: the one worth the most `points` counts, not the latest
    (a result's four abilities are never mixed with another's). Among equals, the higher lowest
    level, then the more recent, then the first listed.
    """
    best: LanguageTest | None = None
    best_key: tuple[int, int, date] | None = None
    for result in results:
        if not is_valid_on(result, as_of) or language not in (None, TEST_LANGUAGE[result.test]):
            continue
        clb = clb_of(result)
        key = (points(clb), clb.lowest(), result.taken_on)
        if best_key is None or key > best_key:
            best, best_key = result, key
    return best


def levels_by_language(results: Iterable[LanguageTest], as_of: date) -> dict[Language, Clb]:
    """Per official language, the levels of its best valid result (expired results do not count)."""
    return {language: clb_of(result) for language, result in best_by_language(results, as_of).items()}


def best_by_language(results: Iterable[LanguageTest], as_of: date) -> dict[Language, LanguageTest]:
    """Per official language (English first), its best result valid on `as_of` (see `best_valid`)."""
    listed = list(results)
    chosen: dict[Language, LanguageTest | None] = {
        "en": best_valid(listed, as_of, "en"),
        "fr": best_valid(listed, as_of, "fr"),
    }
    return {language: result for language, result in chosen.items() if result is not None}


def lowest_clb_by_language(results: Iterable[LanguageTest], as_of: date) -> dict[Language, int]:
    return {language: clb.lowest() for language, clb in levels_by_language(results, as_of).items()}


def official_languages(
    results: Iterable[LanguageTest], as_of: date
) -> tuple[LanguageAbility | None, LanguageAbility | None]:
    """(first, second) official language: first is the one worth more first-language CRS points."""
    by_points = first_language_order(levels_by_language(results, as_of))
    first = by_points[0] if by_points else None
    second = by_points[1] if len(by_points) > 1 else None
    return first, second


def first_language_order(levels: Mapping[Language, Clb]) -> list[LanguageAbility]:
    """The languages with valid results, the one worth more first-language CRS points first."""
    return sorted(
        (LanguageAbility(language, clb) for language, clb in levels.items()),
        # English sorts first among equals, so a tie goes to English.
        key=lambda ability: (-first_language_points(ability.clb), ability.language != "en"),
    )
