"""The idempotent consumer against the real Kafka and PostgreSQL: dedupe, DLQ, unknown types, positions."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import orjson
import pytest
import sqlalchemy as sa

from shared.clock import Clock
from shared.consumer import ClusterMismatchError, Delivery, Handler, IdempotentConsumer
from shared.db import consumer_positions, outbox
from shared.envelope import Envelope, decode, encode
from shared.events.catalogue import PROFILE_TOPIC, ProfileWithdrawn
from shared.kafka_admin import admin_client
from shared.messages import envelope_for
from shared.settings import ServiceSettings
from shared.testing import (
    KafkaReader,
    PlatformDatabase,
    delete_topics,
    ensure_topics,
    produce,
    unique_topic_prefix,
    wait_until,
)
from shared.uow import UnitOfWork

pytestmark = pytest.mark.infra

T0 = datetime(2026, 4, 1, 8, 0, tzinfo=UTC)
CLOCK = Clock.frozen(T0)
KEY = b"p-1"  # one key: every record lands on one partition, in the order produced


@pytest.fixture(scope="module")
async def consumed_table(platform_db: PlatformDatabase) -> PlatformDatabase:
    async with platform_db.engine.begin() as conn:
        await conn.execute(
            sa.text("CREATE TABLE consumed (consumer text NOT NULL, event_id text NOT NULL, profile_id text)")
        )
    return platform_db


@pytest.fixture
async def settings(
    consumed_table: PlatformDatabase, platform_settings: ServiceSettings
) -> AsyncIterator[ServiceSettings]:
    """Topics of this test alone (the consumers read from the beginning), in the module's database."""
    mine = platform_settings.model_copy(update={"topic_prefix": unique_topic_prefix("consumer")})
    await ensure_topics(mine, partitions=3)
    yield mine
    await delete_topics(mine)


def event(profile_id: str = "p-1") -> ProfileWithdrawn:
    return ProfileWithdrawn(profile_id=profile_id, owner="alice", withdrawn_at=T0)


def envelope(profile_id: str = "p-1", **overrides: object) -> Envelope:
    env = envelope_for(event(profile_id), source="ee/test", time=T0, correlation_id="corr-1")
    if overrides:
        body = orjson.loads(encode(env)) | overrides
        return decode(orjson.dumps(body))
    return env


def raw(profile_id: str = "p-1", **overrides: object) -> bytes:
    body = orjson.loads(encode(envelope(profile_id))) | overrides
    return orjson.dumps(body)


async def record(work: UnitOfWork, delivery: Delivery) -> None:
    await work.session.execute(
        sa.text("INSERT INTO consumed VALUES (:c, :e, :p)"),
        {"c": "?", "e": delivery.envelope.id, "p": delivery.event.key()},
    )


def consumer_for(
    db: PlatformDatabase,
    settings: ServiceSettings,
    handlers: Mapping[str, Handler] | None = None,
    name: str | None = None,
    **options: object,
) -> IdempotentConsumer:
    return IdempotentConsumer(
        name or f"c-{uuid.uuid4().hex[:8]}",
        settings,
        db.sessions,
        CLOCK,
        topics=[PROFILE_TOPIC],
        handlers=handlers if handlers is not None else {"ProfileWithdrawn": record},
        retry_backoff_s=0.01,
        **options,  # type: ignore[arg-type]
    )


@asynccontextmanager
async def running(consumer: IdempotentConsumer) -> AsyncIterator[IdempotentConsumer]:
    task = asyncio.create_task(consumer.run())
    try:
        yield consumer
    finally:
        await consumer.stop()
        await task  # re-raises what run() died of


async def consumed_ids(db: PlatformDatabase) -> list[str]:
    async with db.sessions() as session:
        return list((await session.execute(sa.text("SELECT event_id FROM consumed"))).scalars())


