"""Profile aggregates in the event store, projected into the `profiles` query table.

A stream's id is the profile id (the only aggregate of this service), so an envelope's `aggregateid` is
the `profile_id` consumers key on. Our own catalogue events go to the event store and the outbox in
one transaction; the facts received from other services (Invited, ...) go to the event store only.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from profile_service.adapters.keystore import KeyStore, keyring
from profile_service.adapters.tables import profiles
from profile_service.application.events import EVENTS
from profile_service.domain.events import is_published
from profile_service.domain.profile import Profile
from shared.crypto import DEV_KEK
from shared.db import guarded_upsert_sql, idempotency_keys, snapshots
from shared.domain_events import DomainEvent, ProfileCreated, ProfileSubmitted, ProfileUpdated
from shared.eventsourced import EventSourcedRepository
from shared.eventstore import Followup
from shared.personal import open_document, seal_document, split_personal
from shared.uow import UnitOfWork

DocumentEvent = ProfileCreated | ProfileUpdated | ProfileSubmitted


def stream_id(profile_id: str) -> str:
    return profile_id


class ProfileRepository(EventSourcedRepository[Profile]):
    """Load and save profile aggregates inside one unit of work (from a snapshot and the few events
    after it: a profile's history grows with every edit)."""

    mapper = EVENTS
    snapshot_kind = "profile.v2"
    """v2: the document's personal fields sealed (docs/PRIVACY.md), like in the events."""

    def __init__(self, uow: UnitOfWork) -> None:
        super().__init__(uow)
        self.keys = KeyStore(uow.tx, keyring(str(getattr(uow.settings, "kek", DEV_KEK))))
        self._key: bytes | None = None
        """The data key of the profile being loaded or saved (None: none yet, or erased)."""

    # --- personal data: sealed on the way in, opened on the way out (docs/PRIVACY.md) -------------

    # The data key is read with the snapshot and the events (one round trip): `loaded_also` unwraps it.
    load_also = KeyStore.SELECTED_BY_PROFILE_3

    def load_also_args(self, aggregate_id: str) -> tuple[Any, ...]:
        return (aggregate_id,)

    def loaded_also(self, values: tuple[Any, ...]) -> None:
        self._key = self.keys.unwrapped(values[0], values[1], values[2])

    async def save(self, aggregate: Profile) -> None:
        sealed: list[DomainEvent] = []
        for event in aggregate.pending:
            if isinstance(event, DocumentEvent) and event.sealed is None:
                event = await self._seal(event)
            sealed.append(event)
        aggregate.pending = sealed
        await super().save(aggregate)

    async def _seal(self, event: DocumentEvent) -> DocumentEvent:
        if not split_personal(event.document)[1]:
            return event
        if self._key is None:
            self._key = await self.keys.get_or_create(event.profile_id, self.uow.clock.now())
        readable, sealed = seal_document(event.document, self._key, event.profile_id)
        return replace(event, document=readable, sealed=sealed)

    def _open(self, event: DomainEvent) -> DomainEvent:
        if isinstance(event, DocumentEvent) and event.sealed is not None:
            document = open_document(event.document, event.sealed, self._key, event.profile_id)
            return replace(event, document=document, sealed=None)
        return event

    def opened(self, events: Iterable[DomainEvent]) -> Iterator[DomainEvent]:
        """The events with their personal fields opened (redacted once the key is destroyed)."""
        return (self._open(event) for event in events)

    def stream_id(self, aggregate_id: str) -> str:
        return stream_id(aggregate_id)

    def aggregate_id(self, aggregate: Profile) -> str:
        return aggregate.profile_id

    def replay(self, events: Iterable[DomainEvent]) -> Profile:
        return Profile.replay(self.opened(events))

    def is_published(self, event: DomainEvent) -> bool:
        return is_published(event)

    def to_snapshot(self, aggregate: Profile) -> dict[str, Any]:
        state = aggregate.snapshot()
        readable, personal = split_personal(state["document"])
        if personal:
            assert self._key is not None, "a document with personal fields was saved without a data key"
            readable, state["sealed"] = seal_document(state["document"], self._key, aggregate.profile_id)
        state["document"] = readable
        return state

    def from_snapshot(self, state: dict[str, Any], events: Iterable[DomainEvent]) -> Profile:
        state = dict(state)
        sealed = state.pop("sealed", None)
        state["document"] = open_document(state["document"], sealed, self._key, state["profile_id"])
        return Profile.restore(state, self.opened(events))

    async def history(self, profile_id: str) -> list[dict[str, Any]]:
        """The stream, each event with its personal fields opened (the owner's export)."""
        if self._key is None:
            self._key = await self.keys.get(profile_id)
        envelopes = await self.uow.events.load(self.uow.tx, self.stream_id(profile_id))
        events = self.opened(EVENTS.to_domain(self.registry.parse(envelope)) for envelope in envelopes)
        return [
            {
                "version": envelope.aggregateversion,
                "type": envelope.type,
                "time": envelope.time.isoformat(),
                "data": EVENTS.to_wire(event).model_dump(mode="json", exclude={"sealed"}),
            }
            for envelope, event in zip(envelopes, events, strict=True)
        ]

    async def forget(self, profile: Profile) -> None:
        """After PersonalDataErased: destroy the data key (crypto-shredding) and drop what the service
        holds of the person beside the stream: the query row, the snapshots, stored responses."""
        pid = profile.profile_id
        session = self.uow.session
        await self.keys.destroy(pid, self.uow.clock.now())
        self._key = None
        await session.execute(sa.delete(profiles).where(profiles.c.profile_id == pid))
        await session.execute(sa.delete(snapshots).where(snapshots.c.stream_id == self.stream_id(pid)))
        await session.execute(
            sa.delete(idempotency_keys).where(idempotency_keys.c.response["id"].astext == pid)
        )

    async def reschedule(self, profile: Profile) -> None:
        """Move the profile's `due_at` (nothing happened), unless a newer version was projected."""
        await self.uow.session.execute(
            sa.update(profiles)
            .where(profiles.c.profile_id == profile.profile_id, profiles.c.version == profile.version)
            .values(due_at=profile.due_at(self.uow.clock.now()))
        )

    def projection(self, aggregate: Profile) -> Followup:
        row = projection_row(aggregate, self.uow.clock.now())
        return Followup(_UPSERT_SQL, [row[column] for column in _COLUMNS])


_COLUMNS = [column.name for column in profiles.c]
# Sent with the append of the events (every command), in the same statement: see `shared.eventsourced`.
_UPSERT_SQL = guarded_upsert_sql(profiles, "profile_id", where="profiles.version < excluded.version")


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
        "closed_at": profile.closed_at,
    }
