"""Category-based selection as versioned data (crs-rules.md §5).

A draw names a category; whether a candidate belongs to it depends on the version in force, so each
version carries its own dates, occupation list and experience rule. Replaying a 2025 round uses the
2025 lists and the 6-month rule even after the 2026 versions took over.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Literal

from shared.rules.asof import AsOf
from shared.rules.document import ProfileDocument
from shared.rules.eligibility import assess_facts, programs_passed
from shared.rules.experience import months_in_one_occupation

CATEGORY_CODES = (
    "french",
    "healthcare",
    "stem",
    "trades",
    "transport",
    "education",
    "agriculture",
    "physicians",
    "researchers",
    "senior_managers",
    "military",
)
FRENCH_MINIMUM_NCLC = 7


@dataclass(frozen=True, slots=True)
class ExperienceRule:
    """Full-time-equivalent months in one listed occupation within the last 3 years."""

    months: int
    continuous: bool


@dataclass(frozen=True, slots=True)
class CategoryVersion:
    code: str
    version: str
    effective_from: date
    effective_until: date | None  # the first day it no longer applies; None while in force
    kind: Literal["occupation", "french", "military"] = "occupation"
    occupations: frozenset[str] = frozenset()  # NOC 2021 codes; empty for french and military
    experience: ExperienceRule | None = None  # occupation categories only
    canadian_experience_only: bool = False

    def in_force(self, on: date) -> bool:
        return self.effective_from <= on and (self.effective_until is None or on < self.effective_until)


V2025_FROM = date(2025, 2, 27)
V2026_FROM = date(2026, 2, 18)
# Before 2026-02-18: 6 months continuous; from then on: 12 months, not necessarily continuous.
SIX_MONTHS_CONTINUOUS = ExperienceRule(months=6, continuous=True)
TWELVE_MONTHS = ExperienceRule(months=12, continuous=False)

# Only an excerpt of the healthcare list is in the facts file ("… full list in the Report to
# Parliament, Annex B"); these are the codes it gives. The 2026 version is described as continued, with
# no list of its own, so it reuses this excerpt.
_HEALTHCARE_EXCERPT = frozenset(
    {
        "31102", "31110", "31111", "31112", "31120", "31121", "31201", "31203", "31209", "31300", "31302",
        "32101", "32102", "32104", "32109", "32111", "32120", "32121", "32122", "32123", "32129", "32201",
        "33101", "33102",
    }
)  # fmt: skip
_EDUCATION = frozenset({"41220", "41221", "42202", "42203", "43100"})
# The facts file gives no NOC codes for the STEM and trades lists (only counts of added and removed
# occupations), so these versions list nothing and no one qualifies until the lists are filled in.
_STEM_NOT_GIVEN: frozenset[str] = frozenset()
_TRADES_NOT_GIVEN: frozenset[str] = frozenset()


def _occupational(
    code: str,
    version: str,
    start: date,
    end: date | None,
    occupations: frozenset[str],
    canadian_experience_only: bool = False,
) -> CategoryVersion:
    rule = SIX_MONTHS_CONTINUOUS if start < V2026_FROM else TWELVE_MONTHS
    return CategoryVersion(
        code, version, start, end, "occupation", occupations, rule, canadian_experience_only
    )


CATEGORY_VERSIONS: tuple[CategoryVersion, ...] = (
    # 2025 (announced 2025-02-27): transport removed, education added.
    CategoryVersion("french", "2025", V2025_FROM, V2026_FROM, kind="french"),
    _occupational("healthcare", "2025", V2025_FROM, V2026_FROM, _HEALTHCARE_EXCERPT),
    _occupational("stem", "2025", V2025_FROM, V2026_FROM, _STEM_NOT_GIVEN),
    _occupational("trades", "2025", V2025_FROM, V2026_FROM, _TRADES_NOT_GIVEN),
    _occupational("education", "2025", V2025_FROM, V2026_FROM, _EDUCATION),
    # Only butchers (retail/wholesale) left, from a single source [U].
    _occupational("agriculture", "2025", V2025_FROM, V2026_FROM, frozenset({"63201"})),
    # 2026 (announced 2026-02-18): agriculture not continued.
    CategoryVersion("french", "2026", V2026_FROM, None, kind="french"),
    _occupational("healthcare", "2026", V2026_FROM, None, _HEALTHCARE_EXCERPT),
    _occupational("stem", "2026", V2026_FROM, None, _STEM_NOT_GIVEN),
    _occupational("trades", "2026", V2026_FROM, None, _TRADES_NOT_GIVEN),  # cooks removed
    _occupational("education", "2026", V2026_FROM, None, _EDUCATION),
    _occupational("transport", "2026", V2026_FROM, None, frozenset({"72600", "72404", "22313", "72410"})),
    _occupational(
        "physicians",
        "2026",
        V2026_FROM,
        None,
        frozenset({"31100", "31101", "31102"}),
        canadian_experience_only=True,
    ),
    _occupational(
        "researchers", "2026", V2026_FROM, None, frozenset({"41200", "41201"}), canadian_experience_only=True
    ),
    # redim.ca's list; vgis.ca gives a different one that includes 00011 [U].
    _occupational(
        "senior_managers",
        "2026",
        V2026_FROM,
        None,
        frozenset({"00012", "00013", "00014", "00015"}),
        canadian_experience_only=True,
    ),
    CategoryVersion("military", "2026", V2026_FROM, None, kind="military"),
)


def categories_in_force(on: date) -> list[CategoryVersion]:
    """The category versions a round held on `on` would use (none before the 2025 versions)."""
    return list(_in_force(on))


@lru_cache(maxsize=256)
def _in_force(on: date) -> tuple[CategoryVersion, ...]:
    return tuple(version for version in CATEGORY_VERSIONS if version.in_force(on))


def meets_category(version: CategoryVersion, doc: ProfileDocument, as_of: date) -> bool:
    """The category's own condition, without the pool-entry condition (a program)."""
    return _meets(version, AsOf(doc, as_of))


