"""Holding a round: the record and the invitations of one selection, at one instant."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from draws_service.domain.model import Invitation
from draws_service.domain.record import RoundRecord
from draws_service.domain.selection import Selection, issue_invitations


@dataclass(frozen=True, slots=True)
class Round:
    """A round of invitations held: its published record and the ITAs it issued, in rank order."""

    record: RoundRecord
    invitations: list[Invitation]


def hold(
    selection: Selection,
    *,
    round_id: str,
    round_number: int,
    held_at: datetime,
    category_version: str | None,
    new_id: Callable[[], str],
) -> Round:
    record = RoundRecord.of(
        selection,
        round_id=round_id,
        round_number=round_number,
        held_at=held_at,
        category_version=category_version,
    )
    invitations = issue_invitations(
        selection, round_id=round_id, round_number=round_number, invited_at=held_at, new_id=new_id
    )
    return Round(record, invitations)
