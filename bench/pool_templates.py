"""Verified templates: candidates whose factors land in a chosen CRS bin, written out as profile documents.

1. A factor model draws age, education, Canadian education, language levels, Canadian and foreign work
   years, spouse, sibling and trade certificate from realistic weights tilted by a "strength" (so every
   bin, from 0-300 to 501-600, can be reached), constrained so the candidate meets a program: CEC for
   those working in Canada, the FSW grid (67 points) or the FSTP for those abroad. The factors are
   scored with ``shared.rules.crs.calculate``.
2. A kept draw is written out as a profile document v1 whose raw facts (date of birth, tests on their
   own score scales, credentials with ECAs, jobs with NOC 2021 codes and TEERs) give exactly those
   factors on ``as_of``, with every date before the day the profile was created.
3. Each document is checked with the real code: ``ProfileDocument``, ``validate_document`` and
   ``derive_profile`` + ``calculate`` must give the planned score and at least one program, on
   ``as_of`` and on the day it was submitted. Documents that fail are dropped and counted.
"""

from __future__ import annotations

import bisect
import functools
import gc
import itertools
import math
import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

from bench.ircc import (
    DATA_DIR,
    NOMINATED_BIN,
    IrccDistribution,
    bin_label,
    citizenship_weights,
    ircc_distribution,
)
from bench.pool_data import (
    ARMED_FORCES_OCCUPATIONS,
    ECA_ORGANIZATIONS,
    EMPLOYER_FIRST,
    EMPLOYER_SECOND,
    EMPLOYER_SUFFIX,
    FRANCOPHONE,
    NOMINATING_PROVINCES,
    OCCUPATIONS,
    PARTNER_SUBS,
    STUDENT_JOBS,
    THIRD_COUNTRIES,
)
from shared.rules.categories import CATEGORY_VERSIONS
from shared.rules.crs import calculate, rules_in_force
from shared.rules.derive import derive_profile
from shared.rules.document import (
    ABILITIES,
    TEF_NEW_SCALE_FROM,
    Ability,
    ProfileDocument,
    TestName,
    score_scale,
    validate_document,
    years_after,
    years_before,
)
from shared.rules.eligibility import FSW_PASS_MARK, settlement_funds_required
from shared.rules.experience import is_fstp_trade
from shared.rules.factors import (
    CanadianEducation,
    Clb,
    CrsFactors,
    EducationLevel,
    Language,
    LanguageAbility,
    SpouseFactors,
)
from shared.rules.language import clb_for_score

__all__ = [
    "DEFAULT_TEMPLATES",
    "TESTS_BY_LANGUAGE",
    "Choices",
    "Context",
    "Levels",
    "Template",
    "TemplatePool",
    "build_templates",
    "employer_name",
    "language_test_scores",
    "no_cyclic_gc",
    "occupation_key",
    "settlement_funds",
]

T = TypeVar("T")

DEFAULT_TEMPLATES: Final = 6_000  # verified templates the candidates vary
MIN_TEMPLATES_PER_BIN: Final = 120

# ============================================================================================
# Tables: language score scales, occupations
# ============================================================================================

TESTS_BY_LANGUAGE: Final[dict[Language, tuple[tuple[TestName, ...], tuple[float, ...]]]] = {
    "en": (("IELTS_GENERAL", "CELPIP_G", "PTE_CORE"), (55.0, 33.0, 12.0)),
    "fr": (("TEF_CANADA", "TCF_CANADA"), (60.0, 40.0)),
}


@functools.cache
def _scores_by_level(test: TestName, ability: Ability, new_tef_scale: bool) -> dict[int, tuple[float, ...]]:
    """Every score on the test's scale, grouped by the CLB/NCLC level it converts to (via the rules)."""
    taken_on = TEF_NEW_SCALE_FROM if new_tef_scale else TEF_NEW_SCALE_FROM - timedelta(days=1)
    low, high, step = score_scale(test, ability, taken_on)
    grouped: dict[int, list[float]] = {}
    for i in range(round((high - low) / step) + 1):
        score = low + i * step
        value: float = score if step != 1 else int(score)
        grouped.setdefault(clb_for_score(test, ability, value, taken_on), []).append(value)
    return {level: tuple(scores) for level, scores in grouped.items()}


def language_test_scores(
    rng: random.Random, test: TestName, taken_on: date, levels: dict[Ability, int]
) -> dict[str, Any]:
    """A result of `test` taken on `taken_on`, scored on its own scale, at the given CLB/NCLC levels."""
    new_scale = taken_on >= TEF_NEW_SCALE_FROM
    result: dict[str, Any] = {"test": test, "taken_on": taken_on.isoformat()}
    for ability in ABILITIES:
        result[ability] = rng.choice(_scores_by_level(test, ability, new_scale)[levels[ability]])
    return result


@functools.cache
def occupation_key(noc: str) -> tuple[int, bool, frozenset[str]]:
    """What an occupation means to the rules: TEER, FSTP trade, the draw categories listing it."""
    listed = frozenset(v.code for v in CATEGORY_VERSIONS if noc in v.occupations)
    return int(noc[1]), is_fstp_trade(noc), listed


@dataclass(frozen=True, slots=True)
class Choices:
    """Weighted values; `pick` draws one as `rng.choices(values, cum_weights=...)` would."""

    values: tuple[str, ...]
    cum_weights: tuple[float, ...]

    @classmethod
    def of(cls, pairs: Iterable[tuple[str, float]]) -> Choices:
        values, weights = zip(*pairs, strict=True)
        return cls(tuple(values), tuple(itertools.accumulate(weights)))

    def pick(self, rng: random.Random) -> str:
        # What rng.choices(values, cum_weights=...) does, without its per-call set-up.
        return self.values[bisect.bisect(self.cum_weights, rng.random() * self.cum_weights[-1])]


