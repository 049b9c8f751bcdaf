"""The CRS points engine (crs-rules.md §1), pure Python.

Every points table and cap lives in a `RulesVersion` value, not in code paths: replaying an old event
with the version that was in force on its date gives back the score the candidate had on that date,
and a new Ministerial Instruction becomes one more `RulesVersion`, not a new branch in `calculate`.

Section names follow crs-rules.md §1.1: A core / human capital, B spouse, C skill transferability,
D additional points.
"""

from __future__ import annotations

import dataclasses
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from shared.rules.factors import (
    CanadianEducation,
    Clb,
    CrsFactors,
    EducationLevel,
    LanguageAbility,
    SpouseFactors,
)

__all__ = [
    "CURRENT_RULES",
    "IN_FORCE",
    "RULES_2020_10_27",
    "RULES_2025_03_25",
    "RULES_CHOICES",
    "RULE_VERSIONS",
    "BySpouse",
    "CrsInputError",
    "CrsResult",
    "RulesVersion",
    "Steps",
    "calculate",
    "is_rules_choice",
    "pinned_rules",
    "rules_for_day",
    "rules_in_force",
    "validate_factors",
]

V = TypeVar("V")

MIN_CLB = 0
MAX_CLB = 12
ARRANGED_EMPLOYMENT_KINDS = ("none", "teer_0_major_00", "other_skilled")
OFFICIAL_LANGUAGES = ("en", "fr")

# Pair of points for the two columns of a transferability table: (lower column, higher column),
# e.g. (CLB 7+, CLB 9+) or (1 year Canadian work, 2 years or more).
ColumnPair = tuple[int, int]


# --- table shapes -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Steps(Generic[V]):
    """A table keyed by a whole number (age, CLB, years): a value holds from its start to the next start.

    Stored as two sorted tuples so a lookup is one C-level bisect; the engine is on the path of every
    profile update and of projection rebuilds.
    """

    starts: tuple[int, ...]
    values: tuple[V, ...]

    @classmethod
    def of(cls, *rows: tuple[int, V]) -> Steps[V]:
        starts = tuple(start for start, _ in rows)
        if not starts or starts[0] != 0 or list(starts) != sorted(set(starts)):
            raise ValueError(f"table starts must be strictly increasing from 0, got {starts}")
        return cls(starts, tuple(value for _, value in rows))

    def at(self, key: int) -> V:
        index = bisect_right(self.starts, key) - 1
        if index < 0:  # a negative key would otherwise wrap round to the last row
            raise ValueError(f"table key must be 0 or more, got {key}")
        return self.values[index]


@dataclass(frozen=True, slots=True)
class BySpouse(Generic[V]):
    """The two columns of a section A table: candidate with an accompanying spouse, or without."""

    with_spouse: V
    without_spouse: V

    def pick(self, has_spouse: bool) -> V:
        return self.with_spouse if has_spouse else self.without_spouse


def _split_steps(*rows: tuple[int, int, int]) -> BySpouse[Steps[int]]:
    """Build a with/without-spouse table from rows written like the doc: (from, with, without)."""
    return BySpouse(
        Steps.of(*((start, with_) for start, with_, _ in rows)),
        Steps.of(*((start, without) for start, _, without in rows)),
    )


def _split_levels(*rows: tuple[EducationLevel, int, int]) -> BySpouse[Mapping[EducationLevel, int]]:
    return BySpouse(
        _frozen({level: with_ for level, with_, _ in rows}),
        _frozen({level: without for level, _, without in rows}),
    )


def _frozen(mapping: dict[Any, V]) -> Mapping[Any, V]:
    # Read-only view: a rule version is shared by every calculation and must never change under them.
    return MappingProxyType(mapping)


# --- rule versions ----------------------------------------------------------------------------------


