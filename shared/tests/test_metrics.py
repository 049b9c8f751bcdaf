"""`GET /metrics` of a real runtime (Kafka + PostgreSQL): consumer counts and lag, the outbox backlog,
and the Prometheus naming conventions."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import cast

import httpx
import orjson
import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from shared.clock import Clock
from shared.consumer import Delivery, IdempotentConsumer, _fresh_highwaters
from shared.envelope import encode
from shared.events.catalogue import PROFILE_TOPIC, ProfileWithdrawn
from shared.messages import envelope_for
from shared.runtime import ServiceRuntime
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
from shared.web import create_service_app

pytestmark = pytest.mark.infra

T0 = datetime(2026, 4, 1, 8, 0, tzinfo=UTC)
KEY = b"m-1"  # one partition, in order


def withdrawn(profile_id: str) -> ProfileWithdrawn:
    return ProfileWithdrawn(profile_id=profile_id, owner="alice", withdrawn_at=T0)


def value(profile_id: str, **overrides: object) -> bytes:
    body = orjson.loads(encode(envelope_for(withdrawn(profile_id), source="ee/test", time=T0)))
    return orjson.dumps(body | overrides)


async def scrape(runtime: ServiceRuntime) -> dict[str, list[Sample]]:
    app = create_service_app(runtime, [], title="t", description="t", configure_logs=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc") as client:
        answer = await client.get("/metrics")
    assert answer.status_code == 200
    families = list(text_string_to_metric_families(answer.text))
    check_conventions(answer.text, families)
    return {family.name: family.samples for family in families}


def check_conventions(text: str, families: list[Metric]) -> None:
    """Prometheus naming: snake_case with the `ee_` namespace, `_total` only on counters, base units
    (seconds), a HELP line for each family, and no family twice."""
    names = [f.name for f in families]
    assert len(names) == len(set(names)), "a family is exposed twice"
    for family in families:
        if not family.name.startswith("ee_"):
            continue  # the client library's own (python_gc_..., process_...)
        assert re.fullmatch(r"ee_[a-z][a-z0-9_]*", family.name), family.name
        assert family.documentation, f"{family.name} has no HELP"
        if family.type == "counter":
            assert f"# TYPE {family.name}_total counter" in text or f"# TYPE {family.name} counter" in text
            assert all(s.name.startswith(family.name) for s in family.samples)
            assert all(s.name.endswith(("_total", "_created")) for s in family.samples), family.name
        else:
            assert not family.name.endswith("_total"), family.name
        assert not re.search(r"_(ms|milliseconds|minutes|hours)(_|$)", family.name), family.name


def one(samples: dict[str, list[Sample]], family: str, name: str | None = None, **labels: str) -> float:
    found = [
        s.value
        for s in samples.get(family, [])
        if (name is None or s.name == name) and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(found) == 1, f"{family} {labels}: {samples.get(family)}"
    return found[0]


@pytest.fixture
async def settings(
    platform_db: PlatformDatabase, platform_settings: PlatformTestSettings
) -> AsyncIterator[ServiceSettings]:
    mine = platform_settings.model_copy(update={"topic_prefix": unique_topic_prefix("metrics")})
    await ensure_topics(mine, partitions=1)
    yield mine
    await delete_topics(mine)


async def test_metrics_export_consumer_counts_lag_and_the_outbox_backlog(
    platform_db: PlatformDatabase, settings: ServiceSettings
) -> None:
    gate = asyncio.Event()

    async def apply(work: UnitOfWork, delivery: Delivery) -> None:
        if delivery.event.key() == "slow":
            await gate.wait()

    name = f"m-{uuid.uuid4().hex[:6]}"
    runtime = ServiceRuntime(settings, clock=Clock.frozen(T0), relay=False)  # the outbox stays unpublished
    consumer = runtime.add_consumer(
        IdempotentConsumer(
            name,
            settings,
            runtime.session_factory,
            runtime.clock,
            topics=[PROFILE_TOPIC],
            handlers={"ProfileWithdrawn": apply},
            retry_backoff_s=0.01,
        )
    )
    topic = settings.topic(PROFILE_TOPIC)
    good = value("good")
    await produce(
        settings, topic, [good, good, value("x", type="ee.profile.Teleported.v1"), b"not json"], key=KEY
    )
    async with runtime.uow() as uow:
        uow.publish(withdrawn("out-1"))
        uow.publish(withdrawn("out-2"))
        await uow.commit()
    async with platform_db.engine.begin() as conn:  # the oldest waits for an hour already
        await conn.execute(
            sa.text(
                "UPDATE outbox SET created_at = now() - interval '1 hour' "
                "WHERE id = (SELECT min(id) FROM outbox WHERE published_at IS NULL)"
            )
        )
    await runtime.start()
    try:
        await wait_until(
            lambda: consumer.metrics.dead_lettered >= 1 and consumer.metrics.processed >= 1,
            message=lambda: str(consumer.metrics),
        )
        samples = await scrape(runtime)
        labels = {"service": "platform", "consumer": name}
        assert one(samples, "ee_consumer_events_applied", **labels) == 1
        assert one(samples, "ee_consumer_duplicates_skipped", **labels) == 1
        assert one(samples, "ee_consumer_unknown_types_skipped", **labels) == 1
        assert (
            one(
                samples,
                "ee_consumer_dead_lettered",
                "ee_consumer_dead_lettered_total",
                reason="unreadable",
                **labels,
            )
            == 1
        )
        assert one(samples, "ee_consumer_running", **labels) == 1
        assert one(samples, "ee_consumer_lag_messages", topic=topic, partition="0", **labels) == 0
        # Caught up, the partition's last fetch is recent: its high-water mark is the end offset, and a
        # scrape does not wait on the broker for it (a request behind a fetch in flight: 0.5 s each).
        asked = _count_end_offset_requests(consumer)
        samples = await scrape(runtime)
        assert one(samples, "ee_consumer_lag_messages", topic=topic, partition="0", **labels) == 0
        assert asked == [], "the scrape asked the broker for end offsets it had from the last fetch"
        assert one(samples, "ee_outbox_unpublished_messages", service="platform") >= 2
        assert one(samples, "ee_outbox_oldest_unpublished_age_seconds", service="platform") >= 3600

        # Three more records while the first of them blocks its handler: 3 behind until it is let go.
        await produce(settings, topic, [value("slow"), value("next-1"), value("next-2")], key=KEY)
        await wait_until(lambda: _lag(consumer, 3), message="the lag never showed 3")
        samples = await scrape(runtime)
        assert one(samples, "ee_consumer_lag_messages", topic=topic, partition="0", **labels) == 3
        gate.set()
        await wait_until(lambda: consumer.metrics.processed >= 4, message=lambda: str(consumer.metrics))
        samples = await scrape(runtime)
        assert one(samples, "ee_consumer_lag_messages", topic=topic, partition="0", **labels) == 0
        assert one(samples, "ee_consumer_events_applied", **labels) == 4
    finally:
        gate.set()
        await runtime.stop()


async def _lag(consumer: IdempotentConsumer, expected: int) -> bool:
    return sum((await consumer.lag()).values()) == expected


def _count_end_offset_requests(consumer: IdempotentConsumer) -> list[object]:
    """The partitions of every end-offset request the consumer's Kafka client makes from now on."""
    client = consumer._consumer
    assert client is not None
    asked: list[object] = []
    ask = client.end_offsets

    async def counted(partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        asked.append(partitions)
        return await ask(partitions)

    client.end_offsets = counted
    return asked


class _Fetched:
    """What `_fresh_highwaters` reads of a Kafka consumer: the assignment and each partition's last fetch."""

    def __init__(self, fetches: dict[TopicPartition, tuple[int | None, float | None]]) -> None:
        self.fetches = fetches

    def assignment(self) -> set[TopicPartition]:
        return set(self.fetches)

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.fetches[tp][0]

    def last_poll_timestamp(self, tp: TopicPartition) -> float | None:
        return self.fetches[tp][1]


def test_only_a_recent_fetch_high_water_mark_stands_for_the_end_offset() -> None:
    now_ms = time.time() * 1000
    recent, old, never, gone = (TopicPartition("t", p) for p in range(4))
    fetched = _Fetched({recent: (40, now_ms - 1_000), old: (7, now_ms - 60_000), never: (None, None)})
    client = cast(AIOKafkaConsumer, fetched)

    assert _fresh_highwaters(client, [recent, old, never, gone], fresh_s=5.0) == {recent: 40}
    assert _fresh_highwaters(client, [recent, old, never, gone], fresh_s=float("inf")) == {recent: 40, old: 7}
