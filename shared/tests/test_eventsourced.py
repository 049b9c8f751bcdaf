"""The event-sourced repository against the real PostgreSQL: load, save, published vs stored-only runs."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from shared.clock import Clock
from shared.db import outbox, snapshots
from shared.domain_events import (
    DomainEvent,
    InvitationDeclined,
    NominationIssued,
    NominationWithdrawn,
    ProfileCreated,
    ProfileFact,
)
from shared.events.catalogue import ProfileWithdrawn
from shared.events.mapping import EventMapper
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
    pending: list[DomainEvent] = field(default_factory=list)

    def nominate(self, province: str) -> None:
        self._record(
            NominationIssued(profile_id=self.profile_id, owner="o", province=province, nominated_at=T0)
        )

    def hear(self, event: DomainEvent) -> None:
        self._record(event)

    def _record(self, event: DomainEvent) -> None:
        self._apply(event)
        self.version += 1
        self.pending.append(event)

    def _apply(self, event: DomainEvent) -> None:
        if isinstance(event, NominationIssued):
            self.provinces.append(event.province)
        elif isinstance(event, NominationWithdrawn):
            self.provinces.remove(event.province)


class NominationsRepository(EventSourcedRepository[Nominations]):
    projected: list[tuple[str, int]]
    mapper = EventMapper((NominationIssued, NominationWithdrawn, InvitationDeclined))

    def __init__(self, uow: UnitOfWork) -> None:
        super().__init__(uow)
        self.projected = []

    def stream_id(self, aggregate_id: str) -> str:
        return f"nominations-{aggregate_id}"

    def aggregate_id(self, aggregate: Nominations) -> str:
        return aggregate.profile_id

    def replay(self, events: Iterable[DomainEvent]) -> Nominations:
        aggregate: Nominations | None = None
        for event in events:
            assert isinstance(event, NominationIssued | NominationWithdrawn | InvitationDeclined)
            aggregate = aggregate or Nominations(event.profile_id)
            aggregate._apply(event)
            aggregate.version += 1
        assert aggregate is not None
        return aggregate

    def is_published(self, event: DomainEvent) -> bool:
        return isinstance(event, ProfileFact)

    async def project(self, aggregate: Nominations) -> None:
        self.projected.append((aggregate.profile_id, aggregate.version))


def declined(profile_id: str) -> InvitationDeclined:
    return InvitationDeclined(profile_id=profile_id, owner="o", invitation_id="i", declined_at=T0)


def test_runs_split_consecutive_events_by_whether_they_are_published() -> None:
    events: list[DomainEvent] = [
        ProfileCreated(profile_id="p", owner="o", document={}, created_at=T0),
        NominationIssued(profile_id="p", owner="o", province="ON", nominated_at=T0),
        declined("p"),
        NominationIssued(profile_id="p", owner="o", province="BC", nominated_at=T0),
    ]
    runs = runs_by(events, lambda e: isinstance(e, ProfileFact))
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

    async with (
        UnitOfWork(platform_db.sessions, platform_db.settings, CLOCK) as first,
        UnitOfWork(platform_db.sessions, platform_db.settings, CLOCK) as second,
    ):
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


async def _outbox_ids(uow: UnitOfWork, event_ids: Iterable[str]) -> list[str]:
    """The outbox rows among `event_ids`, in outbox (relay) order."""
    rows = await uow.session.execute(
        sa.select(outbox.c.event_id).where(outbox.c.event_id.in_(list(event_ids))).order_by(outbox.c.id)
    )
    return list(rows.scalars())


@pytest.mark.infra
async def test_the_outbox_rows_go_in_with_the_append_in_the_order_they_were_produced(
    platform_db: PlatformDatabase,
) -> None:
    """A message published before an append and the appended events reach the outbox in that order,
    written by the append's own statement (before any commit or flush)."""
    profile_id = str(uuid.uuid4())
    async with UnitOfWork(platform_db.sessions, platform_db.settings, CLOCK) as uow:
        before = uow.publish(ProfileWithdrawn(profile_id=profile_id, owner="o", withdrawn_at=T0))
        stored = await uow.append(f"s-{profile_id}", 0, [
            ProfileWithdrawn(profile_id=profile_id, owner="o", withdrawn_at=T0) for _ in range(2)
        ])  # fmt: skip
        ids = [before.id, *(e.id for e in stored)]
        assert await _outbox_ids(uow, ids) == ids  # already written, in production order
        after = uow.publish(ProfileWithdrawn(profile_id=profile_id, owner="o", withdrawn_at=T0))
        await uow.commit()
    async with UnitOfWork(platform_db.sessions, platform_db.settings, CLOCK) as uow:
        assert await _outbox_ids(uow, [*ids, after.id]) == [*ids, after.id]