@functools.cache
def _occupation_tables() -> tuple[dict[str, Choices], dict[tuple[int, bool, frozenset[str]], Choices]]:
    """Occupations by kind (for templates) and by rule-equivalence class (for variations)."""
    kinds: dict[str, list[tuple[str, float]]] = {}
    classes: dict[tuple[int, bool, frozenset[str]], list[tuple[str, float]]] = {}
    for noc, weight in OCCUPATIONS:
        teer, trade, _ = key = occupation_key(noc)
        kind = "trade" if trade else f"teer{teer}"
        kinds.setdefault(kind, []).append((noc, weight))
        classes.setdefault(key, []).append((noc, weight))
    return (
        {kind: Choices.of(pairs) for kind, pairs in kinds.items()},
        {key: Choices.of(pairs) for key, pairs in classes.items()},
    )


# ============================================================================================
# Step 1: the factor model ("spec")
# ============================================================================================

_E = EducationLevel
_TILT: Final = 5.0
_AGE_WEIGHTS: Final[dict[int, float]] = {
    18: 0.3, 19: 0.6, 20: 1.0, 21: 1.6, 22: 2.4, 23: 3.4, 24: 4.5, 25: 5.6, 26: 6.4, 27: 7.0, 28: 7.2,
    29: 7.2, 30: 7.0, 31: 6.6, 32: 6.0, 33: 5.4, 34: 4.8, 35: 4.2, 36: 3.6, 37: 3.0, 38: 2.5, 39: 2.1,
    40: 1.7, 41: 1.4, 42: 1.1, 43: 0.9, 44: 0.7, 45: 0.55, 46: 0.45, 47: 0.35, 48: 0.3, 49: 0.25,
    50: 0.2, 51: 0.15, 52: 0.12, 53: 0.1, 54: 0.08, 55: 0.06,
}  # fmt: skip
# CRS age points without a spouse (crs-rules.md §1.2), used only to tilt the draw.
_AGE_POINTS: Final[dict[int, int]] = {
    18: 99, 19: 105, **dict.fromkeys(range(20, 30), 110), 30: 105, 31: 99, 32: 94, 33: 88, 34: 83, 35: 77,
    36: 72, 37: 66, 38: 61, 39: 55, 40: 50, 41: 39, 42: 28, 43: 17, 44: 6, **dict.fromkeys(range(45, 56), 0),
}  # fmt: skip
# Counted CRS education level: base weight, CRS points (single), youngest plausible age.
_EDUCATION: Final[dict[EducationLevel, tuple[float, int, int]]] = {
    _E.LESS_THAN_SECONDARY: (0.4, 0, 18),
    _E.SECONDARY: (3.5, 30, 18),
    _E.ONE_YEAR: (4.5, 90, 19),
    _E.TWO_YEAR: (8.0, 98, 20),
    _E.BACHELORS: (29.0, 120, 21),
    _E.TWO_OR_MORE: (20.0, 128, 22),
    _E.MASTERS: (31.0, 135, 24),
    _E.DOCTORAL: (3.6, 150, 28),
}
_SPOUSE_EDUCATION: Final[dict[EducationLevel, tuple[float, int]]] = {  # base weight, CRS points
    _E.LESS_THAN_SECONDARY: (10.0, 0),
    _E.SECONDARY: (8.0, 2),
    _E.ONE_YEAR: (6.0, 6),
    _E.TWO_YEAR: (10.0, 7),
    _E.BACHELORS: (30.0, 8),
    _E.TWO_OR_MORE: (12.0, 9),
    _E.MASTERS: (22.0, 10),
    _E.DOCTORAL: (2.0, 10),
}
_SPOUSE_EDUCATION_WEIGHTS: Final = {level: weight for level, (weight, _) in _SPOUSE_EDUCATION.items()}
_FIRST_LANGUAGE_POINTS: Final = {4: 6, 5: 6, 6: 9, 7: 17, 8: 23, 9: 31, 10: 34}
_FIRST_LANGUAGE_WEIGHTS: Final = {4: 1.0, 5: 4.0, 6: 9.0, 7: 22.0, 8: 24.0, 9: 22.0, 10: 18.0}
_SECOND_LANGUAGE_WEIGHTS: Final = {4: 1.0, 5: 2.0, 6: 3.0, 7: 5.0, 8: 3.0, 9: 1.5, 10: 0.5}
_NATIVE_FRENCH_WEIGHTS: Final = {6: 1.0, 7: 3.0, 8: 4.0, 9: 4.0, 10: 3.0}
_CANADIAN_YEARS: Final = {1: 45.0, 2: 25.0, 3: 14.0, 4: 8.0, 5: 5.0, 6: 3.0}
_CANADIAN_POINTS: Final = {0: 0, 1: 40, 2: 53, 3: 64, 4: 72, 5: 80, 6: 80}
_FOREIGN_YEARS_IN_CANADA: Final = {0: 45.0, 1: 18.0, 2: 12.0, 3: 10.0, 4: 6.0, 5: 4.0, 6: 3.0, 7: 2.0}
_FOREIGN_YEARS_ABROAD: Final = {1: 10.0, 2: 14.0, 3: 16.0, 4: 14.0, 5: 12.0, 6: 10.0, 7: 8.0, 10: 16.0}
_LONG_CAREER: Final = 10  # a foreign job held through the whole 10-year window
_COMPLETION_AGE: Final[dict[str, int]] = {
    "less_than_secondary": 16, "secondary": 18, "one_year": 19, "two_year": 20, "bachelors": 22,
    "masters": 24, "professional_degree": 25, "doctoral": 28,
}  # fmt: skip
_FSW_EDUCATION: Final = {
    _E.DOCTORAL: 25, _E.MASTERS: 23, _E.TWO_OR_MORE: 22, _E.BACHELORS: 21, _E.TWO_YEAR: 19, _E.ONE_YEAR: 15,
    _E.SECONDARY: 5, _E.LESS_THAN_SECONDARY: 0,
}  # fmt: skip

Levels = dict[Ability, int]
Credential = tuple[str, float, bool]  # (document level, program years, has an ECA when foreign)
OfferKind = Literal["valid", "invalid", "military"]
SpouseKind = Literal["accompanying", "not_accompanying", "citizen"]