def _meets(version: CategoryVersion, facts: AsOf) -> bool:
    doc = facts.doc
    if version.kind == "french":
        # The levels of the most recent valid French result.
        french = facts.levels.get("fr")
        return french is not None and french.lowest() >= FRENCH_MINIMUM_NCLC
    if version.kind == "military":
        return doc.job_offer is not None and doc.job_offer.canadian_armed_forces
    assert version.experience is not None, "every occupation category has an experience rule"
    if version.experience.months > 0 and version.occupations.isdisjoint(facts.job_noc_codes):
        return False  # no month at all in a listed occupation
    return _has_listed_experience(version, doc, facts.as_of)


def _has_listed_experience(version: CategoryVersion, doc: ProfileDocument, as_of: date) -> bool:
    assert version.experience is not None, "every occupation category has an experience rule"
    jobs = doc.work_experience
    if version.canadian_experience_only:
        jobs = [job for job in jobs if job.country == "CA"]
    months = months_in_one_occupation(
        jobs, version.occupations, as_of, continuous=version.experience.continuous
    )
    return round(months, 6) >= version.experience.months  # 26 weeks at 30 h is exactly 6 months


def eligible_categories(
    doc: ProfileDocument, as_of: date, *, programs: Sequence[str] | None = None
) -> list[str]:
    """Codes of the categories in force whose conditions the candidate meets.

    A category round only invites candidates already in the pool, so someone eligible for no program
    has no category. Pass `programs` when they are already known, to avoid assessing twice.
    """
    return eligible_categories_of(AsOf(doc, as_of), programs=programs)


def eligible_categories_of(facts: AsOf, *, programs: Sequence[str] | None = None) -> list[str]:
    """`eligible_categories` over facts already (partly) derived."""
    if programs is None:
        programs = programs_passed(assess_facts(facts))
    if not programs:
        return []
    return [version.code for version in _in_force(facts.as_of) if _meets(version, facts)]
