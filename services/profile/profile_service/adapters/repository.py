"""Profile aggregates in the event store, projected into the `profiles` query table.

A stream's id is the profile id (the only aggregate of this service), so an envelope's `aggregateid` is
the `profile_id` consumers key on. Our own catalogue events go to the event store and the outbox in
one transaction; the facts received from other services (Invited, ...) go to the event store only.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from profile_service.adapters.tables import profiles
from profile_service.domain.events import is_published
from profile_service.domain.profile import Profile
from shared.db import driver_connection
from shared.events.catalogue import Event
from shared.eventsourced import EventSourcedRepository


def stream_id(profile_id: str) -> str:
    return profile_id


class ProfileRepository(EventSourcedRepository[Profile]):
    """Load and save profile aggregates inside one unit of work (from a snapshot and the few events
    after it: a profile's history grows with every edit)."""

    snapshot_kind = "profile.v1"

    def stream_id(self, aggregate_id: str) -> str:
        return stream_id(aggregate_id)

    def aggregate_id(self, aggregate: Profile) -> str:
        return aggregate.profile_id

    def replay(self, events: Iterable[Event]) -> Profile:
        return Profile.replay(events)

    def is_published(self, event: Event) -> bool:
        return is_published(event)

    def to_snapshot(self, aggregate: Profile) -> dict[str, Any]:
        return aggregate.snapshot()

    def from_snapshot(self, state: dict[str, Any], events: Iterable[Event]) -> Profile:
        return Profile.restore(state, events)

    async def reschedule(self, profile: Profile) -> None:
        """Move the profile's `due_at` (nothing happened), unless a newer version was projected."""
        await self.uow.session.execute(
            sa.update(profiles)
            .where(profiles.c.profile_id == profile.profile_id, profiles.c.version == profile.version)
            .values(due_at=profile.due_at(self.uow.clock.now()))
        )

    async def project(self, aggregate: Profile) -> None:
        row = projection_row(aggregate, self.uow.clock.now())
        connection = await driver_connection(self.uow.session)  # every command: no SQLAlchemy layers
        await connection.execute(_UPSERT_SQL, *(row[column] for column in _COLUMNS))


_COLUMNS = [column.name for column in profiles.c]
_UPSERT_SQL = (
    f"INSERT INTO profiles ({', '.join(_COLUMNS)}) "
    f"VALUES ({', '.join(f'${n}' for n in range(1, len(_COLUMNS) + 1))}) "
    "ON CONFLICT (profile_id) DO UPDATE SET "
    + ", ".join(f"{name} = excluded.{name}" for name in _COLUMNS if name != "profile_id")
    + " WHERE profiles.version < excluded.version"
)


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
