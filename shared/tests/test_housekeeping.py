"""Housekeeping against the real PostgreSQL and Kafka: what is purged after its retention, what never
is, one replica at a time, and why a duplicate older than the retention is still harmless."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.clock import Clock
from shared.consumer import Delivery, IdempotentConsumer
from shared.envelope import encode
from shared.events.catalogue import PROFILE_TOPIC, ProfileWithdrawn
from shared.housekeeping import Housekeeping, housekeeping_lock_key
from shared.messages import envelope_for
from shared.settings import ServiceSettings
from shared.testing import (
    PlatformDatabase,
    PlatformTestSettings,
    delete_topics,
    ensure_topics,
    produce,
    unique_topic_prefix,
    wait_until,
)
from shared.uow import UnitOfWork

pytestmark = pytest.mark.infra

T0 = datetime(2026, 4, 1, 8, 0, tzinfo=UTC)
KEY = b"h-1"


async def age(db: PlatformDatabase, table: str, column: str, days: float, where: str) -> None:
    """Make rows look `days` old (the purge compares with the database's own now())."""
    async with db.engine.begin() as conn:
        await conn.execute(
            sa.text(f"UPDATE {table} SET {column} = now() - make_interval(secs => :s) WHERE {where}"),
            {"s": days * 86_400},
        )


async def count(db: PlatformDatabase, table: str, where: str = "true") -> int:
    async with db.engine.connect() as conn:
        return int(await conn.scalar(sa.text(f"SELECT count(*) FROM {table} WHERE {where}")) or 0)


async def test_rows_older_than_their_retention_are_purged_and_unpublished_rows_never(
    platform_db: PlatformDatabase, platform_settings: PlatformTestSettings
) -> None:
    db, tag = platform_db, uuid.uuid4().hex[:8]
    settings = platform_settings.model_copy(
        update={"outbox_retention_days": 7, "processed_retention_days": 30, "idempotency_retention_days": 1}
    )
    async with db.engine.begin() as conn:
        for n in range(4):
            await conn.execute(
                sa.text(
                    "INSERT INTO outbox (event_id, topic, key, payload, published_at) "
                    "VALUES (:e, 't', :k, 'x', CASE WHEN :n < 3 THEN now() END)"
                ),
                {"e": f"{tag}-{n}", "k": tag, "n": n},
            )
            await conn.execute(
                sa.text("INSERT INTO processed_messages (consumer, event_id) VALUES (:c, :e)"),
                {"c": tag, "e": f"e{n}"},
            )
            await conn.execute(
                sa.text(
                    "INSERT INTO idempotency_keys (scope, key, request_hash, status_code) "
                    "VALUES (:s, :k, 'h', 201)"
                ),
                {"s": tag, "k": f"k{n}"},
            )
    # outbox: 0 published 8 days ago, 1 published 6 days ago, 2 published now, 3 unpublished for 100 days
    await age(db, "outbox", "published_at", 8, f"event_id = '{tag}-0'")
    await age(db, "outbox", "published_at", 6, f"event_id = '{tag}-1'")
    await age(db, "outbox", "created_at", 100, f"event_id = '{tag}-3'")
    await age(db, "processed_messages", "processed_at", 31, f"consumer = '{tag}' AND event_id < 'e2'")
    await age(db, "idempotency_keys", "created_at", 2, f"scope = '{tag}' AND key = 'k0'")

    purged = await Housekeeping(db.engine, settings, chunk=1).purge_once()  # chunk 1: the loop is exercised

    assert purged is not None and purged["outbox"] >= 1 and purged["processed_messages"] >= 2
    outbox_left = await count(db, "outbox", f"key = '{tag}'")
    assert outbox_left == 3 and await count(db, "outbox", f"event_id = '{tag}-3'") == 1  # never unpublished
    assert await count(db, "processed_messages", f"consumer = '{tag}'") == 2
    assert await count(db, "idempotency_keys", f"scope = '{tag}'") == 3


async def test_one_replica_purges_while_the_others_skip(
    platform_db: PlatformDatabase, platform_settings: PlatformTestSettings
) -> None:
    keeper = Housekeeping(platform_db.engine, platform_settings)
    async with platform_db.engine.connect() as other:  # another replica in the middle of its pass
        await other.execute(sa.select(sa.func.pg_advisory_lock(housekeeping_lock_key("platform"))))
        try:
            assert await keeper.purge_once() is None
        finally:
            await other.execute(sa.select(sa.func.pg_advisory_unlock(housekeeping_lock_key("platform"))))
    assert await keeper.purge_once() is not None


@pytest.fixture
async def settings(
    platform_db: PlatformDatabase, platform_settings: PlatformTestSettings
) -> AsyncIterator[ServiceSettings]:
    mine = platform_settings.model_copy(update={"topic_prefix": unique_topic_prefix("housekeeping")})
    await ensure_topics(mine, partitions=1)
    yield mine
    await delete_topics(mine)


async def test_a_duplicate_older_than_the_retention_is_still_harmless(
    platform_db: PlatformDatabase, settings: ServiceSettings
) -> None:
    """The event id record is gone, yet the old record is not applied again: the stored position (never
    purged) is the consumer's first guard. And a relay re-send comes right behind its original, while the
    record of its id is fresh."""
    db, applied = platform_db, []

    async def apply(work: UnitOfWork, delivery: Delivery) -> None:
        work.after_commit(lambda: applied.append(delivery.envelope.id))

    name, group = f"hk-{uuid.uuid4().hex[:6]}", "housekeeping-test"
    event = ProfileWithdrawn(profile_id="h-1", owner="alice", withdrawn_at=T0)
    original = envelope_for(event, source="ee/test", time=T0)
    topic = settings.topic(PROFILE_TOPIC)
    # The original and the relay's re-send of it (acknowledged, not marked published: sent again).
    await produce(settings, topic, [encode(original), encode(original)], key=KEY)

    def consumer() -> IdempotentConsumer:
        return IdempotentConsumer(
            name,
            settings,
            db.sessions,
            Clock.frozen(T0),
            topics=[PROFILE_TOPIC],
            handlers={"ProfileWithdrawn": apply},
            group_id=group,
            retry_backoff_s=0.01,
        )

    first = consumer()
    task = asyncio.create_task(first.run())
    await wait_until(lambda: first.metrics.processed + first.metrics.duplicates >= 2)
    await first.stop()
    await task
    assert applied == [original.id] and first.metrics.duplicates == 1  # the re-send: deduped by event id

    # Months later: the record of the event id is purged...
    await age(db, "processed_messages", "processed_at", 400, f"consumer = '{name}'")
    assert (await Housekeeping(db.engine, settings).purge_once() or {})["processed_messages"] >= 1
    assert await count(db, "processed_messages", f"consumer = '{name}'") == 0
    # ...and Kafka offers the old records again: the group's committed offsets are reset to the start.
    reset = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=settings.consumer_group(group),
        enable_auto_commit=False,
    )
    await reset.start()
    try:
        tp = TopicPartition(topic, 0)
        reset.assign([tp])
        await reset.commit({tp: 0})
    finally:
        await reset.stop()

    second = consumer()
    task = asyncio.create_task(second.run())
    await second.wait_ready()
    await produce(settings, topic, [encode(envelope_for(event, source="ee/test", time=T0))], key=KEY)
    await wait_until(lambda: second.metrics.processed >= 1, message=lambda: str(second.metrics))
    await second.stop()
    await task
    # Only the new event was applied: the stored position (2) kept the old records out.
    assert len(applied) == 2 and applied[0] == original.id and applied[1] != original.id
