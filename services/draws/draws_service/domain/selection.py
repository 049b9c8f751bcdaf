"""Selection: the top eligible candidates of the pool, the cut-off score and the tie-breaking time."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import datetime

from draws_service.domain.model import Candidate, Invitation, RoundType, check_size
from shared.rules.distribution import MAX_CRS, SCORE_BINS


@dataclass(frozen=True, slots=True)
class Selection:
    """The candidates a round invites, in rank order (best first)."""

    round_type: RoundType
    size: int
    invited: tuple[Candidate, ...]

    @property
    def count(self) -> int:
        return len(self.invited)

    @property
    def cutoff_crs(self) -> int | None:
        """The CRS score of the lowest-ranked candidate invited."""
        return self.invited[-1].crs if self.invited else None

    @property
    def tie_break_at(self) -> datetime | None:
        """The submission time of the last candidate invited at the cut-off score (the published rule)."""
        return self.invited[-1].submitted_at if self.invited else None

    def distribution(self) -> list[tuple[str, int]]:
        """How many of the invited fall in each published CRS bin, highest bin first."""
        counts = dict.fromkeys(SCORE_BINS, 0)
        for candidate in self.invited:
            counts[bin_of(candidate.crs)] += 1
        return [(f"{low}-{high}", n) for (low, high), n in counts.items()]


def bin_of(crs: int) -> tuple[int, int]:
    for low, high in SCORE_BINS:
        if low <= crs <= high:
            return (low, high)
    raise ValueError(f"CRS score {crs} is outside 0..{MAX_CRS}")


def select(
    round_type: RoundType, size: int, candidates: Iterable[Candidate], open_invitations: Collection[str]
) -> Selection:
    """The top `size` candidates eligible for the round, skipping anyone with an open invitation.

    Ranking already filters, orders and excludes; this re-checks every rule so that a stale or
    over-generous answer can never invite an ineligible candidate or one already invited.
    """
    check_size(size)
    eligible: dict[str, Candidate] = {}
    for candidate in candidates:
        if candidate.profile_id in open_invitations or candidate.profile_id in eligible:
            continue
        if round_type.admits(candidate):
            eligible[candidate.profile_id] = candidate
    ordered = sorted(eligible.values(), key=lambda c: c.sort_key)
    return Selection(round_type, size, tuple(ordered[:size]))


def issue_invitations(
    selection: Selection,
    *,
    round_id: str,
    round_number: int,
    invited_at: datetime,
    new_id: Callable[[], str],
) -> list[Invitation]:
    """One Invitation to Apply per selected candidate, ranked 1..n, all due 60 days after the round."""
    return [
        Invitation(
            invitation_id=new_id(),
            round_id=round_id,
            round_number=round_number,
            rank=rank,
            profile_id=candidate.profile_id,
            owner=candidate.owner,
            program=selection.round_type.program_for(candidate),
            crs=candidate.crs,
            citizenship=candidate.citizenship,
            submitted_at=candidate.submitted_at,
            invited_at=invited_at,
        )
        for rank, candidate in enumerate(selection.invited, start=1)
    ]