# eq=False: a rule version is identified by the object (and its name); its tables are read-only
# mappings, which cannot be hashed anyway.
@dataclass(frozen=True, slots=True, eq=False)
class RulesVersion:
    name: str
    effective_from: date
    # A. core / human capital
    age: BySpouse[Steps[int]]
    education: BySpouse[Mapping[EducationLevel, int]]
    first_language: BySpouse[Steps[int]]  # per ability, by CLB/NCLC
    second_language: BySpouse[Steps[int]]  # per ability, by CLB/NCLC, then capped
    second_language_cap: BySpouse[int]
    canadian_work: BySpouse[Steps[int]]  # by whole years
    # B. spouse or common-law partner
    spouse_education: Mapping[EducationLevel, int]
    spouse_language: Steps[int]  # per ability
    spouse_canadian_work: Steps[int]
    # C. skill transferability. Column choice: the lowest first-language CLB opens "CLB 7+" / "CLB 9+",
    # the Canadian work years open "1 year" / "2 years or more".
    language_columns: tuple[int, int]
    canadian_work_columns: tuple[int, int]
    education_x_language: Mapping[EducationLevel, ColumnPair]
    education_x_canadian_work: Mapping[EducationLevel, ColumnPair]
    foreign_work_x_language: Steps[ColumnPair]  # by foreign work years
    foreign_work_x_canadian_work: Steps[ColumnPair]
    certificate_x_language: Steps[int]  # by lowest first-language CLB
    transferability_group_cap: int  # C1 (a+b), C2 (a+b) and C3 each
    transferability_cap: int
    # D. additional points
    provincial_nomination: int
    french_min_nclc: int  # in all four French abilities
    bilingual_min_english_clb: int  # in all four English abilities, for the higher French bonus
    french_bonus_bilingual: int
    french_bonus_french_only: int
    canadian_education: Mapping[CanadianEducation, int]
    sibling: int
    arranged_employment: Mapping[str, int]
    additional_cap: int


_E = EducationLevel
_POST_SECONDARY_1Y: ColumnPair = (13, 25)
_POST_SECONDARY_TWO_OR_MORE: ColumnPair = (25, 50)
# §1.8 C1a (education with language) and C1b (education with Canadian work) share their rows: nothing
# for secondary or less, the "1 year or longer" row for one-year, two-year and bachelor's, the higher
# row for two-or-more, master's and doctoral.
_EDUCATION_X_SKILL: Mapping[EducationLevel, ColumnPair] = _frozen(
    {
        _E.LESS_THAN_SECONDARY: (0, 0),
        _E.SECONDARY: (0, 0),
        _E.ONE_YEAR: _POST_SECONDARY_1Y,
        _E.TWO_YEAR: _POST_SECONDARY_1Y,
        _E.BACHELORS: _POST_SECONDARY_1Y,
        _E.TWO_OR_MORE: _POST_SECONDARY_TWO_OR_MORE,
        _E.MASTERS: _POST_SECONDARY_TWO_OR_MORE,
        _E.DOCTORAL: _POST_SECONDARY_TWO_OR_MORE,
    }
)

# crs-rules.md §1, the grid in force since 2025-03-25.
RULES_2025_03_25 = RulesVersion(
    name="2025-03-25",
    effective_from=date(2025, 3, 25),
    age=_split_steps(
        (0, 0, 0),
        (18, 90, 99),
        (19, 95, 105),
        (20, 100, 110),  # 20 to 29
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
    ),
    education=_split_levels(
        (_E.LESS_THAN_SECONDARY, 0, 0),
        (_E.SECONDARY, 28, 30),
        (_E.ONE_YEAR, 84, 90),
        (_E.TWO_YEAR, 91, 98),
        (_E.BACHELORS, 112, 120),
        (_E.TWO_OR_MORE, 119, 128),
        (_E.MASTERS, 126, 135),
        (_E.DOCTORAL, 140, 150),
    ),
    first_language=_split_steps(
        (0, 0, 0), (4, 6, 6), (6, 8, 9), (7, 16, 17), (8, 22, 23), (9, 29, 31), (10, 32, 34)
    ),
    second_language=_split_steps((0, 0, 0), (5, 1, 1), (7, 3, 3), (9, 6, 6)),
    second_language_cap=BySpouse(22, 24),
    canadian_work=_split_steps((0, 0, 0), (1, 35, 40), (2, 46, 53), (3, 56, 64), (4, 63, 72), (5, 70, 80)),
    spouse_education=_frozen(
        {
            _E.LESS_THAN_SECONDARY: 0,
            _E.SECONDARY: 2,
            _E.ONE_YEAR: 6,
            _E.TWO_YEAR: 7,
            _E.BACHELORS: 8,
            _E.TWO_OR_MORE: 9,
            _E.MASTERS: 10,
            _E.DOCTORAL: 10,
        }
    ),
    spouse_language=Steps.of((0, 0), (5, 1), (7, 3), (9, 5)),
    spouse_canadian_work=Steps.of((0, 0), (1, 5), (2, 7), (3, 8), (4, 9), (5, 10)),
    language_columns=(7, 9),
    canadian_work_columns=(1, 2),
    # §1.8 C1a and C1b share their rows (_EDUCATION_X_SKILL).
    education_x_language=_EDUCATION_X_SKILL,
    education_x_canadian_work=_EDUCATION_X_SKILL,
    foreign_work_x_language=Steps.of((0, (0, 0)), (1, (13, 25)), (3, (25, 50))),
    foreign_work_x_canadian_work=Steps.of((0, (0, 0)), (1, (13, 25)), (3, (25, 50))),
    certificate_x_language=Steps.of((0, 0), (5, 25), (7, 50)),
    transferability_group_cap=50,
    transferability_cap=100,
    provincial_nomination=600,
    french_min_nclc=7,
    bilingual_min_english_clb=5,
    french_bonus_bilingual=50,
    french_bonus_french_only=25,
    canadian_education=_frozen(
        {
            CanadianEducation.NONE: 0,
            CanadianEducation.ONE_OR_TWO_YEAR: 15,
            CanadianEducation.THREE_YEAR_OR_LONGER: 30,
        }
    ),
    sibling=15,
    # Job-offer points were removed on 2025-03-25; a job offer still matters for eligibility elsewhere.
    arranged_employment=_frozen({"none": 0, "teer_0_major_00": 0, "other_skilled": 0}),
    additional_cap=600,
)

