"""A unit of work's transaction on the pool's connection (`shared.db.Transaction`), against PostgreSQL:
commands that never ask for a session keep the guarantees of those that do."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest
import sqlalchemy as sa

from shared.clock import Clock
from shared.db import outbox
from shared.events.catalogue import ProfileWithdrawn
from shared.eventstore import ConcurrencyError
from shared.testing import PlatformDatabase
from shared.uow import UnitOfWork

pytestmark = pytest.mark.infra

T0 = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
CLOCK = Clock.frozen(T0)


def withdrawn(profile_id: str) -> ProfileWithdrawn:
    return ProfileWithdrawn(profile_id=profile_id, owner="o", withdrawn_at=T0)


def checked_out(platform_db: PlatformDatabase) -> int:
    return int(platform_db.engine.pool.checkedout())  # type: ignore[attr-defined]


async def outbox_rows(platform_db: PlatformDatabase, event_ids: list[str]) -> list[str]:
    async with platform_db.sessions() as session:
        rows = await session.execute(sa.select(outbox.c.event_id).where(outbox.c.event_id.in_(event_ids)))
        return sorted(rows.scalars())


async def test_concurrent_appends_without_a_session_one_wins_the_other_writes_nothing(
    platform_db: PlatformDatabase,
) -> None:
    """Two commands that read the same version and append through the unit of work's connection (no
    session anywhere): one commits; the other gets ConcurrencyError and none of its events or outbox
    rows are written."""
    uow_factory = platform_db.sessions

    async def command(stream: str, both_read: asyncio.Barrier) -> tuple[str, list[str]]:
        async with UnitOfWork(uow_factory, platform_db.settings, CLOCK) as uow:
            assert await uow.events.load(uow.tx, stream) != []
            await both_read.wait()  # both have read version 1 before either writes
            try:
                stored = await uow.append(stream, 1, [withdrawn(stream), withdrawn(stream)])
            except ConcurrencyError as exc:
                assert exc.expected_version == 1
                return "lost", []
            await uow.commit()
            return "won", [envelope.id for envelope in stored]

    for _ in range(5):  # several rounds: the interleaving differs from one to the next
        stream = f"s-{uuid.uuid4()}"
        async with UnitOfWork(uow_factory, platform_db.settings, CLOCK) as uow:
            await uow.append(stream, 0, [withdrawn(stream)])
            await uow.commit()
        barrier = asyncio.Barrier(2)
        outcomes = await asyncio.gather(command(stream, barrier), command(stream, barrier))
        assert sorted(outcome for outcome, _ in outcomes) == ["lost", "won"]
        winner = next(ids for outcome, ids in outcomes if outcome == "won")
        async with UnitOfWork(uow_factory, platform_db.settings, CLOCK) as uow:
            events = await uow.events.load(uow.tx, stream)
        assert [e.aggregateversion for e in events] == [1, 2, 3]
        assert [e.id for e in events[1:]] == winner
        assert await outbox_rows(platform_db, winner) == sorted(winner)
    assert checked_out(platform_db) == 0  # every connection went back to the pool


async def test_a_session_asked_for_after_the_connection_shares_its_transaction(
    platform_db: PlatformDatabase,
) -> None:
    """Statements through the connection, then through a session made after it: one transaction,
    rolled back as a whole when not committed, committed as a whole when it is."""
    for commit in (False, True):
        stream = f"s-{uuid.uuid4()}"
        async with UnitOfWork(platform_db.sessions, platform_db.settings, CLOCK) as uow:
            stored = await uow.append(stream, 0, [withdrawn(stream)])  # through the connection
            connection = await uow.tx.connection()
            backend = await connection.fetchval("SELECT pg_backend_pid()")
            # The session sees the uncommitted event: same connection, same transaction.
            assert await uow.events.current_version(uow.session, stream) == 1
            seen = await uow.session.execute(sa.text("SELECT pg_backend_pid()"))
            assert seen.scalar_one() == backend
            published = uow.publish(withdrawn(stream))  # written by the commit, through the session's
            if commit:
                await uow.commit()
        ids = [stored[0].id, published.id]
        async with UnitOfWork(platform_db.sessions, platform_db.settings, CLOCK) as uow:
            events = await uow.events.load(uow.tx, stream)
        assert len(events) == (1 if commit else 0)
        assert await outbox_rows(platform_db, ids) == (sorted(ids) if commit else [])
    assert checked_out(platform_db) == 0


async def test_a_session_asked_for_but_never_used_leaves_the_commit_to_the_connection(
    platform_db: PlatformDatabase,
) -> None:
    """A handler that takes `uow.session` without sending anything through it (e.g. to hand it to a
    hook that had nothing to record) must not lose the connection's transaction at commit."""
    stream = f"s-{uuid.uuid4()}"
    async with UnitOfWork(platform_db.sessions, platform_db.settings, CLOCK) as uow:
        stored = await uow.append(stream, 0, [withdrawn(stream)])
        assert uow.session is not None
        await uow.commit()
    async with UnitOfWork(platform_db.sessions, platform_db.settings, CLOCK) as uow:
        assert [e.id for e in await uow.events.load(uow.tx, stream)] == [stored[0].id]
    assert await outbox_rows(platform_db, [stored[0].id]) == [stored[0].id]
    assert checked_out(platform_db) == 0


async def test_a_failed_statement_rolls_back_and_gives_the_connection_back(
    platform_db: PlatformDatabase,
) -> None:
    stream = f"s-{uuid.uuid4()}"
    with pytest.raises(asyncpg.DivisionByZeroError):
        async with UnitOfWork(platform_db.sessions, platform_db.settings, CLOCK) as uow:
            await uow.append(stream, 0, [withdrawn(stream)])
            connection = await uow.tx.connection()
            await connection.fetchval("SELECT 1 / 0")
    with pytest.raises(RuntimeError):
        async with UnitOfWork(platform_db.sessions, platform_db.settings, CLOCK) as uow:
            await uow.append(stream, 0, [withdrawn(stream)])
            raise RuntimeError("the handler failed after the append")
    assert checked_out(platform_db) == 0
    async with UnitOfWork(platform_db.sessions, platform_db.settings, CLOCK) as uow:
        assert await uow.events.load(uow.tx, stream) == []  # neither append was kept
        await uow.append(stream, 0, [withdrawn(stream)])  # and the connection is usable again
        await uow.commit()
    async with UnitOfWork(platform_db.sessions, platform_db.settings, CLOCK) as uow:
        assert len(await uow.events.load(uow.tx, stream)) == 1
