"""A unit of work whose only write is one append commits it without BEGIN and COMMIT (`alone`)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from shared.clock import Clock
from shared.db import event_store, outbox
from shared.events.catalogue import ProfileWithdrawn
from shared.eventstore import ConcurrencyError
from shared.testing import PlatformDatabase
from shared.uow import BatchUnitOfWork, ServiceUnitOfWork, UnitOfWork, one_write_commits_alone

pytestmark = pytest.mark.infra

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
CLOCK = Clock.frozen(T0)


def withdrawn(profile_id: str) -> ProfileWithdrawn:
    return ProfileWithdrawn(profile_id=profile_id, owner="alice", withdrawn_at=T0)


def a_stream() -> str:
    return f"lone-{uuid.uuid4().hex[:10]}"


def uow(db: PlatformDatabase, *, alone: bool) -> UnitOfWork:
    work = UnitOfWork(db.sessions, db.settings, CLOCK)
    if alone:
        one_write_commits_alone(work)
    return work


async def seen_elsewhere(db: PlatformDatabase, stream_id: str) -> tuple[int, int]:
    """(events, outbox rows) of the stream that another connection sees: what has committed."""
    async with db.engine.connect() as conn:
        events = await conn.scalar(
            sa.select(sa.func.count()).select_from(event_store).where(event_store.c.stream_id == stream_id)
        )
        rows = await conn.scalar(
            sa.select(sa.func.count()).select_from(outbox).where(outbox.c.key == stream_id)
        )
    return int(events or 0), int(rows or 0)


async def test_a_lone_append_after_reads_commits_by_itself_and_nothing_can_join_it(
    platform_db: PlatformDatabase,
) -> None:
    stream_id, called = a_stream(), []
    async with uow(platform_db, alone=True) as work:
        assert await work.events.load(work.tx, stream_id) == []
        assert not (await work.tx.reading()).is_in_transaction(), "a read alone sends no BEGIN"
        work.after_commit(lambda: called.append(True))
        await work.append(stream_id, 0, [withdrawn(stream_id)])
        assert await seen_elsewhere(platform_db, stream_id) == (1, 1), "committed before commit()"
        assert work.tx.sealed
        with pytest.raises(RuntimeError, match="nothing more can join it"):
            await work.tx.connection()
        await work.commit()  # nothing left to send; the after-commit callbacks still run
    assert called == [True]
    assert await seen_elsewhere(platform_db, stream_id) == (1, 1)


async def test_a_write_after_the_lone_append_is_refused_not_lost_silently(
    platform_db: PlatformDatabase,
) -> None:
    stream_id = a_stream()
    async with uow(platform_db, alone=True) as work:
        await work.append(stream_id, 0, [withdrawn(stream_id)])
        work.publish(withdrawn(stream_id))
        with pytest.raises(RuntimeError, match="nothing more can join it"):
            await work.commit()
    assert await seen_elsewhere(platform_db, stream_id) == (1, 1)


@pytest.mark.parametrize("case", ["not declared", "written before", "two events"])
async def test_otherwise_the_append_waits_for_the_commit(platform_db: PlatformDatabase, case: str) -> None:
    stream_id = a_stream()
    async with uow(platform_db, alone=case != "not declared") as work:
        if case == "written before":
            work.publish(withdrawn(stream_id))
            await work.flush()
        events = [withdrawn(stream_id)] * (2 if case == "two events" else 1)
        await work.append(stream_id, 0, events)
        assert not work.tx.sealed
        assert await seen_elsewhere(platform_db, stream_id) == (0, 0), "nothing is visible before commit()"
        await work.commit()
    expected_rows = len(events) + (1 if case == "written before" else 0)
    assert await seen_elsewhere(platform_db, stream_id) == (len(events), expected_rows)


async def test_a_lone_append_that_loses_writes_nothing_and_the_unit_of_work_goes_on(
    platform_db: PlatformDatabase,
) -> None:
    stream_id = a_stream()
    async with uow(platform_db, alone=True) as work:
        with pytest.raises(ConcurrencyError):
            await work.append(stream_id, 3, [withdrawn(stream_id)])  # the stream is at 0
        assert not work.tx.sealed
        assert await seen_elsewhere(platform_db, stream_id) == (0, 0)
        await work.append(stream_id, 0, [withdrawn(stream_id)])
        assert work.tx.sealed
        await work.commit()
    assert await seen_elsewhere(platform_db, stream_id) == (1, 1)


async def test_only_a_commands_unit_of_work_is_declared(platform_db: PlatformDatabase) -> None:
    inner = UnitOfWork(platform_db.sessions, platform_db.settings, CLOCK)
    one_write_commits_alone(ServiceUnitOfWork(inner))
    assert inner.last_append_commits
    batch = BatchUnitOfWork(platform_db.sessions, platform_db.settings, CLOCK)
    one_write_commits_alone(batch)  # a consumer's batch commits with its positions: never alone
    assert not batch.last_append_commits
