"""The event store against the real PostgreSQL: versions, optimistic concurrency, reading back."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import event_store
from shared.envelope import Envelope, new_event_id
from shared.eventstore import START, ConcurrencyError, Cursor, EventStore, Snapshot
from shared.testing import PlatformDatabase, wait_until

pytestmark = pytest.mark.infra

STORE = EventStore()
T0 = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


def envelope(n: int = 0) -> Envelope:
    return Envelope(
        id=new_event_id(),
        source="ee/test",
        type="ee.test.Happened.v1",
        time=T0,
        data={"n": n},
        subject="k",
    )


def stream() -> str:
    return f"s-{uuid.uuid4().hex[:8]}"


async def test_append_numbers_versions_and_load_returns_them_in_order(platform_db: PlatformDatabase) -> None:
    sid = stream()
    async with platform_db.sessions() as session:
        stored = await STORE.append(session, sid, 0, [envelope(1), envelope(2)])
        await session.commit()
    assert [(e.aggregateid, e.aggregateversion) for e in stored] == [(sid, 1), (sid, 2)]

    async with platform_db.sessions() as session:
        more = await STORE.append(session, sid, 2, [envelope(3)])
        await session.commit()
        loaded = await STORE.load(session, sid)
        assert await STORE.current_version(session, sid) == 3
    assert more[0].aggregateversion == 3
    assert [e.data["n"] for e in loaded] == [1, 2, 3]
    assert [e.id for e in loaded] == [e.id for e in stored + more]
    assert loaded[0].time == T0 and loaded[0].subject == "k"


async def test_concurrent_appends_at_the_same_version_exactly_one_wins(platform_db: PlatformDatabase) -> None:
    async def writer(sid: str, both_read: asyncio.Barrier, n: int) -> str:
        async with platform_db.sessions() as session:
            assert await STORE.current_version(session, sid) == 1
            await both_read.wait()  # both have read version 1 before either writes
            try:
                await STORE.append(session, sid, 1, [envelope(n), envelope(n)])
                await session.commit()
                return "won"
            except ConcurrencyError as exc:
                assert exc.stream_id == sid and exc.expected_version == 1
                await session.rollback()
                return "lost"

    for _ in range(5):  # several rounds: the interleaving differs from one to the next
        sid = stream()
        async with platform_db.sessions() as session:
            await STORE.append(session, sid, 0, [envelope(0)])
            await session.commit()
        barrier = asyncio.Barrier(2)
        outcomes = await asyncio.gather(writer(sid, barrier, 1), writer(sid, barrier, 2))
        assert sorted(outcomes) == ["lost", "won"]
        async with platform_db.sessions() as session:
            rows = (
                await session.execute(
                    sa.select(event_store.c.version, event_store.c.envelope).where(
                        event_store.c.stream_id == sid
                    )
                )
            ).all()
        assert sorted(v for v, _ in rows) == [1, 2, 3]
        assert len({e["data"]["n"] for v, e in rows if v > 1}) == 1, "the loser wrote nothing"


async def test_losing_the_insert_race_raises_and_keeps_the_transaction_usable(
    platform_db: PlatformDatabase,
) -> None:
    """Both pass the version check; the loser's insert waits on the winner's row, then fails.

    The loser's rows are skipped, not failed: its transaction is not aborted, its other work still commits.
    """
    sid, other = stream(), stream()
    async with platform_db.sessions() as winner, platform_db.sessions() as loser:
        await STORE.append(winner, sid, 0, [envelope()])  # inserted, not committed
        await STORE.append(loser, other, 0, [envelope()])
        loser_pid = (await loser.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one()
        race = asyncio.create_task(STORE.append(loser, sid, 0, [envelope()]))

        async def loser_waits_on_lock() -> bool:
            async with platform_db.sessions() as probe:
                waiting = await probe.execute(
                    sa.text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"),
                    {"pid": loser_pid},
                )
                return waiting.scalar_one_or_none() == "Lock"

        for _ in range(500):
            if await loser_waits_on_lock():
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("the loser never blocked on the winner's row")
        await winner.commit()
        with pytest.raises(ConcurrencyError) as caught:
            await race
        assert caught.value.actual_version is None  # detected by the unique constraint, not the pre-check
        await loser.commit()
    async with platform_db.sessions() as session:
        assert await STORE.current_version(session, other) == 1
        assert await STORE.current_version(session, sid) == 1


async def test_stale_or_future_expected_version_is_refused_without_writing(
    platform_db: PlatformDatabase,
) -> None:
    sid = stream()
    async with platform_db.sessions() as session:
        await STORE.append(session, sid, 0, [envelope(), envelope()])
        await session.commit()
    for expected in (0, 1, 5):
        async with platform_db.sessions() as session:
            with pytest.raises(ConcurrencyError) as caught:
                await STORE.append(session, sid, expected, [envelope()])
            assert caught.value.actual_version == 2
            assert "reload" in str(caught.value)
            await session.commit()
    async with platform_db.sessions() as session:
        assert await STORE.current_version(session, sid) == 2


async def end_of_log(session: AsyncSession) -> Cursor:
    """The cursor after every event committed so far (the module's database holds other tests' events)."""
    cursor = START
    while page := await STORE.read_all(session, after=cursor, limit=1000):
        cursor = page[-1][0]
    await session.commit()
    return cursor


async def test_read_all_pages_through_every_stream_in_commit_order(platform_db: PlatformDatabase) -> None:
    async with platform_db.sessions() as session:
        after = await end_of_log(session)
        a, b = stream(), stream()
        await STORE.append(session, a, 0, [envelope(1)])
        await session.commit()
        await STORE.append(session, b, 0, [envelope(2)])
        await STORE.append(session, a, 1, [envelope(3)])
        await session.commit()
        # Events wait behind any older transaction still running on the server (other databases'
        # too: transaction ids are cluster-wide), so a reader polls, as the relay and consumers do.
        # Earlier tests' events hidden behind such a transaction when `end_of_log` ran come into view
        # too (that is read_all never skipping): the pages are read in full, this test's streams kept.
        pages: list[list[tuple[Cursor, Envelope]]] = []

        async def read_every_page() -> bool:
            await session.commit()
            pages.clear()
            cursor = after
            while page := await STORE.read_all(session, after=cursor, limit=2):
                assert len(page) <= 2
                pages.append(page)
                cursor = page[-1][0]
            return len([e for page in pages for _, e in page if e.aggregateid in (a, b)]) == 3

        await wait_until(read_every_page, timeout=30, message=lambda: f"read {pages!r}")
    read = [(c, e) for page in pages for c, e in page]
    cursors = [c for c, _ in read]
    assert cursors == sorted(cursors) and len(set(cursors)) == len(cursors)
    ours = [e for _, e in read if e.aggregateid in (a, b)]
    assert [e.data["n"] for e in ours] == [1, 2, 3]
    assert [e.aggregateid for e in ours] == [a, b, a]


async def test_read_all_never_skips_an_event_that_commits_after_a_later_one(
    platform_db: PlatformDatabase,
) -> None:
    """The sequence-gap trap: the slow transaction takes its position first and commits last. A reader
    paging by position would read the fast one's event, move past, and never see the slow one's."""
    async with (
        platform_db.sessions() as reader,
        platform_db.sessions() as slow,
        platform_db.sessions() as fast,
    ):
        after = await end_of_log(reader)
        slow_stream, fast_stream = stream(), stream()
        await STORE.append(slow, slow_stream, 0, [envelope(1)])  # position p, not committed yet
        await STORE.append(fast, fast_stream, 0, [envelope(2)])  # position p + 1
        await fast.commit()

        seen = await STORE.read_all(reader, after=after)  # the slow one is still in flight
        await reader.commit()
        assert seen == []  # the fast one waits behind it rather than be read first and the slow one lost
        await slow.commit()

        async def read_on() -> bool:  # polls: other transactions on the server may still be running
            await reader.commit()
            seen.extend(await STORE.read_all(reader, after=seen[-1][0] if seen else after))
            return len(seen) >= 2

        await wait_until(read_on, timeout=30, message=lambda: f"read {seen!r}")
    assert [e.aggregateid for _, e in seen] == [slow_stream, fast_stream]


async def test_losing_part_of_the_versions_writes_none_of_the_batch(platform_db: PlatformDatabase) -> None:
    """The winner appends one event, the loser two at the same expected version: the loser's second
    version is free, yet none of its events may stay (a stream never mixes two writers' batches)."""
    sid = stream()
    async with platform_db.sessions() as session:
        await STORE.append(session, sid, 0, [envelope(0)])
        await session.commit()
    async with platform_db.sessions() as winner, platform_db.sessions() as loser:
        await STORE.append(winner, sid, 1, [envelope(1)])  # version 2, not committed
        loser_pid = (await loser.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one()
        race = asyncio.create_task(STORE.append(loser, sid, 1, [envelope(2), envelope(2)]))
        for _ in range(500):
            async with platform_db.sessions() as probe:
                waiting = await probe.execute(
                    sa.text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"),
                    {"pid": loser_pid},
                )
                if waiting.scalar_one_or_none() == "Lock":
                    break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("the loser never blocked on the winner's row")
        await winner.commit()
        with pytest.raises(ConcurrencyError) as caught:
            await race
        assert caught.value.actual_version is None
        await loser.commit()
    async with platform_db.sessions() as session:
        loaded = await STORE.load(session, sid)
    assert [(e.aggregateversion, e.data["n"]) for e in loaded] == [(1, 0), (2, 1)]


async def test_a_snapshot_is_read_with_the_events_after_it_and_never_replaced_by_an_older_one(
    platform_db: PlatformDatabase,
) -> None:
    sid = stream()
    async with platform_db.sessions() as session:
        await STORE.append(session, sid, 0, [envelope(n) for n in range(1, 6)])
        assert await STORE.load_from_snapshot(session, sid, "k.v1") == (None, await STORE.load(session, sid))
        await STORE.save_snapshot(session, sid, Snapshot("k.v1", 3, {"sum": 6}))
        await STORE.save_snapshot(session, sid, Snapshot("k.v1", 2, {"sum": 3}))  # older: ignored
        await session.commit()
    async with platform_db.sessions() as session:
        snapshot, after = await STORE.load_from_snapshot(session, sid, "k.v1")
        assert snapshot == Snapshot("k.v1", 3, {"sum": 6})
        assert [(e.aggregateversion, e.data["n"]) for e in after] == [(4, 4), (5, 5)]
        other, everything = await STORE.load_from_snapshot(session, sid, "k.v2")  # another shape
        assert other is None and [e.aggregateversion for e in everything] == [1, 2, 3, 4, 5]
        assert (await STORE.load_from_snapshot(session, stream(), "k.v1")) == (None, [])


async def test_an_append_that_is_the_first_statement_of_a_transaction_rolls_back_with_it(
    platform_db: PlatformDatabase,
) -> None:
    """The append goes to asyncpg directly (`driver_connection`): it must still be inside the session's
    transaction when nothing went through SQLAlchemy before it, and vanish with a rollback."""
    sid = stream()
    async with platform_db.sessions() as session:
        await STORE.append(session, sid, 0, [envelope(1)])  # the first statement: it begins the transaction
        assert await STORE.current_version(session, sid) == 1  # SQLAlchemy sees it: the same transaction
        await session.rollback()
    async with platform_db.sessions() as session:
        assert await STORE.current_version(session, sid) == 0
        assert await STORE.load_from_snapshot(session, sid, "k.v1") == (None, [])
