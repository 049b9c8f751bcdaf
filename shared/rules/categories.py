"""Category-based selection as versioned data (crs-rules.md §5, category-occupations.md).

A draw names a category; whether a candidate belongs to it depends on the version in force, so each
version carries its own dates, occupation list and experience rule. Replaying a 2025 round uses the
2025 lists and the 6-month rule even after the 2026 versions took over. The versions are data, in
`data/category_versions.json` beside this module, each with its sources: the 2023 lists (kept through
2024), the 2025 lists and the 2026 lists.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from importlib import resources
from types import MappingProxyType
from typing import Any, Literal

from shared.rules.asof import AsOf
from shared.rules.document import ProfileDocument
from shared.rules.education import rank
from shared.rules.eligibility import assess_facts, programs_passed
from shared.rules.experience import months_in_one_occupation
from shared.rules.factors import EducationLevel

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
"""Every category code a round can name; the data file's versions use these and no other."""

DATA_FILE = "data/category_versions.json"
"""The versioned lists (dates, experience rules, NOC codes and titles) with their sources."""


@dataclass(frozen=True, slots=True)
class ExperienceRule:
    """Full-time-equivalent months in one listed occupation within the last 3 years."""

    months: int
    continuous: bool


@dataclass(frozen=True, slots=True)
class CategoryVersion:
    code: str
    version: str  # the list version a round names ("2023", "2025", "2026")
    effective_from: date
    effective_until: date | None  # the first day it no longer applies; None while in force
    kind: Literal["occupation", "french", "military"] = "occupation"
    occupations: frozenset[str] = frozenset()  # NOC 2021 codes; empty for french
    experience: ExperienceRule | None = None  # occupation categories only
    canadian_experience_only: bool = False
    minimum_nclc: int | None = None  # french: in all four abilities
    job_offer_min_months: int | None = None  # military: the Canadian Armed Forces offer's length
    minimum_education: EducationLevel | None = None  # military
    titles: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)
    provenance: str = field(default="", compare=False, repr=False)

    def in_force(self, on: date) -> bool:
        return self.effective_from <= on and (self.effective_until is None or on < self.effective_until)


def _version(entry: dict[str, Any]) -> CategoryVersion:
    code, kind = entry["category"], entry["kind"]
    if code not in CATEGORY_CODES:
        raise ValueError(f"{DATA_FILE}: unknown category {code!r}")
    occupations: dict[str, str] = entry.get("occupations", {})
    experience = entry.get("experience")
    until = entry["effective_until"]
    education = entry.get("min_education")
    return CategoryVersion(
        code=code,
        version=entry["version"],
        effective_from=date.fromisoformat(entry["effective_from"]),
        effective_until=date.fromisoformat(until) if until is not None else None,
        kind=kind,
        occupations=frozenset(occupations),
        experience=ExperienceRule(experience["months"], experience["continuous"]) if experience else None,
        canadian_experience_only=entry.get("canadian_experience_only", False),
        minimum_nclc=entry.get("minimum_nclc"),
        job_offer_min_months=entry.get("job_offer_min_months"),
        minimum_education=EducationLevel(education) if education is not None else None,
        titles=MappingProxyType(dict(occupations)),
        provenance=entry["provenance"],
    )


def load_versions(text: str) -> tuple[CategoryVersion, ...]:
    """Parse the data file; refuse overlapping versions of one category and unusable entries."""
    versions = tuple(_version(entry) for entry in json.loads(text)["versions"])
    for version in versions:
        if version.kind == "occupation" and (version.experience is None or not version.occupations):
            raise ValueError(
                f"{DATA_FILE}: {version.code} {version.version} needs occupations and experience"
            )
        overlapping = [
            other.version
            for other in versions
            if other is not version
            and other.code == version.code
            and other.effective_from < (version.effective_until or date.max)
            and version.effective_from < (other.effective_until or date.max)
        ]
        if overlapping:
            raise ValueError(f"{DATA_FILE}: {version.code} {version.version} overlaps {overlapping}")
    return versions


CATEGORY_VERSIONS: tuple[CategoryVersion, ...] = load_versions(
    resources.files("shared.rules").joinpath(DATA_FILE).read_text(encoding="utf-8")
)


def categories_in_force(on: date) -> list[CategoryVersion]:
    """The category versions a round held on `on` would use (none before the 2025 versions)."""
    return list(_in_force(on))


@lru_cache(maxsize=256)
def _in_force(on: date) -> tuple[CategoryVersion, ...]:
    return tuple(version for version in CATEGORY_VERSIONS if version.in_force(on))


def _meets(version: CategoryVersion, facts: AsOf) -> bool:
    doc = facts.doc
    if version.kind == "french":
        # The levels of the best valid French result.
        french = facts.levels.get("fr")
        return (
            french is not None
            and version.minimum_nclc is not None
            and french.lowest() >= version.minimum_nclc
        )
    if version.kind == "military":
        return _military_recruit(version, facts)
    assert version.experience is not None, "every occupation category has an experience rule"
    if version.experience.months > 0 and version.occupations.isdisjoint(facts.job_noc_codes):
        return False  # no month at all in a listed occupation
    return _has_listed_experience(version, doc, facts.as_of)


def _military_recruit(version: CategoryVersion, facts: AsOf) -> bool:
    """A Canadian Armed Forces offer of the minimum length (or permanent) in a listed occupation, and
    the minimum education."""
    offer = facts.doc.job_offer
    if offer is None or not offer.canadian_armed_forces or offer.noc_code not in version.occupations:
        return False
    minimum_months = version.job_offer_min_months or 0
    if offer.duration_months is not None and offer.duration_months < minimum_months:
        return False
    minimum_education = version.minimum_education or EducationLevel.LESS_THAN_SECONDARY
    return rank(facts.education_level) >= rank(minimum_education)


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
