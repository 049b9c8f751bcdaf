"""A round as IRCC publishes it: number, date and time, type, invitations, cut-off, tie-breaking rule."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from draws_service.domain.model import RoundKind, RoundType
from draws_service.domain.selection import Selection

PROGRAM_NAMES: Final = {
    "cec": "Canadian Experience Class",
    "fsw": "Federal Skilled Worker",
    "fst": "Federal Skilled Trades",
    "pnp": "Provincial Nominee Program",
}
CATEGORY_NAMES: Final = {
    "french": "French-Language proficiency",
    "healthcare": "Healthcare and Social Services Occupations",
    "stem": "STEM Occupations",
    "trades": "Trades Occupations",
    "transport": "Transport Occupations",
    "education": "Education Occupations",
    "agriculture": "Agriculture and Agri-Food Occupations",
    "physicians": "Physicians with Canadian Work Experience",
    "researchers": "Researchers with Canadian Work Experience",
    "senior_managers": "Senior managers with Canadian Work Experience",
    "military": "Skilled Military Recruits",
}
"""Published names of the round types (as on the canada.ca rounds page)."""


def round_name(round_type: RoundType, category_version: str | None = None) -> str:
    """The published name: `General`, `Canadian Experience Class`, `Trades Occupations, 2026-Version 3`."""
    if round_type.kind is RoundKind.GENERAL:
        return "General"
    if round_type.kind is RoundKind.PROGRAM:
        return PROGRAM_NAMES[round_type.code]
    name = CATEGORY_NAMES[round_type.code]
    if not category_version:
        return name
    separator = " " if round_type.code == "french" else ", "
    return f"{name}{separator}{category_version}"


def published_timestamp(instant: datetime) -> str:
    """`September 01, 2026 at 23:05:13 UTC`, the format of IRCC's feed."""
    return instant.astimezone(UTC).strftime("%B %d, %Y at %H:%M:%S UTC")


@dataclass(frozen=True, slots=True)
class RoundRecord:
    """A round held: what is recorded and published. Carries no personal data."""

    round_id: str
    round_number: int
    round_type: RoundType
    category_version: str | None
    held_at: datetime
    size: int
    invitations_count: int
    cutoff_crs: int | None
    tie_break_at: datetime | None

    @classmethod
    def of(
        cls,
        selection: Selection,
        *,
        round_id: str,
        round_number: int,
        held_at: datetime,
        category_version: str | None,
    ) -> RoundRecord:
        return cls(
            round_id=round_id,
            round_number=round_number,
            round_type=selection.round_type,
            category_version=category_version,
            held_at=held_at,
            size=selection.size,
            invitations_count=selection.count,
            cutoff_crs=selection.cutoff_crs,
            tie_break_at=selection.tie_break_at,
        )

    @property
    def name(self) -> str:
        return round_name(self.round_type, self.category_version)

    def ircc_feed(self) -> dict[str, Any]:
        """The round in the fields of IRCC's rounds feed (`drawNumber`, `drawSize`, `drawCutOff`, ...)."""
        return {
            "drawNumber": str(self.round_number),
            "drawDate": self.held_at.astimezone(UTC).date().isoformat(),
            "drawDateTime": published_timestamp(self.held_at),
            "drawName": self.name,
            "drawSize": f"{self.invitations_count:,}",
            "drawCRS": "" if self.cutoff_crs is None else str(self.cutoff_crs),
            "drawCutOff": "" if self.tie_break_at is None else published_timestamp(self.tie_break_at),
        }