# The grid from the French-bonus raise (announced 2020-10-27) until the job-offer points went:
# identical except for arranged employment.
RULES_2020_10_27 = dataclasses.replace(
    RULES_2025_03_25,
    name="2020-10-27",
    effective_from=date(2020, 10, 27),
    arranged_employment=_frozen({"none": 0, "teer_0_major_00": 200, "other_skilled": 50}),
)

RULE_VERSIONS: dict[str, RulesVersion] = {v.name: v for v in (RULES_2020_10_27, RULES_2025_03_25)}
CURRENT_RULES = RULES_2025_03_25


def rules_in_force(on: date) -> RulesVersion:
    """The rule version in force on a date (a version applies from its `effective_from`, inclusive)."""
    in_force = [v for v in RULE_VERSIONS.values() if v.effective_from <= on]
    if not in_force:
        # Refuse rather than guess: scoring with a later grid would silently give wrong historic scores.
        earliest = min(v.effective_from for v in RULE_VERSIONS.values())
        raise ValueError(
            f"no CRS rule version is modelled before {earliest.isoformat()}, got {on.isoformat()}"
        )
    return max(in_force, key=lambda v: v.effective_from)


IN_FORCE = "in-force"
"""Not a version name: score each day with the version in force on that day (`rules_in_force`)."""
RULES_CHOICES: tuple[str, ...] = (*RULE_VERSIONS, IN_FORCE)
"""What a pool can be scored with: a modelled version (pinned), or `IN_FORCE`."""


def is_rules_choice(name: str) -> bool:
    """A modelled version's name, or `IN_FORCE`."""
    return name in RULES_CHOICES


def pinned_rules(name: str) -> RulesVersion | None:
    """The version `name` pins, or None for `IN_FORCE`; KeyError for a name that is not modelled."""
    return None if name == IN_FORCE else RULE_VERSIONS[name]


def rules_for_day(pinned: RulesVersion | None, day: date) -> RulesVersion:
    """`pinned`, or else the version in force on `day`.

    A day before the first modelled version (no grid of that time is modelled) gets the first one, so
    a service asked to score such a day keeps working; `rules_in_force` itself refuses such a day.
    """
    if pinned is not None:
        return pinned
    if day < _FIRST_VERSION.effective_from:
        return _FIRST_VERSION
    return rules_in_force(day)


_FIRST_VERSION = min(RULE_VERSIONS.values(), key=lambda version: version.effective_from)


# --- result -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CrsResult:
    """A CRS score. `breakdown` holds the points actually counted after every cap, so it sums to `total`."""

    total: int
    core: int  # section A
    spouse: int  # section B
    transferability: int  # section C
    additional: int  # section D
    breakdown: dict[str, int]
    rules_version: str

    def to_dict(self) -> dict[str, Any]:
        """The HTTP / event contract."""
        return {
            "total": self.total,
            "core": self.core,
            "spouse": self.spouse,
            "transferability": self.transferability,
            "additional": self.additional,
            "breakdown": dict(self.breakdown),
            "rules_version": self.rules_version,
        }


# --- validation -------------------------------------------------------------------------------------