@dataclass(slots=True)
class _Spec:
    """One candidate's factors and the plan that realises them."""

    in_canada: bool
    citizenship: str
    residence: str
    age: int
    education: EducationLevel
    canadian_education: CanadianEducation
    foreign_credentials: list[Credential]  # oldest first
    canadian_credentials: list[Credential]  # oldest first
    languages: dict[Language, Levels]
    canadian_years: int
    foreign_years: int
    canadian_noc: str | None
    foreign_noc: str | None
    certificate: bool
    offer: OfferKind | None
    offer_noc: str | None
    marital_status: str
    spouse: SpouseKind | None
    spouse_education: EducationLevel
    spouse_levels: Levels | None
    spouse_canadian_years: int
    family_size: int
    sibling: bool
    relative: bool
    funds_needed: bool
    student_job: bool
    factors: CrsFactors = field(init=False)


def _tilted(rng: random.Random, weights: dict[T, float], quality: Callable[[T], float], s: float) -> T:
    """A weighted draw tilted by the strength `s` (0..1) towards values of higher `quality` (0..1)."""
    k = _TILT * (s - 0.5)
    values = list(weights)
    return rng.choices(values, [weights[v] * math.exp(k * quality(v)) for v in values])[0]


def _chance(rng: random.Random, p: float, s: float, lift: float = 0.0) -> bool:
    """True with probability `p`, raised (lift > 0) or lowered with the strength."""
    odds = p / (1 - p) * math.exp(lift * _TILT * (s - 0.5))
    return rng.random() < odds / (1 + odds)


def _levels(rng: random.Random, base: int, floor: int) -> Levels:
    base = max(base, floor)
    return {ability: min(10, max(floor, base + rng.choice((-1, 0, 0, 1)))) for ability in ABILITIES}


def _clb(levels: Levels) -> Clb:
    return Clb(
        speaking=levels["speaking"],
        listening=levels["listening"],
        reading=levels["reading"],
        writing=levels["writing"],
    )


def _first_points(levels: Levels) -> int:
    return sum(_FIRST_LANGUAGE_POINTS[level] for level in levels.values())


def _education_plan(
    rng: random.Random, level: EducationLevel, canadian: CanadianEducation
) -> tuple[list[Credential], list[Credential]]:
    """Foreign and Canadian credentials (oldest first) whose counted level and Canadian bonus are given."""
    one_or_two: Credential = rng.choice([("one_year", 1, True), ("two_year", 2, True)])
    bachelors: Credential = ("bachelors", rng.choice([4, 4, 4, 3]), True)
    unassessed_bachelors: Credential = ("bachelors", 4, False)
    c = CanadianEducation
    match level, canadian:
        case _E.LESS_THAN_SECONDARY, _:
            return ([("less_than_secondary", 6, False)] if rng.random() < 0.5 else []), []
        case _E.SECONDARY, _:
            return [("secondary", 4, True)], []
        case ((_E.ONE_YEAR | _E.TWO_YEAR), c.NONE):
            return [("one_year", 1, True) if level is _E.ONE_YEAR else ("two_year", 2, True)], []
        case ((_E.ONE_YEAR | _E.TWO_YEAR), _):
            own: Credential = ("one_year", 1, True) if level is _E.ONE_YEAR else ("two_year", 2, True)
            return ([unassessed_bachelors] if rng.random() < 0.25 else []), [own]
        case _E.BACHELORS, c.NONE:
            return [bachelors], []
        case _E.BACHELORS, _:
            return [], [("bachelors", 4, True)]
        case _E.TWO_OR_MORE, c.NONE:
            return [bachelors, one_or_two], []
        case _E.TWO_OR_MORE, c.ONE_OR_TWO_YEAR:
            return [bachelors], [one_or_two]
        case _E.TWO_OR_MORE, _:
            if rng.random() < 0.5:
                return [], [("bachelors", 4, True), ("one_year", 1, True)]
            return [bachelors], [("two_year", 3, True)]  # a 3-year Canadian diploma
        case _E.MASTERS, _:
            masters: Credential = (
                ("professional_degree", 4, True) if rng.random() < 0.08 else ("masters", 2, True)
            )
            first: Credential = (bachelors[0], bachelors[1], rng.random() < 0.5)
            if canadian is c.NONE:
                return [first, masters], []
            if canadian is c.ONE_OR_TWO_YEAR:
                return [first, masters], [one_or_two]
            return [first], [("masters", rng.choice([1, 2, 2]), True)]
        case _:  # doctoral
            doctoral: Credential = ("doctoral", 4, True)
            masters_before: Credential = ("masters", 2, rng.random() < 0.5)
            if canadian is c.NONE:
                return [masters_before, doctoral], []
            if canadian is c.ONE_OR_TWO_YEAR:
                return [masters_before, doctoral], [("one_year", 1, True)]
            return [masters_before], [doctoral]


def _completion_ages(credentials: Sequence[Credential]) -> list[int]:
    """Typical age on completing each credential (oldest first): each after the one before it."""
    ages: list[int] = []
    for level, years, _ in credentials:
        ages.append(max(_COMPLETION_AGE[level], (ages[-1] if ages else 0) + math.ceil(years)))
    return ages


_CANADIAN_KINDS: Final[dict[EducationLevel, tuple[CanadianEducation, ...]]] = {
    _E.LESS_THAN_SECONDARY: (),
    _E.SECONDARY: (),
    _E.ONE_YEAR: (CanadianEducation.ONE_OR_TWO_YEAR,),
    _E.TWO_YEAR: (CanadianEducation.ONE_OR_TWO_YEAR,),
    _E.BACHELORS: (CanadianEducation.THREE_YEAR_OR_LONGER,),
    _E.TWO_OR_MORE: (CanadianEducation.ONE_OR_TWO_YEAR, CanadianEducation.THREE_YEAR_OR_LONGER),
    _E.MASTERS: (CanadianEducation.ONE_OR_TWO_YEAR, CanadianEducation.THREE_YEAR_OR_LONGER),
    _E.DOCTORAL: (CanadianEducation.ONE_OR_TWO_YEAR, CanadianEducation.THREE_YEAR_OR_LONGER),
}