@pytest.mark.infra
async def test_a_losing_append_writes_no_outbox_row_and_keeps_those_buffered_before_it(
    platform_db: PlatformDatabase,
) -> None:
    profile_id = str(uuid.uuid4())
    stream = f"s-{profile_id}"
    event = ProfileWithdrawn(profile_id=profile_id, owner="o", withdrawn_at=T0)
    async with UnitOfWork(platform_db.sessions, platform_db.settings, CLOCK) as uow:
        await uow.append(stream, 0, [event])
        await uow.commit()
    async with UnitOfWork(platform_db.sessions, platform_db.settings, CLOCK) as uow:
        buffered = uow.publish(event)
        with pytest.raises(ConcurrencyError):
            await uow.append(stream, 0, [event, event])  # stale: the stream is at 1
        assert await uow.events.current_version(uow.session, stream) == 1
        assert await _outbox_ids(uow, [buffered.id]) == []  # not written by the failed append
        await uow.commit()
    async with UnitOfWork(platform_db.sessions, platform_db.settings, CLOCK) as uow:
        assert await _outbox_ids(uow, [buffered.id]) == [buffered.id]  # but by the commit
        about = await uow.session.execute(
            sa.text("SELECT count(*) FROM outbox WHERE position(CAST(:s AS bytea) IN payload) > 0"),
            {"s": stream.encode()},
        )
        assert about.scalar_one() == 1  # the first append's event only


class SnapshottedNominations(NominationsRepository):
    """The same aggregate, snapshotted every 3 versions; `restored` counts loads from a snapshot."""

    snapshot_kind = "nominations.v1"
    snapshot_every = 3
    restored = 0

    def to_snapshot(self, aggregate: Nominations) -> dict[str, object]:
        return {
            "profile_id": aggregate.profile_id,
            "provinces": list(aggregate.provinces),
            "version": aggregate.version,
        }

    def from_snapshot(self, state: dict[str, Any], events: Iterable[DomainEvent]) -> Nominations:
        type(self).restored += 1
        aggregate = Nominations(state["profile_id"], list(state["provinces"]), int(state["version"]))
        for event in events:
            aggregate._apply(event)
            aggregate.version += 1
        return aggregate


async def _snapshot_row(uow: UnitOfWork, stream_id: str) -> tuple[str, int] | None:
    row = (
        await uow.session.execute(
            sa.select(snapshots.c.kind, snapshots.c.version).where(snapshots.c.stream_id == stream_id)
        )
    ).one_or_none()
    return None if row is None else (row.kind, row.version)


@pytest.mark.infra
async def test_a_snapshot_is_taken_every_n_versions_and_loading_from_it_equals_replaying_every_event(
    platform_db: PlatformDatabase,
) -> None:
    profile_id = str(uuid.uuid4())
    sid = f"nominations-{profile_id}"
    provinces = ["ON", "BC", "QC", "NS", "MB", "SK", "AB"]
    for count, province in enumerate(provinces, start=1):
        async with UnitOfWork(platform_db.sessions, platform_db.settings, CLOCK) as uow:
            repository = SnapshottedNominations(uow)
            aggregate = await repository.get(profile_id) or Nominations(profile_id)
            aggregate.nominate(province)
            if count == 5:  # a save of two events (versions 5 and 6)
                aggregate.hear(declined(profile_id))
            await repository.save(aggregate)
            await uow.commit()
        async with UnitOfWork(platform_db.sessions, platform_db.settings, CLOCK) as uow:
            snapshot = await _snapshot_row(uow, sid)
            version = count + (1 if count >= 5 else 0)
            assert snapshot == (None if version < 3 else ("nominations.v1", version - version % 3)), version

    SnapshottedNominations.restored = 0
    async with UnitOfWork(platform_db.sessions, platform_db.settings, CLOCK) as uow:
        from_snapshot = await SnapshottedNominations(uow).get(profile_id)
        replayed = await NominationsRepository(uow).get(profile_id)
    assert SnapshottedNominations.restored == 1
    assert from_snapshot is not None and replayed is not None
    assert from_snapshot == replayed and from_snapshot.version == 8
    assert from_snapshot.provinces == provinces


@pytest.mark.infra
async def test_a_snapshot_of_another_kind_is_ignored_and_replaced(platform_db: PlatformDatabase) -> None:
    profile_id = str(uuid.uuid4())
    sid = f"nominations-{profile_id}"
    async with UnitOfWork(platform_db.sessions, platform_db.settings, CLOCK) as uow:
        aggregate = Nominations(profile_id)
        for province in ("ON", "BC", "QC"):
            aggregate.nominate(province)
        await SnapshottedNominations(uow).save(aggregate)
        # An older shape of the aggregate wrote this one: its state means nothing to this code.
        await uow.session.execute(
            sa.update(snapshots)
            .where(snapshots.c.stream_id == sid)
            .values(kind="nominations.v0", state={"garbage": True})
        )
        await uow.commit()

    SnapshottedNominations.restored = 0
    async with UnitOfWork(platform_db.sessions, platform_db.settings, CLOCK) as uow:
        repository = SnapshottedNominations(uow)
        loaded = await repository.get(profile_id)
        assert loaded is not None and loaded.provinces == ["ON", "BC", "QC"] and loaded.version == 3
        assert SnapshottedNominations.restored == 0  # replayed from the events
        for province in ("NS", "MB", "SK"):
            loaded.nominate(province)
        await repository.save(loaded)
        assert await _snapshot_row(uow, sid) == ("nominations.v1", 6)
        await uow.commit()
