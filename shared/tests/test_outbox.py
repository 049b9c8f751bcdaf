"""The transactional outbox and its relay against the real PostgreSQL and Kafka."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaProducer

from shared.clock import Clock
from shared.consumer import Delivery, IdempotentConsumer
from shared.db import event_store, outbox
from shared.envelope import decode
from shared.events.catalogue import PROFILE_TOPIC, ProfileWithdrawn
from shared.outbox import IdlePoll, OutboxRecord, OutboxRelay
from shared.settings import ServiceSettings
from shared.testing import KafkaReader, LoopTurns, PlatformDatabase, PlatformTestSettings, wait_until
from shared.uow import UnitOfWork

pytestmark = pytest.mark.infra

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
CLOCK = Clock.frozen(T0)


class SimulatedCrash(Exception):
    pass


def withdrawn(profile_id: str) -> ProfileWithdrawn:
    return ProfileWithdrawn(profile_id=profile_id, owner="alice", withdrawn_at=T0)


def uow(db: PlatformDatabase) -> UnitOfWork:
    return UnitOfWork(db.sessions, db.settings, CLOCK)


@pytest.fixture
async def db(
    platform_db: PlatformDatabase, platform_topics: ServiceSettings
) -> AsyncIterator[PlatformDatabase]:
    """The module's database with an empty outbox: each test counts only its own rows."""
    yield platform_db
    async with platform_db.engine.begin() as conn:
        await conn.execute(sa.update(outbox).values(published_at=sa.func.now()))


async def unpublished(db: PlatformDatabase) -> list[str]:
    async with db.sessions() as session:
        rows = await session.execute(
            sa.select(outbox.c.event_id).where(outbox.c.published_at.is_(None)).order_by(outbox.c.id)
        )
        return list(rows.scalars())


async def read_events(settings: ServiceSettings, reader: KafkaReader, at_least: int) -> list[tuple[str, str]]:
    """(key, event id) of every record on the profile topic so far."""
    records = await reader.read(at_least)
    return [((r.key or b"").decode(), decode(r.value or b"").id) for r in records]


async def test_state_events_and_outbox_commit_together_or_not_at_all(db: PlatformDatabase) -> None:
    sid = f"p-{uuid.uuid4().hex[:8]}"
    async with uow(db) as work:
        await work.append(sid, 0, [withdrawn(sid)])
        work.publish(withdrawn(sid))
        # no commit: rolled back on exit
    async with db.sessions() as session:
        stored = await session.scalar(sa.select(sa.func.count()).where(event_store.c.stream_id == sid))
    assert stored == 0
    assert await unpublished(db) == []

    async with uow(db) as work:
        envelopes = await work.append(sid, 0, [withdrawn(sid)])
        extra = work.publish(withdrawn(sid))
        await work.commit()
    assert await unpublished(db) == [envelopes[0].id, extra.id]
    assert envelopes[0].source == "ee/platform" and envelopes[0].time == T0
    assert envelopes[0].correlationid == extra.correlationid  # one unit of work, one conversation


