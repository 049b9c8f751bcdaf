"""The event-sourced repository against the real PostgreSQL: load, save, published vs stored-only runs."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from shared.clock import Clock
from shared.db import outbox
from shared.events.catalogue import (
    Event,
    InvitationDeclined,
    NominationIssued,
    NominationWithdrawn,
    ProfileCreated,
)
from shared.eventsourced import EventSourcedRepository, runs_by
from shared.eventstore import ConcurrencyError
from shared.testing import PlatformDatabase
from shared.uow import UnitOfWork

T0 = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
CLOCK = Clock.frozen(T0)


@dataclass
class Nominations:
    """A toy aggregate: the provinces that nominated a profile (profile events are published)."""

    profile_id: str
    provinces: list[str] = field(default_factory=list)
    version: int = 0
    pending: list[Event] = field(default_factory=list)

    def nominate(self, province: str) -> None:
        self._record(NominationIssued(profile_id=self.profile_id, owner="o", province=province,
                                      nominated_at=T0))

    def hear(self, event: Event) -> None:
        self._record(event)

    def _record(self, event: Event) -> None:
        self._apply(event)
        self.version += 1
        self.pending.append(event)

    def _apply(self, event: Event) -> None:
        if isinstance(event, NominationIssued):
            self.provinces.append(event.province)
        elif isinstance(event, NominationWithdrawn):
            self.provinces.remove(event.province)


class NominationsRepository(EventSourcedRepository[Nominations]):
    projected: list[tuple[str, int]]

    def __init__(self, uow: UnitOfWork) -> None:
        super().__init__(uow)
        self.projected = []

    def stream_id(self, aggregate_id: str) -> str:
        return f"nominations-{aggregate_id}"

    def aggregate_id(self, aggregate: Nominations) -> str:
        return aggregate.profile_id

    def replay(self, events: Iterable[Event]) -> Nominations:
        aggregate: Nominations | None = None
        for event in events:
            assert isinstance(event, NominationIssued | NominationWithdrawn | InvitationDeclined)
            aggregate = aggregate or Nominations(event.profile_id)
            aggregate._apply(event)
            aggregate.version += 1
        assert aggregate is not None
        return aggregate

    def is_published(self, event: Event) -> bool:
        return event.producer == "profile"

    async def project(self, aggregate: Nominations) -> None:
        self.projected.append((aggregate.profile_id, aggregate.version))


def declined(profile_id: str) -> InvitationDeclined:
    return InvitationDeclined(profile_id=profile_id, owner="o", invitation_id="i", declined_at=T0)


def test_runs_split_consecutive_events_by_whether_they_are_published() -> None:
    events: list[Event] = [
        ProfileCreated(profile_id="p", owner="o", document={}, created_at=T0),
        NominationIssued(profile_id="p", owner="o", province="ON", nominated_at=T0),
        declined("p"),
        NominationIssued(profile_id="p", owner="o", province="BC", nominated_at=T0),
    ]
    runs = runs_by(events, lambda e: e.producer == "profile")
    assert [(published, len(run)) for published, run in runs] == [(True, 2), (False, 1), (True, 1)]
    assert runs_by([], lambda e: True) == []


@pytest.mark.infra
async def test_save_appends_in_version_order_publishes_only_its_own_events_and_projects(
    platform_db: PlatformDatabase,
) -> None:
    profile_id = str(uuid.uuid4())
    async with UnitOfWork(platform_db.sessions, platform_db.settings, CLOCK) as uow:
        repository = NominationsRepository(uow)
        assert await repository.get(profile_id) is None
        assert not await repository.exists(profile_id)
        aggregate = Nominations(profile_id)
        aggregate.nominate("ON")
        aggregate.hear(declined(profile_id))
        aggregate.nominate("BC")
        await repository.save(aggregate)
        assert aggregate.pending == [] and repository.projected == [(profile_id, 3)]
        await uow.commit()

    async with UnitOfWork(platform_db.sessions, platform_db.settings, CLOCK) as uow:
        repository = NominationsRepository(uow)
        loaded = await repository.get(profile_id)
        assert loaded is not None and loaded.provinces == ["ON", "BC"] and loaded.version == 3
        assert await repository.exists(profile_id)
        envelopes = await uow.events.load(uow.session, f"nominations-{profile_id}")
        assert [e.aggregateversion for e in envelopes] == [1, 2, 3]
        published = await uow.session.execute(
            sa.select(outbox.c.event_id).where(outbox.c.event_id.in_([e.id for e in envelopes]))
        )
        assert set(published.scalars()) == {envelopes[0].id, envelopes[2].id}


@pytest.mark.infra
async def test_a_stale_save_raises_concurrency_error_and_writes_nothing(
    platform_db: PlatformDatabase,
) -> None:
    profile_id = str(uuid.uuid4())
    async with UnitOfWork(platform_db.sessions, platform_db.settings, CLOCK) as uow:
        aggregate = Nominations(profile_id)
        aggregate.nominate("ON")
        await NominationsRepository(uow).save(aggregate)
        await uow.commit()

    async with UnitOfWork(platform_db.sessions, platform_db.settings, CLOCK) as first, UnitOfWork(
        platform_db.sessions, platform_db.settings, CLOCK
    ) as second:
        mine = await NominationsRepository(first).get(profile_id)
        theirs = await NominationsRepository(second).get(profile_id)
        assert mine is not None and theirs is not None
        theirs.nominate("QC")
        await NominationsRepository(second).save(theirs)
        await second.commit()
        mine.nominate("BC")
        repository = NominationsRepository(first)
        with pytest.raises(ConcurrencyError):
            await repository.save(mine)
        assert repository.projected == []
