"""The CRS factor document: what the points grid needs, already derived from raw facts.

This is the contract of the public calculator (`POST /v1/crs/calculate`) and the output of the
derivation code (`shared.rules.derive`), so a score computed from a profile and a score computed
from hand-entered factors go through the same engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal


class EducationLevel(StrEnum):
    """Highest education for CRS purposes (crs-rules.md §1.3)."""

    LESS_THAN_SECONDARY = "less_than_secondary"
    SECONDARY = "secondary"
    ONE_YEAR = "one_year"
    TWO_YEAR = "two_year"
    BACHELORS = "bachelors"  # a bachelor's, or any post-secondary program of 3 years or longer
    TWO_OR_MORE = "two_or_more"  # two or more credentials, one of them 3 years or longer
    MASTERS = "masters"  # a master's, or an entry-to-practice professional degree
    DOCTORAL = "doctoral"


class CanadianEducation(StrEnum):
    """Canadian post-secondary credential for the additional points (crs-rules.md §1.9)."""

    NONE = "none"
    ONE_OR_TWO_YEAR = "one_or_two_year"
    THREE_YEAR_OR_LONGER = "three_year_or_longer"


Language = Literal["en", "fr"]


@dataclass(frozen=True, slots=True)
class Clb:
    """CLB (English) or NCLC (French) level per ability, 0..12."""

    speaking: int
    listening: int
    reading: int
    writing: int

    def lowest(self) -> int:
        return min(self.speaking, self.listening, self.reading, self.writing)

    def abilities(self) -> tuple[int, int, int, int]:
        return (self.speaking, self.listening, self.reading, self.writing)


@dataclass(frozen=True, slots=True)
class LanguageAbility:
    language: Language
    clb: Clb


@dataclass(frozen=True, slots=True)
class SpouseFactors:
    """An accompanying spouse who is not a Canadian citizen or PR (otherwise: spouse = None)."""

    education_level: EducationLevel
    clb: Clb | None
    canadian_work_years: int


@dataclass(frozen=True, slots=True)
class CrsFactors:
    age: int
    education_level: EducationLevel
    canadian_education: CanadianEducation
    first_language: LanguageAbility | None
    second_language: LanguageAbility | None
    canadian_work_years: int
    foreign_work_years: int
    certificate_of_qualification: bool
    provincial_nomination: bool
    sibling_in_canada: bool
    spouse: SpouseFactors | None
    # Only scored by rule versions before 2025-03-25 (crs-rules.md §1.9): "none", "teer_0_major_00"
    # (200 points) or "other_skilled" (50 points). Kept so old rule versions replay correctly.
    arranged_employment: Literal["none", "teer_0_major_00", "other_skilled"] = "none"
