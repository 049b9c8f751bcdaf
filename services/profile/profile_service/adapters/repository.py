"""Profile aggregates in the event store, projected into the `profiles` query table.

A stream's id is the profile id (the only aggregate of this service), so an envelope's `aggregateid` is
the `profile_id` consumers key on. Our own catalogue events go to the event store and the outbox in
one transaction; the facts received from other services (Invited, ...) go to the event store only.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from profile_service.adapters.tables import profiles
from profile_service.domain.events import is_published
from profile_service.domain.profile import Profile
from shared.events.catalogue import Event
from shared.events.registry import REGISTRY
from shared.uow import UnitOfWork


def stream_id(profile_id: str) -> str:
    return profile_id


class ProfileRepository:
    """Load and save profile aggregates inside one unit of work."""

    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow

    async def get(self, profile_id: str) -> Profile | None:
        envelopes = await self.uow.events.load(self.uow.session, stream_id(profile_id))
        if not envelopes:
            return None
        return Profile.replay(REGISTRY.parse(envelope) for envelope in envelopes)

    async def save(self, profile: Profile) -> None:
        """Append the pending events (ConcurrencyError if the stream moved) and project the profile."""
        pending, profile.pending = profile.pending, []
        expected = profile.version - len(pending)
        for published, run in _runs(pending):
            await self._append(profile.profile_id, expected, published, run)
            expected += len(run)
        await self._project(profile)

    async def reschedule(self, profile: Profile) -> None:
        """Move the profile's `due_at` (nothing happened), unless a newer version was projected."""
        await self.uow.session.execute(
            sa.update(profiles)
            .where(profiles.c.profile_id == profile.profile_id, profiles.c.version == profile.version)
            .values(due_at=profile.due_at(self.uow.clock.now()))
        )

    async def _append(self, profile_id: str, expected: int, published: bool, events: list[Event]) -> None:
        sid = stream_id(profile_id)
        if published:
            await self.uow.append(sid, expected, events)
            return
        envelopes = [self.uow.envelope(event, aggregate_id=sid) for event in events]
        await self.uow.events.append(self.uow.session, sid, expected, envelopes)

    async def _project(self, profile: Profile) -> None:
        row = projection_row(profile, self.uow.clock.now())
        statement = insert(profiles).values(**row)
        update = {key: statement.excluded[key] for key in row if key != "profile_id"}
        newer = profiles.c.version < statement.excluded.version
        await self.uow.session.execute(
            statement.on_conflict_do_update(index_elements=["profile_id"], set_=update, where=newer)
        )


def _runs(events: Sequence[Event]) -> list[tuple[bool, list[Event]]]:
    """Consecutive events split into runs that are all published or all kept in the store only."""
    runs: list[tuple[bool, list[Event]]] = []
    for event in events:
        published = is_published(event)
        if runs and runs[-1][0] == published:
            runs[-1][1].append(event)
        else:
            runs.append((published, [event]))
    return runs


def projection_row(profile: Profile, now: datetime) -> dict[str, Any]:
    nomination = profile.nomination
    return {
        "profile_id": profile.profile_id,
        "owner": profile.owner,
        "status": profile.status.value,
        "version": profile.version,
        "eligible_programs": list(profile.eligible_programs),
        "submitted_at": profile.submitted_at,
        "expires_at": profile.expires_at,
        "due_at": profile.due_at(now),
        "nomination_province": nomination.province if nomination else None,
        "nominated_at": nomination.nominated_at if nomination else None,
        "created_at": profile.created_at,
        "updated_at": profile.updated_at,
    }
