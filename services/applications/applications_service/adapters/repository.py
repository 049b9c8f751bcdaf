"""Invitation aggregates in the event store, and their projection into the `invitations` table.

A stream is `invitation-<invitation_id>`. Its first event is the Invited received from the draws
service, stored but not republished; our own catalogue events go to the event store and the outbox in
the same transaction; internal events (the documents) stay in the event store.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from applications_service.application.events import EVENTS, STREAM_REGISTRY
from applications_service.domain.events import is_published
from applications_service.domain.invitation import Invitation
from shared.db import guarded_upsert_sql
from shared.domain_events import DomainEvent
from shared.eventsourced import EventSourcedRepository
from shared.eventstore import Followup
from shared.uow import UnitOfWork

from .tables import invitations


def stream_id(invitation_id: str) -> str:
    return f"invitation-{invitation_id}"


class InvitationRepository(EventSourcedRepository[Invitation]):
    """Load and save invitation aggregates inside one unit of work."""

    registry = STREAM_REGISTRY
    mapper = EVENTS

    def stream_id(self, aggregate_id: str) -> str:
        return stream_id(aggregate_id)

    def aggregate_id(self, aggregate: Invitation) -> str:
        return aggregate.invitation_id

    def replay(self, events: Iterable[DomainEvent]) -> Invitation:
        return Invitation.replay(events)

    def is_published(self, event: DomainEvent) -> bool:
        return is_published(event)

    def projection(self, aggregate: Invitation) -> Followup:
        row = projection_row(aggregate, self.uow.clock.now())
        # Sent with the append of the events (every command), in the same statement.
        return Followup(_UPSERT_SQL, [_json_text(row[c]) if c in _JSON_COLUMNS else row[c] for c in _COLUMNS])


_COLUMNS = [column.name for column in invitations.c]
_JSON_COLUMNS = frozenset(c.name for c in invitations.c if isinstance(c.type, JSONB))
_UPSERT_SQL = guarded_upsert_sql(invitations, "invitation_id")


def _json_text(value: Any) -> str:
    # None as JSON null, as SQLAlchemy's JSONB type stores it.
    return orjson.dumps(value, option=orjson.OPT_UTC_Z).decode()


def projection_row(invitation: Invitation, now: Any) -> dict[str, Any]:
    invited = invitation.invited
    documents = asdict(invitation.documents) if invitation.documents is not None else None
    return {
        "invitation_id": invited.invitation_id,
        "application_id": invitation.application_id,
        "profile_id": invited.profile_id,
        "owner": invited.owner,
        "round_id": invited.round_id,
        "round_number": invited.round_number,
        "program": invited.program,
        "crs": invited.crs,
        "citizenship": invited.citizenship,
        "invited_at": invited.invited_at,
        "deadline": invited.deadline,
        "state": invitation.state.value,
        "version": invitation.version,
        "applied_at": invitation.applied_at,
        "decided_at": invitation.decided_at,
        "closed_at": invitation.closed_at,
        "reasons": list(invitation.reasons),
        "documents": _jsonable(documents),
        "minimum_funds_cad": invitation.minimum_funds_cad,
        "copr_number": invitation.copr_number,
        "copr_expires_on": invitation.copr_expires_on,
        "visa_issued": invitation.visa_issued,
        "deadline_reminders": sorted(invitation.deadline_reminders, reverse=True),
        "copr_reminders": sorted(invitation.copr_reminders, reverse=True),
        "next_due_at": invitation.next_due_at(),
        "updated_at": now,
    }


def _jsonable(documents: dict[str, Any] | None) -> dict[str, Any] | None:
    if documents is None:
        return None
    return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in documents.items()}


async def due_invitation_ids(uow: UnitOfWork, now: Any, limit: int, after: str = "") -> list[str]:
    """Invitations whose next deadline, reminder or expiry is at or before `now`, by id after `after`.

    Paging by id (not by due time) lets one run visit each due invitation once, even one whose save
    lost a race and is still due.
    """
    result = await uow.session.execute(
        sa.select(invitations.c.invitation_id)
        .where(invitations.c.next_due_at <= now, invitations.c.invitation_id > after)
        .order_by(invitations.c.invitation_id)
        .limit(limit)
    )
    return list(result.scalars())