async def test_relay_publishes_in_id_order_keyed_then_marks_published(
    db: PlatformDatabase, platform_settings: PlatformTestSettings
) -> None:
    keys = [f"p-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    ids: list[str] = []
    async with uow(db) as work:
        for i in range(12):
            ids.append(work.publish(withdrawn(keys[i % 3])).id)
        await work.commit()

    async with KafkaReader(platform_settings, platform_settings.topic(PROFILE_TOPIC)) as reader:
        before = len(await reader.drain(0.2))
        relay = OutboxRelay(db.engine, platform_settings)
        try:
            assert await relay.publish_pending() == 12
            assert await relay.publish_pending() == 0
        finally:
            await relay.stop()
        seen = (await read_events(platform_settings, reader, before + 12))[before:]

    assert await unpublished(db) == []
    assert sorted(event_id for _, event_id in seen) == sorted(ids)
    for key in keys:  # per key (one partition each) the order is the order of the outbox
        assert [e for k, e in seen if k == key] == [ids[i] for i in range(12) if keys[i % 3] == key]


async def test_a_backlog_pass_gives_the_loop_back_between_sends(
    db: PlatformDatabase, platform_settings: PlatformTestSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A thousand rows in one pass: the service's other tasks get turns while they are sent (the
    producer's `send` awaits nothing while its batch has room, so the loop over them held it)."""
    rows = 1_000
    async with uow(db) as work:
        for i in range(rows):
            work.publish(withdrawn(f"p-backlog-{i % 7}"))
        await work.commit()
    turns = LoopTurns()
    turns_at_send: list[int] = []
    real_send = AIOKafkaProducer.send

    async def send(self: AIOKafkaProducer, *args: Any, **kwargs: Any) -> Any:
        turns_at_send.append(turns.count)
        return await real_send(self, *args, **kwargs)

    monkeypatch.setattr(AIOKafkaProducer, "send", send)
    relay = OutboxRelay(db.engine, platform_settings)
    try:
        async with turns:
            assert await relay.publish_pending() == rows
    finally:
        await relay.stop()
    assert len(turns_at_send) == rows
    # The first send may wait for the topic's metadata; from the second on, only the relay can yield.
    assert turns_at_send[-1] > turns_at_send[1], "the loop was held from the second send to the last"
    assert await unpublished(db) == []


async def test_crash_between_publish_and_mark_republishes_and_the_consumer_applies_once(
    db: PlatformDatabase, platform_settings: PlatformTestSettings
) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(sa.text("CREATE TABLE IF NOT EXISTS applied (event_id text NOT NULL)"))
    ids: list[str] = []
    async with uow(db) as work:
        for i in range(5):
            ids.append(work.publish(withdrawn(f"crash-{i}")).id)
        await work.commit()

    crashed: list[Sequence[OutboxRecord]] = []

    async def crash(records: Sequence[OutboxRecord]) -> None:
        crashed.append(records)
        raise SimulatedCrash("the process died after Kafka acked, before the rows were marked")

    first = OutboxRelay(db.engine, platform_settings, fault_hook=crash)
    with pytest.raises(SimulatedCrash):
        await first.publish_pending()
    await first.stop()
    assert [r.event_id for r in crashed[0]] == ids
    assert await unpublished(db) == ids  # nothing marked: the rows stay for the next relay

    restarted = OutboxRelay(db.engine, platform_settings)
    try:
        assert await restarted.publish_pending() == 5
    finally:
        await restarted.stop()
    assert await unpublished(db) == []

    async def apply(work: UnitOfWork, delivery: Delivery) -> None:
        await work.session.execute(sa.text("INSERT INTO applied VALUES (:id)"), {"id": delivery.envelope.id})

    consumer = IdempotentConsumer(
        f"crash-{uuid.uuid4().hex[:6]}",
        platform_settings,
        db.sessions,
        CLOCK,
        topics=[PROFILE_TOPIC],
        handlers={"ProfileWithdrawn": apply},
    )
    task = asyncio.create_task(consumer.run())
    try:
        # Every event reached Kafka twice; every one of ours must be applied, each exactly once.
        async def all_applied() -> bool:
            async with db.sessions() as session:
                n = await session.scalar(
                    sa.select(sa.func.count(sa.distinct(sa.column("event_id"))))
                    .select_from(sa.table("applied", sa.column("event_id")))
                    .where(sa.column("event_id").in_(ids))
                )
                return n == 5

        await wait_until(all_applied, message=lambda: f"consumer metrics {consumer.metrics}")
        await wait_until(lambda: consumer.metrics.duplicates >= 5)
    finally:
        await consumer.stop()
        await task
    async with db.sessions() as session:
        rows = await session.execute(
            sa.text("SELECT event_id, count(*) FROM applied WHERE event_id = ANY(:ids) GROUP BY event_id"),
            {"ids": ids},
        )
        assert dict(rows.all()) == dict.fromkeys(ids, 1)


async def test_rows_committing_out_of_id_order_are_both_relayed(
    db: PlatformDatabase, platform_settings: PlatformTestSettings
) -> None:
    """The sequence-gap trap: A takes id n, B takes id n+1 and commits first; the relay must not skip A."""
    relay = OutboxRelay(db.engine, platform_settings)
    try:
        async with uow(db) as tx_a, uow(db) as tx_b:
            a = tx_a.publish(withdrawn("gap-a"))
            await tx_a.flush()  # A's row has its id, uncommitted
            b = tx_b.publish(withdrawn("gap-b"))
            await tx_b.flush()
            async with db.sessions() as session:
                ids = await session.execute(
                    sa.text("SELECT id FROM outbox WHERE event_id = ANY(:e)"), {"e": [a.id, b.id]}
                )
                assert list(ids.scalars()) == [], "neither row is visible before its commit"
            await tx_b.commit()
            assert await relay.publish_pending() == 1  # B only: A is not committed
            assert await unpublished(db) == []
            await tx_a.commit()
        assert await unpublished(db) == [a.id]
        assert await relay.publish_pending() == 1
    finally:
        await relay.stop()
    async with db.sessions() as session:
        order = await session.execute(
            sa.select(outbox.c.event_id, outbox.c.published_at.is_not(None))
            .where(outbox.c.event_id.in_([a.id, b.id]))
            .order_by(outbox.c.id)
        )
        assert order.all() == [(a.id, True), (b.id, True)]  # A has the smaller id, published last
    async with KafkaReader(platform_settings, platform_settings.topic(PROFILE_TOPIC)) as reader:
        records = await reader.drain(0.3)
    assert {a.id, b.id} <= {decode(r.value or b"").id for r in records}


def test_an_idle_poll_doubles_up_to_its_cap_and_comes_back_on_rows_or_a_wake() -> None:
    poll = IdlePoll(0.02, 0.2)
    waits = []
    for _ in range(6):
        poll.after_pass(found=False)
        waits.append(poll.wait_s)
    assert waits == [0.04, 0.08, 0.16, 0.2, 0.2, 0.2]
    poll.after_pass(found=True)
    assert poll.wait_s == 0.02
    poll.after_pass(found=False)
    poll.woken()
    assert poll.wait_s == 0.02
    with pytest.raises(ValueError, match="base_s <= max_s"):
        IdlePoll(0.5, 0.2)


async def test_an_idle_relay_polls_slower_and_still_finds_another_process_rows(
    db: PlatformDatabase, platform_settings: PlatformTestSettings
) -> None:
    """Rows committed elsewhere wake nobody: the relay, idle at its slowest poll, still finds them."""
    settings = platform_settings.model_copy(
        update={"relay_poll_interval_ms": 10, "relay_idle_poll_max_ms": 80}
    )
    relay = OutboxRelay(db.engine, settings)
    task = asyncio.create_task(relay.run())
    try:
        await wait_until(lambda: relay.is_leader and relay.poll_wait_s == 0.08, message="relay never idled")
        async with uow(db) as work:  # not wired to this relay's wake(), like another process's commit
            row = work.publish(withdrawn("idle-poll"))
            await work.commit()
        await wait_until(lambda: relay.published >= 1, timeout=5)
        assert await unpublished(db) == []
    finally:
        await relay.stop()
        await task
    async with KafkaReader(platform_settings, platform_settings.topic(PROFILE_TOPIC)) as reader:
        records = await reader.drain(0.3)
    assert row.id in {decode(r.value or b"").id for r in records}


async def test_one_relay_active_at_a_time_and_a_standby_takes_over(
    db: PlatformDatabase, platform_settings: PlatformTestSettings
) -> None:
    relays = [OutboxRelay(db.engine, platform_settings, lock_retry_s=0.1) for _ in range(2)]
    tasks = [asyncio.create_task(r.run()) for r in relays]
    try:
        await wait_until(lambda: any(r.is_leader for r in relays))
        await asyncio.sleep(0.3)  # the standby has retried the lock a few times by now
        assert [r.is_leader for r in relays].count(True) == 1
        leader = next(r for r in relays if r.is_leader)
        standby = next(r for r in relays if not r.is_leader)
        assert await standby.publish_pending() == 0  # refuses to publish without the lock

        async with uow(db) as work:
            first = work.publish(withdrawn("ha-1"))
            await work.commit()
        await wait_until(lambda: leader.published >= 1)
        assert await unpublished(db) == []

        await leader.stop()
        await wait_until(lambda: standby.is_leader, timeout=5)
        async with uow(db) as work:
            second = work.publish(withdrawn("ha-2"))
            await work.commit()
        await wait_until(lambda: standby.published >= 1)
        assert await unpublished(db) == []
    finally:
        for r in relays:
            await r.stop()
        await asyncio.gather(*tasks)
    async with KafkaReader(platform_settings, platform_settings.topic(PROFILE_TOPIC)) as reader:
        records = await reader.drain(0.3)
    assert {first.id, second.id} <= {decode(r.value or b"").id for r in records}


async def test_relay_keeps_rows_while_kafka_is_unreachable(
    db: PlatformDatabase, platform_settings: PlatformTestSettings
) -> None:
    async with uow(db) as work:
        event = work.publish(withdrawn("down-1"))
        await work.commit()
    nowhere = platform_settings.model_copy(update={"kafka_bootstrap_servers": "127.0.0.1:1"})
    broken = OutboxRelay(db.engine, nowhere, max_backoff_s=0.2)
    task = asyncio.create_task(broken.run())
    try:
        await wait_until(lambda: broken.failures >= 2, timeout=10)
        assert await unpublished(db) == [event.id]
    finally:
        await broken.stop()
        await task
    assert not broken.is_leader  # the failed relay let go of the lock

    relay = OutboxRelay(db.engine, platform_settings)
    try:
        assert await relay.publish_pending() == 1
    finally:
        await relay.stop()
    assert await unpublished(db) == []