class Context:
    """What the samplers need besides the random generator: weights loaded once per process."""

    def __init__(self, as_of: date, data_dir: Path) -> None:
        self.as_of = as_of
        codes, weights = citizenship_weights(data_dir)
        self.citizenships = Choices.of(zip(codes, weights, strict=True))
        self.francophone = Choices.of((c, w) for c, w in zip(codes, weights, strict=True) if c in FRANCOPHONE)
        self.other = Choices.of((c, w) for c, w in zip(codes, weights, strict=True) if c not in FRANCOPHONE)
        self.third_countries = Choices.of(THIRD_COUNTRIES)
        self.eca_bodies = Choices.of(ECA_ORGANIZATIONS)
        self.provinces = Choices.of(NOMINATING_PROVINCES)
        self.occupations, self.occupation_classes = _occupation_tables()
        self.partners = Choices.of((sub, 1 / (i + 1)) for i, sub in enumerate(PARTNER_SUBS))

    def occupation(self, rng: random.Random, education: EducationLevel, trade: bool) -> str:
        if trade:
            return self.occupations["trade"].pick(rng)
        degree = education in (_E.BACHELORS, _E.TWO_OR_MORE, _E.MASTERS, _E.DOCTORAL)
        teers = (8.0, 60.0, 20.0, 12.0) if degree else (2.0, 6.0, 50.0, 42.0)
        teer = rng.choices((0, 1, 2, 3), teers)[0]
        return self.occupations[f"teer{teer}"].pick(rng)


def _sample_spec(rng: random.Random, s: float, ctx: Context) -> _Spec | None:
    """A candidate's factors at strength `s`, or None when the draw cannot enter the pool."""
    in_canada = _chance(rng, 0.5, s, lift=0.5)
    citizenship = ctx.citizenships.pick(rng)
    francophone = citizenship in FRANCOPHONE
    age = _tilted(rng, _AGE_WEIGHTS, lambda a: _AGE_POINTS[a] / 110, s * 0.8 + 0.1)

    feasible = {lvl: w for lvl, (w, _, youngest) in _EDUCATION.items() if youngest <= age}
    education = _tilted(rng, feasible, lambda lvl: _EDUCATION[lvl][1] / 150, s)
    canadian = CanadianEducation.NONE
    kinds = _CANADIAN_KINDS[education]
    if in_canada and kinds and _chance(rng, 0.35, s, lift=0.5):
        canadian = rng.choice(kinds)
    foreign_credentials, canadian_credentials = _education_plan(rng, education, canadian)
    highest_foreign = max(_completion_ages(foreign_credentials), default=18)
    study_years = sum(c[1] for c in canadian_credentials)
    adult_years = age - highest_foreign

    # Work: Canadian years (in Canada only), then foreign years, within a life and the 10-year window.
    canadian_years = 0
    if in_canada:
        fits = {y: w for y, w in _CANADIAN_YEARS.items() if y + 1 + study_years <= adult_years}
        if not fits:
            return None
        canadian_years = _tilted(rng, fits, lambda y: _CANADIAN_POINTS[y] / 80, s)
        room = min(adult_years - canadian_years - study_years, 9.6 - canadian_years - study_years) - 1.6
        table = _FOREIGN_YEARS_IN_CANADA
    else:
        room = adult_years - 1.0
        table = _FOREIGN_YEARS_ABROAD
    fits = {
        y: w
        for y, w in table.items()
        if y <= room and (y != _LONG_CAREER or (not in_canada and adult_years >= 12 and age >= 32))
    }
    if not fits:
        return None
    foreign_years = _tilted(rng, fits, lambda y: 0.0 if y == 0 else (0.5 if y < 3 else 1.0), s)

    # Occupations: trades are a small share; the Canadian job often continues the foreign one.
    trade = _chance(rng, 0.07 if in_canada else 0.05, s, lift=-0.3)
    canadian_noc = ctx.occupation(rng, education, trade) if in_canada else None
    foreign_noc = None
    if foreign_years:
        same = canadian_noc is not None and rng.random() < 0.55
        foreign_noc = canadian_noc if same else ctx.occupation(rng, education, trade and not in_canada)
    if not in_canada and trade and foreign_years < 2:
        trade = False
    skilled_trade_route = not in_canada and trade  # FSTP: 2 years in the trade, an offer or a certificate

    # Languages. The floor is what the candidate's own program asks of the main language.
    if in_canada:
        assert canadian_noc is not None
        floor = 7 if int(canadian_noc[1]) <= 1 else 5
    else:
        floor = 5 if skilled_trade_route else 7
    languages = _sample_languages(rng, s, francophone, floor)
    ranked = sorted(languages.items(), key=lambda item: (-_first_points(item[1]), item[0] != "en"))
    first = LanguageAbility(ranked[0][0], _clb(ranked[0][1]))
    second = LanguageAbility(ranked[1][0], _clb(ranked[1][1])) if len(ranked) > 1 else None

    marital_status, spouse, family_size = _sample_family(rng, s)
    spouse_education, spouse_levels, spouse_canadian_years = _E.LESS_THAN_SECONDARY, None, 0
    if spouse is not None:
        spouse_education = _tilted(rng, _SPOUSE_EDUCATION_WEIGHTS, lambda e: _SPOUSE_EDUCATION[e][1] / 10, s)
        if rng.random() < 0.6:
            spouse_levels = _levels(rng, _tilted(rng, _FIRST_LANGUAGE_WEIGHTS, lambda v: v / 10, s), 4)
        if in_canada:
            spouse_canadian_years = _tilted(rng, {0: 60.0, 1: 20.0, 2: 12.0, 3: 8.0}, lambda y: y / 3, s)

    sibling = _chance(rng, 0.05, s, lift=0.3)
    relative = sibling or rng.random() < 0.07
    certificate = trade and rng.random() < (0.6 if skilled_trade_route else 0.15)
    offer: OfferKind | None
    if skilled_trade_route and (not certificate or rng.random() < 0.2):
        offer, offer_noc = "valid", foreign_noc  # FSTP: an offer in the trade when there is no certificate
    else:
        offer, offer_noc = _sample_offer(rng, in_canada, canadian_noc or foreign_noc)
    funds_needed = not in_canada or rng.random() < 0.75

    spec = _Spec(
        in_canada=in_canada,
        citizenship=citizenship,
        residence="CA"
        if in_canada
        else (citizenship if rng.random() < 0.88 else ctx.third_countries.pick(rng)),
        age=age,
        education=education,
        canadian_education=canadian,
        foreign_credentials=foreign_credentials,
        canadian_credentials=canadian_credentials,
        languages=languages,
        canadian_years=canadian_years,
        foreign_years=foreign_years,
        canadian_noc=canadian_noc,
        foreign_noc=foreign_noc,
        certificate=certificate,
        offer=offer,
        offer_noc=offer_noc,
        marital_status=marital_status,
        spouse=spouse,
        spouse_education=spouse_education,
        spouse_levels=spouse_levels,
        spouse_canadian_years=spouse_canadian_years,
        family_size=family_size,
        sibling=sibling,
        relative=relative,
        funds_needed=funds_needed,
        student_job=bool(canadian_credentials) and rng.random() < 0.3,
    )
    if not in_canada and not skilled_trade_route:
        if education is _E.LESS_THAN_SECONDARY or _fsw_grid(spec, first, second) < FSW_PASS_MARK:
            return None
    spec.factors = CrsFactors(
        age=age,
        education_level=education,
        canadian_education=canadian,
        first_language=first,
        second_language=second,
        canadian_work_years=canadian_years,
        foreign_work_years=foreign_years,
        certificate_of_qualification=certificate,
        provincial_nomination=False,
        sibling_in_canada=sibling,
        spouse=(
            SpouseFactors(
                spouse_education, _clb(spouse_levels) if spouse_levels else None, spouse_canadian_years
            )
            if spouse == "accompanying"
            else None
        ),
        arranged_employment=_arranged_employment(offer, offer_noc),
    )
    return spec