class CrsInputError(ValueError):
    """Invalid factors. `errors` is `[{"field", "message"}]`, ready for a problem+json 422."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))


def validate_factors(factors: CrsFactors) -> None:
    """Raise `CrsInputError` listing every invalid field; the engine never scores nonsense."""
    errors: list[dict[str, str]] = []
    _check_whole(errors, "age", factors.age, 0, None)
    _check_whole(errors, "canadian_work_years", factors.canadian_work_years, 0, None)
    _check_whole(errors, "foreign_work_years", factors.foreign_work_years, 0, None)
    _check_choice(errors, "education_level", factors.education_level, _EDUCATION_LEVELS)
    _check_choice(errors, "canadian_education", factors.canadian_education, _CANADIAN_EDUCATION)
    _check_choice(errors, "arranged_employment", factors.arranged_employment, ARRANGED_EMPLOYMENT_KINDS)
    _check_languages(errors, factors.first_language, factors.second_language)
    if factors.spouse is not None:
        _check_spouse(errors, factors.spouse)
    if errors:
        raise CrsInputError(errors)


_EDUCATION_LEVELS = tuple(e.value for e in EducationLevel)
_CANADIAN_EDUCATION = tuple(e.value for e in CanadianEducation)


def _check_whole(errors: list[dict[str, str]], field: str, value: object, low: int, high: int | None) -> None:
    # bool is an int subclass; True as an age is a caller bug, not 1 year.
    if isinstance(value, bool) or not isinstance(value, int):
        errors.append({"field": field, "message": f"must be a whole number, got {value!r}"})
    elif value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"{low} or more"
        errors.append({"field": field, "message": f"must be {bounds}, got {value}"})


def _check_choice(errors: list[dict[str, str]], field: str, value: object, allowed: Sequence[str]) -> None:
    if value not in allowed:
        errors.append({"field": field, "message": f"must be one of {', '.join(allowed)}, got {value!r}"})


def _check_clb(errors: list[dict[str, str]], field: str, clb: Clb) -> None:
    for ability in ("speaking", "listening", "reading", "writing"):
        _check_whole(errors, f"{field}.{ability}", getattr(clb, ability), MIN_CLB, MAX_CLB)


def _check_languages(
    errors: list[dict[str, str]], first: LanguageAbility | None, second: LanguageAbility | None
) -> None:
    for field, ability in (("first_language", first), ("second_language", second)):
        if ability is not None:
            _check_choice(errors, f"{field}.language", ability.language, OFFICIAL_LANGUAGES)
            _check_clb(errors, f"{field}.clb", ability.clb)
    if second is not None and first is None:
        errors.append({"field": "second_language", "message": "needs a first_language"})
    if first is not None and second is not None and first.language == second.language:
        errors.append(
            {"field": "second_language", "message": "must be the other official language than first_language"}
        )


def _check_spouse(errors: list[dict[str, str]], spouse: SpouseFactors) -> None:
    _check_choice(errors, "spouse.education_level", spouse.education_level, _EDUCATION_LEVELS)
    _check_whole(errors, "spouse.canadian_work_years", spouse.canadian_work_years, 0, None)
    if spouse.clb is not None:
        _check_clb(errors, "spouse.clb", spouse.clb)


# --- calculation ------------------------------------------------------------------------------------


def calculate(factors: CrsFactors, rules: RulesVersion = CURRENT_RULES) -> CrsResult:
    """Score `factors` with `rules`. Raises `CrsInputError` (a `ValueError`) on invalid input."""
    validate_factors(factors)
    # The caller has already turned a non-accompanying or citizen/PR spouse into `spouse=None`.
    has_spouse = factors.spouse is not None
    core = _core(factors, rules, has_spouse)
    spouse = _spouse(factors.spouse, rules) if factors.spouse is not None else _NO_SPOUSE
    transferability = _transferability(factors, rules)
    additional = _additional(factors, rules)
    breakdown = {**core, **spouse, **transferability, **additional}
    return CrsResult(
        total=sum(breakdown.values()),
        core=sum(core.values()),
        spouse=sum(spouse.values()),
        transferability=sum(transferability.values()),
        additional=sum(additional.values()),
        breakdown=breakdown,
        rules_version=rules.name,
    )


_NO_SPOUSE = MappingProxyType({"spouse_education": 0, "spouse_language": 0, "spouse_canadian_work": 0})


def _core(factors: CrsFactors, rules: RulesVersion, has_spouse: bool) -> dict[str, int]:
    """Section A."""
    first = factors.first_language.clb if factors.first_language is not None else None
    second = factors.second_language.clb if factors.second_language is not None else None
    second_points = _per_ability(rules.second_language.pick(has_spouse), second)
    return {
        "age": rules.age.pick(has_spouse).at(factors.age),
        "education": rules.education.pick(has_spouse)[factors.education_level],
        "first_language": _per_ability(rules.first_language.pick(has_spouse), first),
        "second_language": min(second_points, rules.second_language_cap.pick(has_spouse)),
        "canadian_work": rules.canadian_work.pick(has_spouse).at(factors.canadian_work_years),
    }


def _per_ability(table: Steps[int], clb: Clb | None) -> int:
    if clb is None:
        return 0
    return sum(table.at(level) for level in clb.abilities())


def _spouse(spouse: SpouseFactors, rules: RulesVersion) -> dict[str, int]:
    """Section B."""
    return {
        "spouse_education": rules.spouse_education[spouse.education_level],
        "spouse_language": _per_ability(rules.spouse_language, spouse.clb),
        "spouse_canadian_work": rules.spouse_canadian_work.at(spouse.canadian_work_years),
    }


def _transferability(factors: CrsFactors, rules: RulesVersion) -> dict[str, int]:
    """Section C: three groups, each capped, then the section cap."""
    # Every language-based combination uses the *lowest* first-language ability ("all four ≥ 7").
    lowest = factors.first_language.clb.lowest() if factors.first_language is not None else None
    by_language = _column(lowest, rules.language_columns)
    by_work = _column(factors.canadian_work_years, rules.canadian_work_columns)
    education, foreign = factors.education_level, factors.foreign_work_years
    cap = rules.transferability_group_cap
    c1 = _within_cap(
        {
            "education_x_language": _cell(rules.education_x_language[education], by_language),
            "education_x_canadian_work": _cell(rules.education_x_canadian_work[education], by_work),
        },
        cap,
    )
    c2 = _within_cap(
        {
            "foreign_work_x_language": _cell(rules.foreign_work_x_language.at(foreign), by_language),
            "foreign_work_x_canadian_work": _cell(rules.foreign_work_x_canadian_work.at(foreign), by_work),
        },
        cap,
    )
    c3_points = 0
    if factors.certificate_of_qualification and lowest is not None:
        c3_points = rules.certificate_x_language.at(lowest)
    c3 = _within_cap({"certificate_x_language": c3_points}, cap)
    return _within_cap({**c1, **c2, **c3}, rules.transferability_cap)


def _column(value: int | None, thresholds: tuple[int, int]) -> int:
    """0 = below the lower column, 1 = lower column, 2 = higher column."""
    return 0 if value is None else bisect_right(thresholds, value)


def _cell(row: ColumnPair, column: int) -> int:
    return 0 if column == 0 else row[column - 1]


def _within_cap(points: dict[str, int], cap: int) -> dict[str, int]:
    """Trim in listing order so the counted points stay within `cap` and still add up to the total."""
    counted: dict[str, int] = {}
    room = cap
    for key, value in points.items():
        counted[key] = min(value, room)
        room -= counted[key]
    return counted


def _additional(factors: CrsFactors, rules: RulesVersion) -> dict[str, int]:
    """Section D; nomination first, so a capped section still shows the nomination whole."""
    return _within_cap(
        {
            "provincial_nomination": rules.provincial_nomination if factors.provincial_nomination else 0,
            "french": _french_bonus(factors, rules),
            "canadian_education": rules.canadian_education[factors.canadian_education],
            "sibling": rules.sibling if factors.sibling_in_canada else 0,
            "arranged_employment": rules.arranged_employment[factors.arranged_employment],
        },
        rules.additional_cap,
    )


def _french_bonus(factors: CrsFactors, rules: RulesVersion) -> int:
    """§1.9: French NCLC 7+ in all four; the higher bonus needs English CLB 5+ in all four as well.

    French may be the first or the second official language; the bonus comes on top of the language
    points of section A.
    """
    by_language = {a.language: a.clb for a in (factors.first_language, factors.second_language) if a}
    french, english = by_language.get("fr"), by_language.get("en")
    if french is None or french.lowest() < rules.french_min_nclc:
        return 0
    if english is not None and english.lowest() >= rules.bilingual_min_english_clb:
        return rules.french_bonus_bilingual
    return rules.french_bonus_french_only
