"""Keeping the table of open invitations current from the applications service's events."""

from __future__ import annotations

from datetime import datetime
from typing import Final

from draws_service.application.ports import DrawsRepository
from shared.events.catalogue import Applied, Event, InvitationDeclined, InvitationExpired

CLOSING_EVENTS: Final = ("InvitationDeclined", "InvitationExpired", "Applied")
"""Events after which a candidate no longer holds an open invitation and may be invited again."""


def closing(event: Event) -> tuple[str, str, datetime] | None:
    """`(invitation_id, new status, when)` for an event that closes an invitation, else None."""
    if isinstance(event, InvitationDeclined):
        return event.invitation_id, "declined", event.declined_at
    if isinstance(event, InvitationExpired):
        return event.invitation_id, "expired", event.expired_at
    if isinstance(event, Applied):
        return event.invitation_id, "applied", event.applied_at
    return None


async def close_invitation(repo: DrawsRepository, event: Event) -> bool:
    """Close the invitation the event names; False when it is unknown or already closed (a no-op)."""
    closed = closing(event)
    if closed is None:
        return False
    invitation_id, status, when = closed
    return await repo.close_invitation(invitation_id, status, when)