def _sample_languages(rng: random.Random, s: float, francophone: bool, floor: int) -> dict[Language, Levels]:
    """Levels per official language tested; the main language meets `floor` in every ability."""
    languages: dict[Language, Levels] = {}
    if francophone and rng.random() < 0.45:  # French first, often English too
        languages["fr"] = _levels(rng, _tilted(rng, _NATIVE_FRENCH_WEIGHTS, lambda v: v / 10, s), floor)
        if rng.random() < 0.65:
            languages["en"] = _levels(rng, _tilted(rng, _SECOND_LANGUAGE_WEIGHTS, lambda v: v / 10, s), 4)
        return languages
    weights = {v: w for v, w in _FIRST_LANGUAGE_WEIGHTS.items() if v >= floor - 1}
    languages["en"] = _levels(rng, _tilted(rng, weights, lambda v: v / 10, s), floor)
    if _chance(rng, 0.5 if francophone else 0.04, s, lift=0.5):  # French learners: the French bonus
        weights = _NATIVE_FRENCH_WEIGHTS if francophone else _SECOND_LANGUAGE_WEIGHTS
        languages["fr"] = _levels(rng, _tilted(rng, weights, lambda v: v / 10, s), 4)
    return languages


def _sample_family(rng: random.Random, s: float) -> tuple[str, SpouseKind | None, int]:
    """Marital status, the spouse's situation, family size."""
    if not _chance(rng, 0.42, s, lift=-0.2):
        status = rng.choices(("single", "divorced", "separated", "widowed"), (88, 8, 3, 1))[0]
        return status, None, 1 if rng.random() < 0.9 else 2
    status = rng.choices(("married", "common_law"), (75, 25))[0]
    spouse: SpouseKind = rng.choices(("accompanying", "not_accompanying", "citizen"), (85, 9, 6))[0]
    return status, spouse, 2 + rng.choices((0, 1, 2, 3), (55, 25, 15, 5))[0]


def _sample_offer(
    rng: random.Random, in_canada: bool, noc: str | None
) -> tuple[OfferKind | None, str | None]:
    """A few job offers (no CRS points since 2025-03-25): valid ones, flawed ones, the Armed Forces."""
    roll = rng.random()
    if roll < 0.002:
        return "military", rng.choice(ARMED_FORCES_OCCUPATIONS)
    if roll < (0.055 if in_canada else 0.015):
        return "valid", noc
    if roll < (0.065 if in_canada else 0.018):
        return "invalid", noc
    return None, None


def _arranged_employment(
    offer: OfferKind | None, noc: str | None
) -> Literal["none", "teer_0_major_00", "other_skilled"]:
    if offer not in ("valid", "military") or noc is None or int(noc[1]) > 3:
        return "none"
    return "teer_0_major_00" if noc.startswith("00") else "other_skilled"


def _fsw_grid(spec: _Spec, first: LanguageAbility, second: LanguageAbility | None) -> int:
    """The FSW selection grid of a candidate abroad (crs-rules.md §3.3), from the planned factors."""
    language = sum(6 if v >= 9 else {8: 5, 7: 4}.get(v, 0) for v in first.clb.abilities())
    if second is not None and second.clb.lowest() >= 5:
        language += 4
    years = spec.foreign_years
    experience = 15 if years >= 6 else {0: 0, 1: 9, 2: 11, 3: 11, 4: 13, 5: 13}[years]
    age = 12 if 18 <= spec.age <= 35 else max(0, 47 - spec.age) if spec.age <= 46 else 0
    arranged = 10 if _arranged_employment(spec.offer, spec.offer_noc) != "none" else 0
    adaptability = 5 if spec.relative else 0
    if spec.spouse == "accompanying" and spec.spouse_levels and min(spec.spouse_levels.values()) >= 4:
        adaptability += 5
    adaptability += 5 if arranged else 0
    return language + _FSW_EDUCATION[spec.education] + experience + age + arranged + min(adaptability, 10)


# ============================================================================================
# Step 2: the document that realises a spec
# ============================================================================================


class _Infeasible(Exception):
    """The random dates of a plan do not fit (a life too short for the career); draw again."""


def _day(d: date) -> str:
    return d.isoformat()


def _between(rng: random.Random, first: date, last: date) -> date:
    if last < first:
        raise _Infeasible(f"{first} > {last}")
    return date.fromordinal(rng.randint(first.toordinal(), last.toordinal()))


def _days(n: int) -> timedelta:
    return timedelta(days=n)


@dataclass(slots=True)
class _Built:
    document: dict[str, Any]
    submitted_on: date
    created_gap: int  # days between creating and submitting the profile