async def stored_positions(db: PlatformDatabase, name: str) -> dict[int, int]:
    async with db.sessions() as session:
        rows = await session.execute(
            sa.select(consumer_positions.c.partition, consumer_positions.c.next_offset).where(
                consumer_positions.c.consumer == name
            )
        )
        return {p: o for p, o in rows.all()}


async def test_duplicate_delivery_is_a_no_op_and_a_restart_resumes_from_stored_positions(
    consumed_table: PlatformDatabase, settings: ServiceSettings
) -> None:
    db = consumed_table
    topic = settings.topic(PROFILE_TOPIC)
    first, second = envelope(), envelope()
    await produce(settings, topic, [encode(first), encode(first), encode(second), encode(first)], key=KEY)
    name = f"dup-{uuid.uuid4().hex[:6]}"

    async with running(consumer_for(db, settings, name=name)) as consumer:
        await wait_until(lambda: consumer.metrics.processed + consumer.metrics.duplicates >= 4)
        assert consumer.metrics.processed == 2
        assert consumer.metrics.duplicates == 2
    applied = [i for i in await consumed_ids(db) if i in (first.id, second.id)]
    assert sorted(applied) == sorted([first.id, second.id])
    assert sum((await stored_positions(db, name)).values()) == 4  # next offset after the 4 records

    # A new instance of the same consumer seeks to the stored positions: nothing is read twice.
    third = envelope()
    await produce(settings, topic, [encode(third)], key=KEY)
    async with running(consumer_for(db, settings, name=name)) as again:
        await wait_until(lambda: again.metrics.processed >= 1)
        await asyncio.sleep(0.2)
        assert again.metrics.as_dict() | {"batches": 0} == {
            "processed": 1,
            "duplicates": 0,
            "skipped_unknown": 0,
            "ignored": 0,
            "dead_lettered": 0,
            "retries": 0,
            "batches": 0,
            "failures": 0,
        }
    assert third.id in await consumed_ids(db)


async def test_garbage_goes_to_the_dlq_with_the_reason_and_the_next_message_is_processed(
    consumed_table: PlatformDatabase, settings: ServiceSettings
) -> None:
    db = consumed_table
    topic = settings.topic(PROFILE_TOPIC)
    good = envelope()
    bad_data = raw(data={"profile_id": "p-1", "owner": "alice"})  # withdrawn_at missing
    garbage = [b"this is not JSON", b'{"specversion": "1.0", "id": "x"}', bad_data, b""]
    await produce(settings, topic, [*garbage, encode(good)], key=KEY)

    async with running(consumer_for(db, settings)) as consumer:
        await wait_until(lambda: consumer.metrics.processed >= 1, message=lambda: str(consumer.metrics))
        assert consumer.metrics.dead_lettered == 4
    assert good.id in await consumed_ids(db)

    async with KafkaReader(settings, f"{topic}.dlq") as reader:
        dead = await reader.read(4)
    assert [r.value or b"" for r in dead] == garbage  # kept as it was, for a person to look at
    headers = [{k: v.decode() for k, v in r.headers} for r in dead]
    assert [h["original_offset"] for h in headers] == ["0", "1", "2", "3"]
    assert {h["original_topic"] for h in headers} == {topic}
    assert all(h["original_partition"] == str(dead[0].partition) for h in headers)
    assert headers[0]["reason"].startswith("not a CloudEvents envelope: not JSON")
    assert "missing CloudEvents attributes" in headers[1]["reason"]
    assert "does not match the catalogue event" in headers[2]["reason"]
    assert "withdrawn_at" in headers[2]["reason"]
    assert headers[2]["error"] == "ValidationError"
    assert all(r.key == KEY for r in dead)


