"""One profile's CRS standing as of a day, with a rules version (pure).

The facts come from the profile document carried by the profile events; they are derived with the very
code the profile service uses (`shared.rules.derive`), as of the day asked for, so ages, expired tests
and sliding experience windows are those of that day.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from typing import Any, Final

from pydantic import ValidationError

from ranking_service.domain.pool import CATEGORIES, FEDERAL_PROGRAMS
from shared.rules.asof import AsOf
from shared.rules.categories import CATEGORY_VERSIONS
from shared.rules.crs import RULE_VERSIONS, CrsInputError, RulesVersion, calculate
from shared.rules.derive import derive_facts
from shared.rules.document import ProfileDocument, Spouse, whole_years_between, years_after
from shared.rules.education import ECA_VALID_YEARS
from shared.rules.facts_key import RawFacts, forget_readings, read_facts
from shared.rules.language import RESULTS_VALID_YEARS, expires_on
from shared.rules.programs import NOMINATION
from shared.rules.work_change import next_work_change
from shared.tracked import TrackedDict

NOMINATION_PROGRAM: Final = NOMINATION
CALENDAR_RECHECK: Final = timedelta(days=30)
"""Longest wait between two scorings of a profile whose facts only move on calendar dates."""


class UnscorableProfile(ValueError):
    """The document cannot be scored (it does not validate as a profile document v1)."""


@dataclass(frozen=True, slots=True)
class Scored:
    """What scoring a profile gives: the score, what it is eligible for, and when to look again."""

    crs: int
    breakdown: dict[str, int]
    rules_version: str
    programs: tuple[str, ...]  # sorted: eligible federal programs, plus "pnp" when nominated
    categories: tuple[str, ...]  # sorted draw categories met on the day
    noc_codes: tuple[str, ...]
    lowest_clb: dict[str, int]  # per official language with a valid result
    citizenship: str
    rescore_on: date  # the first day on which the result may differ

    @property
    def eligible(self) -> bool:
        """Eligible for at least one federal program: the condition to stand in the pool."""
        return any(program in FEDERAL_PROGRAMS for program in self.programs)


def parse_document(document: Mapping[str, Any]) -> ProfileDocument:
    try:
        return ProfileDocument.model_validate(document)
    except ValidationError as exc:
        raise UnscorableProfile(f"the profile document is not a valid v1 document: {exc}") from exc


def score_profile(document: Mapping[str, Any], as_of: date, nominated: bool, rules: RulesVersion) -> Scored:
    """Score `document` as of `as_of` with `rules`; raises `UnscorableProfile` for a bad document.

    The same result as `score_reference`, for about a tenth of its cost when documents share their
    scoring facts: the document is read once without pydantic (`shared.rules.facts_key`), and what
    the derivation gives for its facts (score, breakdown, programs, categories, lowest CLBs) comes
    from a cache keyed by them; what the document shows besides (NOC codes, citizenship) and the day
    to look again are read from it directly. A document the reader is not sure of, and every cache
    miss, goes the reference way (pydantic validation, the derivation, the grid).
    """
    raw = read_facts(document, as_of)
    if raw is None:
        CACHE_STATS.unread += 1
        return score_reference(document, as_of, nominated, rules)
    key = (raw.key, nominated, rules.name)  # versions are told apart by name (RULE_VERSIONS); an atom
    known = _DERIVED.get(key)
    if known is None:
        CACHE_STATS.misses += 1
        reference, work_change = _reference(document, as_of, nominated, rules)
        known = (
            reference.crs,
            reference.breakdown,
            reference.programs,
            reference.categories,
            reference.lowest_clb,
            (work_change - as_of).days,  # the key holds every job and the day: so does this
        )
        if len(_DERIVED) >= DERIVED_CACHE_SIZE:
            _DERIVED.clear()
        _DERIVED[key] = known
    crs, breakdown, programs, categories, lowest_clb, work_days = known
    return Scored(
        crs=crs,
        breakdown=dict(breakdown),
        rules_version=rules.name,
        programs=programs,
        categories=categories,
        noc_codes=raw.noc_codes,
        lowest_clb=dict(lowest_clb),
        citizenship=raw.citizenship,
        rescore_on=min(_raw_rescore_on(raw, as_of), as_of + timedelta(days=work_days)),
    )


DERIVED_CACHE_SIZE: Final = 50_000
"""Scoring facts remembered (emptied when full): a few hundred bytes each."""
_DERIVED: TrackedDict[
    tuple[Any, ...], tuple[int, dict[str, int], tuple[str, ...], tuple[str, ...], dict[str, int], int]
] = TrackedDict()


@dataclass(slots=True)
class CacheStats:
    unread: int = 0  # documents the fast reader was not sure of (scored the reference way)
    misses: int = 0  # documents read, whose facts were not in the cache (scored the reference way)

    @property
    def scored_reference(self) -> int:
        """Documents scored the reference way, for either reason."""
        return self.unread + self.misses


CACHE_STATS = CacheStats()


def clear_caches() -> None:
    """Forget every remembered result and reading, and zero `CACHE_STATS` (benchmarks, tests)."""
    _DERIVED.clear()
    forget_readings()
    CACHE_STATS.unread = CACHE_STATS.misses = 0


def score_reference(document: Mapping[str, Any], as_of: date, nominated: bool, rules: RulesVersion) -> Scored:
    """`score_profile` the reference way: pydantic validation, the derivation, the grid."""
    return _reference(document, as_of, nominated, rules)[0]


def _reference(
    document: Mapping[str, Any], as_of: date, nominated: bool, rules: RulesVersion
) -> tuple[Scored, date]:
    """`score_reference`, and the first day its work may change anything (`next_work_change`)."""
    doc = parse_document(document)
    facts = AsOf(doc, as_of)
    derived = derive_facts(facts, nominated, explain=False)  # verdicts only: no sentences
    work_change = next_work_change(facts, CALENDAR_RECHECK.days)
    try:
        result = calculate(derived.factors, rules)
    except CrsInputError as exc:
        raise UnscorableProfile(f"the derived CRS factors are invalid: {exc}") from exc
    federal = sorted(set(derived.programs) & FEDERAL_PROGRAMS)
    programs = (*federal, NOMINATION_PROGRAM) if nominated and federal else tuple(federal)
    return Scored(
        crs=result.total,
        breakdown=dict(result.breakdown),
        rules_version=rules.name,
        programs=tuple(sorted(programs)),
        categories=tuple(sorted(set(derived.categories) & CATEGORIES)),
        noc_codes=tuple(derived.noc_codes),
        lowest_clb={str(language): clb for language, clb in derived.lowest_clb.items()},
        citizenship=doc.citizenship,
        rescore_on=min(_calendar_rescore_on(doc, as_of), work_change),
    ), work_change


# --- when the facts move with time ------------------------------------------------------------------


def next_rescore_on(doc: ProfileDocument, as_of: date) -> date:
    """A day on or before the first day after `as_of` on which derived facts may differ.

    Work is counted in hours over windows sliding with the day, and read against thresholds (whole
    years, 1,560 hours, N months in an occupation): `shared.rules.work_change` gives the first day a
    threshold may be crossed. The other facts move only on calendar dates (a birthday, a test's 2
    years, an ECA's 5 years, a category or CRS rules version); a profile is re-checked at least every
    30 days all the same, in case a rule moves on a date of its own.
    """
    work_change = next_work_change(AsOf(doc, as_of), CALENDAR_RECHECK.days)
    return min(_calendar_rescore_on(doc, as_of), work_change)


def _calendar_rescore_on(doc: ProfileDocument, as_of: date) -> date:
    later = [day for day in _calendar_dates(doc, as_of) if day > as_of]
    return min([*later, as_of + CALENDAR_RECHECK])


def _raw_rescore_on(raw: RawFacts, as_of: date) -> date:
    """`_calendar_rescore_on` of the document `raw` was read from."""
    soonest = _fixed_rescore_on(as_of)
    born = raw.date_of_birth
    birthday = years_after(born, whole_years_between(born, as_of) + 1)
    if as_of < birthday < soonest:
        soonest = birthday
    for day in raw.calendar_dates:
        if as_of < day < soonest:
            soonest = day
    for taken in raw.test_days:
        if as_of < taken < soonest:
            soonest = taken
        expiry = years_after(taken, RESULTS_VALID_YEARS)
        if as_of < expiry < soonest:
            soonest = expiry
    for issued in raw.eca_days:
        if as_of < issued < soonest:
            soonest = issued
        expiry = years_after(issued, ECA_VALID_YEARS)
        if as_of < expiry < soonest:
            soonest = expiry
    return soonest


@lru_cache(maxsize=64)
def _fixed_rescore_on(as_of: date) -> date:
    """The first day after `as_of` that moves any profile: a category or rules version, or the recheck."""
    fixed = [version.effective_from for version in CATEGORY_VERSIONS]
    fixed += [version.effective_until for version in CATEGORY_VERSIONS if version.effective_until is not None]
    fixed += [rules.effective_from for rules in RULE_VERSIONS.values()]
    return min([day for day in fixed if day > as_of] + [as_of + CALENDAR_RECHECK])


def _people(doc: ProfileDocument) -> list[ProfileDocument | Spouse]:
    return [doc] if doc.spouse is None else [doc, doc.spouse]


def _calendar_dates(doc: ProfileDocument, as_of: date) -> Iterator[date]:
    yield years_after(doc.date_of_birth, whole_years_between(doc.date_of_birth, as_of) + 1)
    for person in _people(doc):
        for test in person.language_tests:
            yield test.taken_on
            yield expires_on(test)
        for credential in person.education:
            yield credential.completed_on
            if credential.eca is not None:
                yield credential.eca.issued_on
                yield years_after(credential.eca.issued_on, ECA_VALID_YEARS)
    if doc.certificate_of_qualification is not None:
        yield doc.certificate_of_qualification.issued_on
    for version in CATEGORY_VERSIONS:
        yield version.effective_from
        if version.effective_until is not None:
            yield version.effective_until
    for rules in RULE_VERSIONS.values():  # a pool scored with the rules in force changes grid that day
        yield rules.effective_from