def _job(noc: str, country: str, start: date, end: date | None, hours: float, *, self_employed: bool = False,
         student: bool = False) -> dict[str, Any]:  # fmt: skip
    return {
        "noc_code": noc,
        "teer": int(noc[1]),
        "country": country,
        "start": _day(start),
        "end": None if end is None else _day(end),
        "hours_per_week": hours,
        "self_employed": self_employed,
        "while_full_time_student": student,
    }


def _work_block(
    rng: random.Random, noc: str, country: str, years: int, end: date | None, as_of: date, switch_by: date
) -> tuple[list[dict[str, Any]], date]:
    """Jobs adding up to `years` whole years of full-time work up to `end` (None: still held); the start.

    The work may be split between two employers, the second starting by `switch_by` (the document is
    written after that day).
    """
    last = end or as_of
    days = 364 * years + rng.randint(20, 290)
    start = last - _days(days - 1)
    hours = rng.choice((37.5, 40, 40, 40, 44, 45))
    latest_switch = min(days - 200, (switch_by - start).days)
    if years >= 2 and latest_switch >= 200 and rng.random() < 0.3:  # back to back, same occupation
        switch = start + _days(rng.randint(200, latest_switch))
        return [
            _job(noc, country, start, switch - _days(1), hours),
            _job(noc, country, switch, end, rng.choice((37.5, 40, 40, 45))),
        ], start
    return [_job(noc, country, start, end, hours)], start


def _build(rng: random.Random, spec: _Spec, ctx: Context) -> _Built:
    as_of = ctx.as_of
    dob = _between(rng, years_before(as_of, spec.age + 1) + _days(1), years_before(as_of, spec.age))
    window_start = years_before(as_of, 10) + _days(1)  # CRS experience counts in the last 10 years
    foreign_country = spec.residence if not spec.in_canada else spec.citizenship
    if rng.random() < 0.1:
        foreign_country = ctx.third_countries.pick(rng)
    if foreign_country == "CA":
        foreign_country = "US"

    work: list[dict[str, Any]] = []
    canadian_credentials: list[dict[str, Any]] = []
    latest: list[date] = []  # every date the document holds so far
    eligible_from = as_of - _days(400)  # the first day the program's work experience is there
    switch_by = as_of - _days(400)  # before any day the document can have been written
    next_start = as_of  # the earliest start of what comes later in life (working back from as_of)

    if spec.in_canada:
        assert spec.canadian_noc is not None
        ongoing = rng.random() < 0.85
        end = None if ongoing else as_of - _days(rng.randint(40, 160))
        jobs, next_start = _work_block(
            rng, spec.canadian_noc, "CA", spec.canadian_years, end, as_of, switch_by
        )
        work = jobs + work
        latest += [next_start] + ([end] if end else [])
        eligible_from = next_start + _days(370)  # CEC: a year of Canadian work
        # Canadian studies, newest first, each ending before what follows.
        for level, years, _ in reversed(spec.canadian_credentials):
            completed = next_start - _days(rng.randint(10, 120))
            canadian_credentials.insert(0, _credential(level, years, completed, "CA", None))
            if spec.student_job and not any(job["while_full_time_student"] for job in work):
                start = completed - _days(rng.randint(200, 500))
                end = completed - _days(rng.randint(0, 60))
                hours = rng.choice((15, 20, 20))
                work.insert(0, _job(rng.choice(STUDENT_JOBS), "CA", start, end, hours, student=True))
            next_start = completed - _days(int(years * 365) - rng.randint(0, 20))
            if next_start < years_after(dob, 17):
                raise _Infeasible("Canadian studies started too young")
            latest.append(completed)

    if spec.foreign_years:
        assert spec.foreign_noc is not None
        self_employed = rng.random() < 0.05
        if spec.in_canada:
            end = next_start - _days(rng.randint(20, 180))
        elif spec.foreign_years == _LONG_CAREER:
            end = None
        else:
            end = None if rng.random() < 0.85 else as_of - _days(rng.randint(40, 200))
        if spec.foreign_years == _LONG_CAREER:
            start = window_start - _days(rng.randint(100, 1500))
            jobs = [_job(spec.foreign_noc, foreign_country, start, None, rng.choice((40, 45, 48)))]
        else:
            jobs, start = _work_block(
                rng, spec.foreign_noc, foreign_country, spec.foreign_years, end, as_of, switch_by
            )
            if start < window_start + _days(10):
                raise _Infeasible("foreign work outside the 10-year window")
        if self_employed:
            for job in jobs:
                job["self_employed"] = True
        work = jobs + work
        if not spec.in_canada:  # FSW: a year in one occupation; FSTP: two in the trade
            eligible_from = max(start, window_start) + _days(740 if spec.foreign_years >= 2 else 370)
        next_start = start
        latest += [start] + ([end] if end else [])

    # Foreign studies, newest first, before the foreign work (or the move to Canada).
    foreign_credentials: list[dict[str, Any]] = []
    ages = _completion_ages(spec.foreign_credentials)
    for (level, years, assessed), age in zip(reversed(spec.foreign_credentials), reversed(ages), strict=True):
        typical = years_after(dob, age) + _days(rng.randint(0, 500))
        completed = min(typical, next_start - _days(rng.randint(30, 240)))
        if completed < years_after(dob, age - 2):
            raise _Infeasible("studies finished too young")
        foreign_credentials.insert(0, _credential(level, years, completed, spec.citizenship, assessed))
        next_start = completed - _days(int(years * 365))
        latest.append(completed)

    # Submission: after everything above (with a gap for creating the profile), within 12 months.
    last_fact = max(latest, default=as_of - _days(400))
    gap = rng.choice((0, 0, 0, 1, 2, 3, 5, 7, 14, 30))
    earliest = max(as_of - _days(360), last_fact + _days(gap + 2), eligible_from)
    if earliest > as_of - _days(1):
        gap = 0
        earliest = max(as_of - _days(360), last_fact + _days(2), eligible_from)
    submitted_on = _between(rng, earliest, as_of - _days(1))
    written_by = submitted_on - _days(gap + 1)  # the document was written by then

    # Dated evidence: ECAs under 5 years old, tests under 2, certificates, all before `written_by`.
    eca_from = years_before(as_of, 5) + _days(30)
    for credential in foreign_credentials:
        if credential.pop("_assessed"):
            completed = date.fromisoformat(credential["completed_on"])
            issued = _between(rng, max(eca_from, completed + _days(1)), written_by)
            credential["eca"] = {"organization": ctx.eca_bodies.pick(rng), "issued_on": _day(issued)}
    for credential in canadian_credentials:
        credential.pop("_assessed")
    test_from = years_before(as_of, 2) + _days(10)
    tests = [_language_test(rng, language, levels, _between(rng, test_from, written_by))
             for language, levels in spec.languages.items()]  # fmt: skip
    if rng.random() < 0.12:  # an older result, superseded by the newer one
        language, levels = next(iter(spec.languages.items()))
        newest = date.fromisoformat(tests[0]["taken_on"])
        if newest - _days(60) >= test_from:
            older = {ability: max(4, level - 1) for ability, level in levels.items()}
            tests.insert(
                0, _language_test(rng, language, older, _between(rng, test_from, newest - _days(60)))
            )

    document: dict[str, Any] = {
        "date_of_birth": _day(dob),
        "citizenship": spec.citizenship,
        "country_of_residence": spec.residence,
        "marital_status": spec.marital_status,
        "family_size": spec.family_size,
        "settlement_funds_cad": settlement_funds(rng, spec.family_size, as_of, spec.funds_needed),
        "authorized_to_work_in_canada": spec.in_canada,
        "intends_to_reside_in_quebec": False,
        "education": foreign_credentials + canadian_credentials,
        "language_tests": tests,
        "work_experience": work,
        "spouse": _spouse(rng, spec, ctx, written_by) if spec.spouse else None,
        "certificate_of_qualification": None,
        "job_offer": _offer(rng, spec.offer, spec.offer_noc) if spec.offer else None,
        "sibling_in_canada": spec.sibling,
        "relative_in_canada": spec.relative,
    }
    if spec.certificate:
        trade = spec.canadian_noc if spec.in_canada else spec.foreign_noc
        trade_start = min(date.fromisoformat(job["start"]) for job in work if job["noc_code"] == trade)
        issued = _between(rng, trade_start + _days(365), written_by)
        document["certificate_of_qualification"] = {
            "province": rng.choices(("ON", "BC", "AB", "SK", "MB", "NS"), (35, 20, 20, 8, 8, 9))[0],
            "noc_code": trade,
            "issued_on": _day(issued),
        }
    return _Built(document, submitted_on, gap)