async def test_unknown_event_types_are_skipped_counted_and_passed(
    consumed_table: PlatformDatabase, settings: ServiceSettings
) -> None:
    db = consumed_table
    topic = settings.topic(PROFILE_TOPIC)
    good = envelope()
    unknown = [
        raw(type="ee.profile.ProfileTeleported.v1"),  # a type from a newer producer
        raw(type="ee.profile.ProfileWithdrawn.v7"),  # a version newer than this build's
    ]
    await produce(settings, topic, [*unknown, encode(good)], key=KEY)
    name = f"unk-{uuid.uuid4().hex[:6]}"
    async with running(consumer_for(db, settings, name=name)) as consumer:
        await wait_until(lambda: consumer.metrics.processed >= 1)
        assert consumer.metrics.skipped_unknown == 2
        assert consumer.metrics.dead_lettered == 0
    assert sorted((await stored_positions(db, name)).values()) == [3]  # advanced past the unknown ones


async def test_a_handler_that_keeps_failing_sends_its_message_to_the_dlq_and_the_rest_apply_once(
    consumed_table: PlatformDatabase, settings: ServiceSettings
) -> None:
    db = consumed_table
    topic = settings.topic(PROFILE_TOPIC)
    attempts: dict[str, int] = {}

    async def fragile(work: UnitOfWork, delivery: Delivery) -> None:
        pid = delivery.event.key()
        attempts[pid] = attempts.get(pid, 0) + 1
        await record(work, delivery)  # written, then rolled back when the handler fails
        if pid == "poison" or (pid == "flaky" and attempts[pid] <= 2):
            raise RuntimeError(f"cannot apply {pid}")

    envelopes = [envelope("a"), envelope("poison"), envelope("flaky"), envelope("b")]
    await produce(settings, topic, [encode(e) for e in envelopes], key=KEY)
    consumer = consumer_for(db, settings, {"ProfileWithdrawn": fragile}, max_retries=3)
    async with running(consumer):
        await wait_until(
            lambda: consumer.metrics.dead_lettered >= 1 and consumer.metrics.processed >= 3,
            message=lambda: str(consumer.metrics),
        )
    # The batch failed once as a whole (at poison), then one by one: poison 3 times, flaky until its 3rd.
    assert attempts == {"a": 2, "poison": 4, "flaky": 3, "b": 1}
    assert consumer.metrics.retries == 5
    ids = await consumed_ids(db)
    assert [e.id for e in envelopes if e.id in ids] == [envelopes[0].id, envelopes[2].id, envelopes[3].id]
    assert all(ids.count(e.id) <= 1 for e in envelopes)

    async with KafkaReader(settings, f"{topic}.dlq") as reader:
        (dead,) = await reader.read(1)
    headers = {k: v.decode() for k, v in dead.headers}
    assert decode(dead.value or b"").id == envelopes[1].id
    assert "failed 3 times" in headers["reason"] and "cannot apply poison" in headers["reason"]
    assert headers["original_offset"] == "1"


async def test_events_a_handler_publishes_commit_with_the_batch_and_carry_causation(
    consumed_table: PlatformDatabase, settings: ServiceSettings
) -> None:
    db = consumed_table
    incoming = envelope("chain")

    async def react(work: UnitOfWork, delivery: Delivery) -> None:
        work.publish(event(f"{delivery.event.key()}-next"))

    await produce(settings, settings.topic(PROFILE_TOPIC), [encode(incoming)], key=KEY)
    async with running(consumer_for(db, settings, {"ProfileWithdrawn": react})) as consumer:
        await wait_until(lambda: consumer.metrics.processed >= 1)
    async with db.sessions() as session:
        payloads = (
            (await session.execute(sa.select(outbox.c.payload).where(outbox.c.key == "chain-next")))
            .scalars()
            .all()
        )
    (published,) = [decode(p) for p in payloads]
    assert published.causationid == incoming.id
    assert published.correlationid == "corr-1"


async def test_a_handler_may_not_commit_the_batch(
    consumed_table: PlatformDatabase, settings: ServiceSettings
) -> None:
    async def rogue(work: UnitOfWork, delivery: Delivery) -> None:
        await work.commit()

    await produce(settings, settings.topic(PROFILE_TOPIC), [encode(envelope())], key=KEY)
    consumer = consumer_for(consumed_table, settings, {"ProfileWithdrawn": rogue}, max_retries=1)
    async with running(consumer):
        await wait_until(lambda: consumer.metrics.dead_lettered >= 1)


