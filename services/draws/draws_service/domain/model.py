"""Round types, the candidates a selection returns, and the invitations a round issues."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from shared.rules.categories import CATEGORY_CODES
from shared.rules.programs import PROGRAM_PRIORITY

PROGRAMS: Final = frozenset(PROGRAM_PRIORITY)
"""Program codes a round can name; PROGRAM_PRIORITY (shared.rules.programs) orders them."""
CATEGORIES: Final = frozenset(CATEGORY_CODES)
"""The codes of category-based rounds: the categories the rules know how to match (shared.rules)."""
GENERAL: Final = "general"
ITA_VALIDITY: Final = timedelta(days=60)
"""An invitation to apply is open for 60 calendar days (crs-rules.md §4)."""
MAX_ROUND_SIZE: Final = 100_000


class InvalidRound(ValueError):
    """A round request that cannot be held as asked; the message says what to change."""


class RoundKind(StrEnum):
    GENERAL = "general"
    PROGRAM = "program"
    CATEGORY = "category"


@dataclass(frozen=True, slots=True)
class Candidate:
    """One candidate as the ranking service's selection returns it."""

    profile_id: str
    owner: str
    crs: int
    submitted_at: datetime
    programs: frozenset[str]
    categories: frozenset[str] = frozenset()
    citizenship: str = ""

    @property
    def sort_key(self) -> tuple[int, datetime, str]:
        """Pool order: higher CRS first, then earlier submission, then profile id (a total order)."""
        return (-self.crs, self.submitted_at, self.profile_id)


@dataclass(frozen=True, slots=True)
class RoundType:
    """`general`, a program code (`cec`, `fsw`, `fst`, `pnp`) or a category code (`french`, ...)."""

    code: str

    @classmethod
    def parse(cls, value: str) -> RoundType:
        code = value.strip().lower()
        if code != GENERAL and code not in PROGRAMS and code not in CATEGORIES:
            known = ", ".join([GENERAL, *PROGRAM_PRIORITY, *sorted(CATEGORIES)])
            raise InvalidRound(f"unknown round type {value!r}; use one of: {known}")
        return cls(code)

    @property
    def kind(self) -> RoundKind:
        if self.code == GENERAL:
            return RoundKind.GENERAL
        return RoundKind.PROGRAM if self.code in PROGRAMS else RoundKind.CATEGORY

    @property
    def program(self) -> str | None:
        return self.code if self.kind is RoundKind.PROGRAM else None

    @property
    def category(self) -> str | None:
        return self.code if self.kind is RoundKind.CATEGORY else None

    def admits(self, candidate: Candidate) -> bool:
        """Whether the candidate is eligible for this round (in the pool under a program it covers)."""
        if not candidate.programs & PROGRAMS:
            return False
        if self.kind is RoundKind.PROGRAM:
            return self.code in candidate.programs
        if self.kind is RoundKind.CATEGORY:
            return self.code in candidate.categories
        return True

    def program_for(self, candidate: Candidate) -> str:
        """The program the candidate is invited under: the round's own, else by priority."""
        if self.program is not None:
            return self.program
        for program in PROGRAM_PRIORITY:
            if program in candidate.programs:
                return program
        raise InvalidRound(f"candidate {candidate.profile_id} holds no program a round can invite under")


def check_size(size: int) -> int:
    if not 1 <= size <= MAX_ROUND_SIZE:
        raise InvalidRound(f"size must be between 1 and {MAX_ROUND_SIZE:,}, got {size}")
    return size


@dataclass(frozen=True, slots=True)
class Invitation:
    """An Invitation to Apply, issued to one candidate in one round."""

    invitation_id: str
    round_id: str
    round_number: int
    rank: int
    profile_id: str
    owner: str
    program: str
    crs: int
    citizenship: str
    submitted_at: datetime
    invited_at: datetime
    status: str = "open"
    """`open` until the candidate declines, lets it expire or applies."""
    deadline: datetime = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "deadline", self.invited_at + ITA_VALIDITY)