def _credential(
    level: str, years: float, completed: date, country: str, assessed: bool | None
) -> dict[str, Any]:
    return {
        "level": level,
        "program_years": years,
        "completed_on": _day(completed),
        "country": country,
        "canadian": country == "CA",
        "eca": None,
        "_assessed": bool(assessed),  # removed once the ECA date is drawn
    }


def _language_test(rng: random.Random, language: Language, levels: Levels, taken_on: date) -> dict[str, Any]:
    tests, weights = TESTS_BY_LANGUAGE[language]
    return language_test_scores(rng, rng.choices(tests, weights)[0], taken_on, levels)


def settlement_funds(rng: random.Random, family_size: int, as_of: date, enough: bool) -> int:
    required = settlement_funds_required(family_size, as_of)
    if enough:
        return required + 100 * rng.randint(0, required // 50)
    return 100 * rng.randint(0, (required - 1) // 100)


def employer_name(rng: random.Random) -> str:
    return f"{rng.choice(EMPLOYER_FIRST)} {rng.choice(EMPLOYER_SECOND)} {rng.choice(EMPLOYER_SUFFIX)}"


def _offer(rng: random.Random, kind: OfferKind, noc: str | None) -> dict[str, Any]:
    assert noc is not None
    valid = kind != "invalid"
    flaw = rng.choice(("seasonal", "short", "no_lmia")) if not valid else ""
    return {
        "noc_code": noc,
        "teer": int(noc[1]),
        "employer": "Canadian Armed Forces" if kind == "military" else employer_name(rng),
        "full_time": True,
        "non_seasonal": flaw != "seasonal",
        "duration_months": 6 if flaw == "short" else rng.choice((None, None, 12, 24, 36)),
        "lmia_or_exempt": flaw != "no_lmia",
        "canadian_armed_forces": kind == "military",
    }


def _spouse(rng: random.Random, spec: _Spec, ctx: Context, written_by: date) -> dict[str, Any]:
    as_of = ctx.as_of
    education: list[dict[str, Any]] = []
    level = spec.spouse_education
    if level is _E.LESS_THAN_SECONDARY:
        if rng.random() < 0.6:  # a foreign degree never assessed counts for nothing
            education.append(_spouse_credential(rng, ctx, "bachelors", 4, written_by, spec, assessed=False))
    elif level is _E.TWO_OR_MORE:
        education.append(_spouse_credential(rng, ctx, "bachelors", 4, written_by, spec, assessed=True))
        education.append(_spouse_credential(rng, ctx, "one_year", 1, written_by, spec, assessed=True))
    else:
        years = {"secondary": 4, "one_year": 1, "two_year": 2, "bachelors": 4, "masters": 2, "doctoral": 4}[
            level
        ]
        education.append(_spouse_credential(rng, ctx, level.value, years, written_by, spec, assessed=True))
    tests = []
    if spec.spouse_levels:
        taken = _between(rng, years_before(as_of, 2) + _days(10), written_by)
        tests.append(_language_test(rng, "en" if rng.random() < 0.85 else "fr", spec.spouse_levels, taken))
    work: list[dict[str, Any]] = []
    if spec.spouse_canadian_years:
        end = None if rng.random() < 0.8 else written_by - _days(rng.randint(0, 120))
        noc = ctx.occupation(rng, spec.spouse_education, trade=False)
        work, start = _work_block(rng, noc, "CA", spec.spouse_canadian_years, end, as_of, written_by)
        if start > written_by:
            raise _Infeasible("the spouse's Canadian work starts after the profile was written")
    return {
        "accompanying": spec.spouse != "not_accompanying",
        "canadian_citizen_or_pr": spec.spouse == "citizen",
        "education": education,
        "language_tests": tests,
        "work_experience": work,
    }


def _spouse_credential(
    rng: random.Random, ctx: Context, level: str, years: float, written_by: date, spec: _Spec, assessed: bool
) -> dict[str, Any]:
    canadian = spec.in_canada and assessed and rng.random() < 0.2
    completed = written_by - _days(rng.randint(400, 4000))
    credential = _credential(level, years, completed, "CA" if canadian else spec.citizenship, None)
    credential.pop("_assessed")
    if assessed and not canadian:
        issued = _between(rng, max(years_before(ctx.as_of, 5) + _days(30), completed + _days(1)), written_by)
        credential["eca"] = {"organization": ctx.eca_bodies.pick(rng), "issued_on": _day(issued)}
    return credential


# ============================================================================================
# Step 3: verified templates
# ============================================================================================


@dataclass(frozen=True, slots=True)
class Template:
    document: dict[str, Any]
    crs: int  # without a nomination
    crs_nominated: int  # with one: the additional points are capped at 600, so not simply crs + 600
    programs: tuple[str, ...]
    age: int
    submitted_on: date
    created_gap: int
    funds_needed: bool  # settlement funds at or above the requirement (keep them there)
    francophone: bool
    test_levels: tuple[tuple[str, int, Levels], ...]  # ("" | "spouse", index in language_tests, levels)


@dataclass(frozen=True, slots=True)
class TemplatePool:
    """Verified templates per IRCC leaf bin, and what building them cost."""

    as_of: date
    seed: int
    by_bin: dict[str, tuple[Template, ...]]
    attempts: int  # factor draws
    rejected: int  # draws that could not enter the pool or whose dates did not fit
    mismatches: int  # built documents whose derived score or programs disagreed with the plan
    seconds: float

    @property
    def size(self) -> int:
        return sum(len(templates) for templates in self.by_bin.values())


def _verify(
    document: dict[str, Any], as_of: date, submitted_on: date, expected: int
) -> tuple[tuple[str, ...], date] | None:
    """The programs and the submission day, when the document is valid, scores `expected` on `as_of` and
    can enter the pool on both days. A submission day on which it could not is moved later (the document,
    written before it, stays valid)."""
    doc = ProfileDocument.model_validate(document)
    if validate_document(doc, as_of):
        return None
    derived = derive_profile(doc, as_of, nominated=False)
    if not derived.programs or calculate(derived.factors, rules_in_force(as_of)).total != expected:
        return None
    last = as_of - _days(1)
    for _ in range(4):
        if derive_profile(doc, submitted_on, nominated=False).programs:
            return tuple(derived.programs), submitted_on
        submitted_on += (last - submitted_on) / 2 + _days(1)
        submitted_on = min(submitted_on, last)
    return None


def _levels_of(document: dict[str, Any]) -> tuple[tuple[str, int, Levels], ...]:
    found = []
    people = [("", document)] + ([("spouse", document["spouse"])] if document["spouse"] else [])
    for person, holder in people:
        for index, test in enumerate(holder["language_tests"]):
            taken_on = date.fromisoformat(test["taken_on"])
            levels = {a: clb_for_score(test["test"], a, test[a], taken_on) for a in ABILITIES}
            found.append((person, index, levels))
    return tuple(found)


def _quotas(size: int, distribution: IrccDistribution) -> dict[str, int]:
    leaves = [b for b in distribution.leaves if b.label != NOMINATED_BIN]
    total = sum(b.count for b in leaves)
    return {b.label: max(MIN_TEMPLATES_PER_BIN, round(size * b.count / total)) for b in leaves}


def build_templates(
    seed: int, as_of: date, size: int = DEFAULT_TEMPLATES, data_dir: Path = DATA_DIR
) -> TemplatePool:
    """Draw factors until every bin (but 601-1200) holds its share of `size` verified templates."""
    return _cached_templates(seed, as_of, size, data_dir)


@functools.lru_cache(maxsize=4)
def _cached_templates(seed: int, as_of: date, size: int, data_dir: Path) -> TemplatePool:
    started = time.perf_counter()
    ctx = Context(as_of, data_dir)
    distribution = ircc_distribution(data_dir)
    quotas = _quotas(size, distribution)
    kept: dict[str, list[Template]] = {label: [] for label in quotas}
    strengths: dict[str, list[float]] = {label: [] for label in quotas}
    rng = random.Random(f"templates:{seed}:{as_of.isoformat()}")
    rules = rules_in_force(as_of)
    attempts = rejected = mismatches = 0
    with no_cyclic_gc():
        while True:
            open_bins = [label for label, quota in quotas.items() if len(kept[label]) < quota]
            if not open_bins:
                break
            attempts += 1
            # Aim at the emptiest bin, at strengths that reached it before (or anywhere, now and then).
            target = min(open_bins, key=lambda label: len(kept[label]) / quotas[label])
            seen = strengths[target]
            s = (
                rng.random()
                if not seen or rng.random() < 0.25
                else min(1.0, max(0.0, rng.choice(seen) + rng.gauss(0, 0.07)))
            )
            spec = _sample_spec(rng, s, ctx)
            if spec is None:
                rejected += 1
                continue
            result = calculate(spec.factors, rules)
            crs = result.total
            label = bin_label(crs, distribution)
            if label not in quotas or len(kept[label]) >= quotas[label]:
                continue
            strengths[label].append(s)
            try:
                built = _build(rng, spec, ctx)
            except _Infeasible:
                rejected += 1
                continue
            verified = _verify(built.document, as_of, built.submitted_on, crs)
            if verified is None:
                mismatches += 1
                continue
            programs, submitted_on = verified
            kept[label].append(
                Template(
                    document=built.document,
                    crs=crs,
                    crs_nominated=crs - result.additional + 600,
                    programs=programs,
                    age=spec.age,
                    submitted_on=submitted_on,
                    created_gap=built.created_gap,
                    funds_needed=spec.funds_needed,
                    francophone=spec.citizenship in FRANCOPHONE,
                    test_levels=_levels_of(built.document),
                )
            )
    by_bin = {label: tuple(templates) for label, templates in kept.items()}
    return TemplatePool(as_of, seed, by_bin, attempts, rejected, mismatches, time.perf_counter() - started)


@contextmanager
def no_cyclic_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector: generation allocates millions of objects without cycles (reference
    counting frees them), and each collection would walk the whole template pool again."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