async def test_positions_from_another_kafka_cluster_refuse_to_start(
    consumed_table: PlatformDatabase, settings: ServiceSettings
) -> None:
    name = f"mismatch-{uuid.uuid4().hex[:6]}"
    async with consumed_table.sessions() as session:
        await session.execute(
            sa.insert(consumer_positions).values(
                consumer=name,
                topic=settings.topic(PROFILE_TOPIC),
                partition=0,
                next_offset=42,
                cluster_id="an-older-cluster",
            )
        )
        await session.commit()
    consumer = consumer_for(consumed_table, settings, name=name)
    with pytest.raises(ClusterMismatchError) as caught:
        await asyncio.wait_for(consumer.run(), 15)
    message = str(caught.value)
    assert "an-older-cluster" in message and "refuses to start" in message
    assert f"DELETE FROM consumer_positions WHERE consumer = '{name}'" in message
    assert consumer.metrics.processed == 0


async def test_a_consumer_group_seeks_to_the_stored_positions_on_assignment(
    consumed_table: PlatformDatabase, settings: ServiceSettings
) -> None:
    db = consumed_table
    topic = settings.topic(PROFILE_TOPIC)
    name, group = f"grp-{uuid.uuid4().hex[:6]}", f"g-{uuid.uuid4().hex[:6]}"
    await produce(settings, topic, [encode(envelope()) for _ in range(3)], key=KEY)
    async with running(consumer_for(db, settings, name=name, group_id=group)) as consumer:
        # The group is a base name: it is joined under the topic prefix, like the topics.
        assert consumer.group_id == f"{settings.topic_prefix}{group}"
        await wait_until(lambda: consumer.metrics.processed >= 3, timeout=20)
    assert sum((await stored_positions(db, name)).values()) == 3

    # A restart resumes: only the new record is read.
    later = envelope()
    await produce(settings, topic, [encode(later)], key=KEY)
    async with running(consumer_for(db, settings, name=name, group_id=group)) as again:
        await wait_until(lambda: again.metrics.processed >= 1, timeout=20)
        await asyncio.sleep(0.2)
        assert again.metrics.processed == 1 and again.metrics.duplicates == 0
    assert later.id in await consumed_ids(db)

    # The database decides, not Kafka's group offsets (now at 4): with the consumer's state wiped for
    # a rebuild, the same group reads the topic again from the beginning.
    async with db.engine.begin() as conn:
        for table in ("consumer_positions", "processed_messages"):
            await conn.execute(sa.text(f"DELETE FROM {table} WHERE consumer = :c"), {"c": name})
    async with running(consumer_for(db, settings, name=name, group_id=group)) as rebuild:
        await wait_until(lambda: rebuild.metrics.processed >= 4, timeout=20)
        await asyncio.sleep(0.2)
        assert rebuild.metrics.processed == 4


async def group_offsets(settings: ServiceSettings, group: str) -> dict[int, int]:
    """Kafka's committed offsets of the (prefixed) group, per partition of the profile topic."""
    async with admin_client(settings.kafka_bootstrap_servers) as admin:
        offsets = await admin.list_consumer_group_offsets(group)
    topic = settings.topic(PROFILE_TOPIC)
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}


def slow_mirror(db: PlatformDatabase, settings: ServiceSettings, name: str) -> IdempotentConsumer:
    """A group member (group named after `name`) that mirrors into Kafka at most once an hour."""
    return consumer_for(db, settings, name=name, group_id=f"g-{name}", mirror_interval_s=3600)


async def mirrored(settings: ServiceSettings, consumer: IdempotentConsumer, expected: dict[int, int]) -> bool:
    return await group_offsets(settings, consumer.group_id or "") == expected


async def test_kafka_offsets_mirror_the_stored_positions_at_most_once_an_interval_and_on_stop(
    consumed_table: PlatformDatabase, settings: ServiceSettings
) -> None:
    db, topic, name = consumed_table, settings.topic(PROFILE_TOPIC), f"mir-{uuid.uuid4().hex[:6]}"
    consumer = slow_mirror(db, settings, name)
    await produce(settings, topic, [encode(envelope()) for _ in range(2)], key=KEY)
    async with running(consumer):
        await wait_until(lambda: consumer.metrics.processed >= 2, timeout=20)
        first = await stored_positions(db, name)
        # The first batch is mirrored at once; the next ones wait for the interval (an hour here).
        await wait_until(lambda: mirrored(settings, consumer, first), timeout=10)
        await produce(settings, topic, [encode(envelope()) for _ in range(3)], key=KEY)
        await wait_until(lambda: consumer.metrics.processed >= 5, timeout=20)
        await asyncio.sleep(0.5)
        assert await mirrored(settings, consumer, first)
    # Stopping mirrors what is left: Kafka's offsets end where the database's positions do.
    final = await stored_positions(db, name)
    assert sum(final.values()) == sum(first.values()) + 3
    assert await mirrored(settings, consumer, final)


async def test_a_revocation_mirrors_the_positions_of_the_partitions_it_takes_away(
    consumed_table: PlatformDatabase, settings: ServiceSettings
) -> None:
    db, topic, name = consumed_table, settings.topic(PROFILE_TOPIC), f"rev-{uuid.uuid4().hex[:6]}"
    first = slow_mirror(db, settings, name)
    await produce(settings, topic, [encode(envelope())], key=KEY)
    async with running(first):
        await wait_until(lambda: first.metrics.processed >= 1, timeout=20)
        await produce(settings, topic, [encode(envelope()) for _ in range(2)], key=KEY)
        await wait_until(lambda: first.metrics.processed >= 3, timeout=20)
        stored = await stored_positions(db, name)
        assert sum(stored.values()) == 3
        # A second member joins: the group rebalances and the first gives its partitions back.
        async with running(slow_mirror(db, settings, name)):
            await wait_until(lambda: mirrored(settings, first, stored), timeout=20)


async def test_losing_the_database_mid_batch_blames_no_message_and_resumes_from_the_stored_position(
    consumed_table: PlatformDatabase, settings: ServiceSettings
) -> None:
    db = consumed_table
    envelopes = [envelope(f"outage-{i}") for i in range(4)]
    killed = False

    async def kill_connection_once(work: UnitOfWork, delivery: Delivery) -> None:
        nonlocal killed
        await record(work, delivery)
        if delivery.event.key() == "outage-2" and not killed:
            killed = True  # the server drops our connection, as in a restart or failover
            await work.session.execute(sa.text("SELECT pg_terminate_backend(pg_backend_pid())"))

    await produce(settings, settings.topic(PROFILE_TOPIC), [encode(e) for e in envelopes], key=KEY)
    consumer = consumer_for(db, settings, {"ProfileWithdrawn": kill_connection_once})
    async with running(consumer):
        await wait_until(lambda: consumer.metrics.processed >= 4, message=lambda: str(consumer.metrics))
    assert killed
    assert consumer.metrics.failures == 1
    assert consumer.metrics.dead_lettered == 0 and consumer.metrics.retries == 0
    ids = await consumed_ids(db)
    assert [ids.count(e.id) for e in envelopes] == [1, 1, 1, 1]


@pytest.mark.parametrize(
    "statement",
    [
        # The driver refuses the parameter (out of int32 range) before the server sees it.
        "INSERT INTO consumed_numbers VALUES (:n)",
        # The server refuses it (SQLSTATE 22003, numeric value out of range).
        "INSERT INTO consumed_numbers SELECT CAST(CAST(:n AS bigint) AS integer)",
    ],
    ids=["driver", "server"],
)
async def test_a_value_the_database_rejects_goes_to_the_dlq_and_the_next_message_is_processed(
    consumed_table: PlatformDatabase, settings: ServiceSettings, statement: str
) -> None:
    """A well-formed event whose value PostgreSQL rejects (a data error) is the message's fault, not an
    outage: it is dead-lettered with the database's reason, and its partition carries on."""
    db = consumed_table
    async with db.engine.begin() as conn:
        await conn.execute(sa.text("CREATE TABLE IF NOT EXISTS consumed_numbers (n integer NOT NULL)"))

    async def store_number(work: UnitOfWork, delivery: Delivery) -> None:
        await work.session.execute(sa.text(statement), {"n": int(delivery.event.key())})
        await record(work, delivery)

    too_big, fine = envelope("3000000000"), envelope("42")
    topic = settings.topic(PROFILE_TOPIC)
    await produce(settings, topic, [encode(too_big), encode(fine)], key=KEY)
    consumer = consumer_for(db, settings, {"ProfileWithdrawn": store_number}, max_retries=2)
    async with running(consumer):
        await wait_until(
            lambda: consumer.metrics.processed >= 1, timeout=30, message=lambda: str(consumer.metrics)
        )
    assert consumer.metrics.dead_lettered_by_reason == {"data_rejected": 1}
    assert consumer.metrics.failures == 0  # never taken for the database being down
    assert consumer.metrics.retries == 0  # the same value would be rejected again: no retry
    assert fine.id in await consumed_ids(db)
    assert too_big.id not in await consumed_ids(db)

    async with KafkaReader(settings, f"{topic}.dlq") as reader:
        (dead,) = await reader.read(1)
    headers = {k: v.decode() for k, v in dead.headers}
    assert decode(dead.value or b"").id == too_big.id
    assert headers["reason"].startswith("the database rejected a value of ee.profile.ProfileWithdrawn")
    reason = headers["reason"]
    assert "out of" in reason and "range" in reason and "SQLSTATE 22" in reason
    assert headers["original_offset"] == "0"


async def test_a_batch_handler_gets_the_new_events_of_a_batch_at_once_and_a_bad_one_is_isolated(
    consumed_table: PlatformDatabase, settings: ServiceSettings
) -> None:
    """The platform's batch consumption: one call per batch with every new event of its types
    (duplicates left out), in the batch's transaction; a failing batch is retried event by event, so
    the bad event is dead-lettered and the others apply once."""
    db = consumed_table
    calls: list[list[str]] = []

    async def apply_all(work: UnitOfWork, deliveries: Sequence[Delivery]) -> None:
        keys = [d.event.key() for d in deliveries]
        calls.append(keys)
        if "poison" in keys:
            raise RuntimeError("cannot apply poison")
        for delivery in deliveries:
            await record(work, delivery)

    first, second, poison, third = envelope("b-1"), envelope("b-2"), envelope("poison"), envelope("b-3")
    values = [encode(e) for e in (first, second, first, poison, third)]
    await produce(settings, settings.topic(PROFILE_TOPIC), values, key=KEY)
    consumer = IdempotentConsumer(
        f"batch-{uuid.uuid4().hex[:6]}",
        settings,
        db.sessions,
        CLOCK,
        topics=[PROFILE_TOPIC],
        handlers={},
        batch_handler=apply_all,
        batch_types=["ProfileWithdrawn"],
        max_retries=1,
        retry_backoff_s=0.01,
    )
    async with running(consumer):
        await wait_until(
            lambda: consumer.metrics.processed >= 3 and consumer.metrics.dead_lettered >= 1,
            message=lambda: str(consumer.metrics),
        )
    # The whole batch at once (the duplicate of b-1 left out), then one event per call.
    assert calls[0] == ["b-1", "b-2", "poison", "b-3"]
    assert calls[1:] == [["b-1"], ["b-2"], ["poison"], ["b-3"]]
    ids = await consumed_ids(db)
    assert [ids.count(e.id) for e in (first, second, poison, third)] == [1, 1, 0, 1]
    assert consumer.metrics.duplicates == 1
    assert consumer.metrics.dead_lettered_by_reason == {"handler_failed": 1}


def test_a_type_goes_to_one_handler_only() -> None:
    with pytest.raises(ValueError, match="both a handler and the batch handler"):
        IdempotentConsumer(
            "x",
            ServiceSettings(),
            None,  # type: ignore[arg-type]
            CLOCK,
            topics=[PROFILE_TOPIC],
            handlers={"ProfileWithdrawn": record},
            batch_handler=lambda w, d: asyncio.sleep(0),
            batch_types=["ProfileWithdrawn"],
        )


async def test_records_arriving_within_the_linger_land_in_one_transaction(
    consumed_table: PlatformDatabase, settings: ServiceSettings
) -> None:
    """A batch smaller than batch_size waits for the linger: a record produced soon after the first
    is applied in the same batch (one call of the batch handler, one transaction)."""
    db = consumed_table
    calls: list[list[str]] = []

    async def apply_all(work: UnitOfWork, deliveries: Sequence[Delivery]) -> None:
        calls.append([d.event.key() for d in deliveries])
        for delivery in deliveries:
            await record(work, delivery)

    topic = settings.topic(PROFILE_TOPIC)
    consumer = IdempotentConsumer(
        f"linger-{uuid.uuid4().hex[:6]}",
        settings,
        db.sessions,
        CLOCK,
        topics=[PROFILE_TOPIC],
        handlers={},
        batch_handler=apply_all,
        batch_types=["ProfileWithdrawn"],
        linger_ms=1500,
        retry_backoff_s=0.01,
    )
    async with running(consumer):
        await consumer.wait_ready()
        await produce(settings, topic, [encode(envelope("l-1"))], key=KEY)
        await wait_until(lambda: consumer.lingering, timeout=10)
        await asyncio.sleep(0.2)
        await produce(settings, topic, [encode(envelope("l-2"))], key=KEY)
        await wait_until(
            lambda: consumer.metrics.processed >= 2, timeout=10, message=lambda: f"{consumer.metrics} {calls}"
        )
    assert calls == [["l-1", "l-2"]]
    assert consumer.metrics.batches == 1


async def test_stop_during_a_linger_returns_promptly_and_applies_the_batch_in_hand(
    consumed_table: PlatformDatabase, settings: ServiceSettings
) -> None:
    db = consumed_table
    consumer = consumer_for(db, settings, linger_ms=30_000)
    task = asyncio.create_task(consumer.run())
    try:
        await consumer.wait_ready()
        only = envelope("s-1")
        await produce(settings, settings.topic(PROFILE_TOPIC), [encode(only)], key=KEY)
        await wait_until(lambda: consumer.lingering, timeout=10)
        started = asyncio.get_running_loop().time()
        await consumer.stop()
        assert asyncio.get_running_loop().time() - started < 5  # not the 30 s linger
    finally:
        await consumer.stop()
        await task
    assert consumer.metrics.processed == 1  # the batch in hand was applied, not dropped
    assert only.id in await consumed_ids(db)


def test_the_linger_is_the_services_unless_the_consumer_is_given_one() -> None:
    def consumer(settings: ServiceSettings, linger_ms: int | None = None) -> IdempotentConsumer:
        return IdempotentConsumer(
            "x",
            settings,
            None,  # type: ignore[arg-type]
            CLOCK,
            topics=[PROFILE_TOPIC],
            handlers={"ProfileWithdrawn": record},
            linger_ms=linger_ms,
        )

    lingering = ServiceSettings(consumer_linger_ms=120)
    assert consumer(lingering)._linger_s == pytest.approx(0.120)
    assert consumer(lingering, linger_ms=0)._linger_s == 0
    assert consumer(ServiceSettings())._linger_s == 0


def test_a_negative_linger_is_refused() -> None:
    with pytest.raises(ValueError, match="linger_ms"):
        IdempotentConsumer(
            "x",
            ServiceSettings(),
            None,  # type: ignore[arg-type]
            CLOCK,
            topics=[PROFILE_TOPIC],
            handlers={"ProfileWithdrawn": record},
            linger_ms=-1,
        )
