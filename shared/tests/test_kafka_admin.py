"""shared.kafka_admin against the real local broker (`make infra` or `make test` starts it)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaProducer

from shared import kafka_admin
from shared.kafka_admin import EVENT_TOPICS, admin_client, all_topic_names, topic_name

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or kafka_admin.DEFAULT_BOOTSTRAP


def test_topic_names_carry_the_prefix_and_a_dlq_twin() -> None:
    assert topic_name("ee.draws.events", "t1.") == "t1.ee.draws.events"
    assert topic_name("ee.draws.events") == "ee.draws.events"
    names = all_topic_names("p.")
    count = len(EVENT_TOPICS)
    assert names[:count] == [f"p.{t}" for t in EVENT_TOPICS]
    assert names[count:] == [f"p.{t}.dlq" for t in EVENT_TOPICS]


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    """A prefix no other test uses; its topics are deleted afterwards."""
    if not await kafka_admin.kafka_ready(BOOTSTRAP, timeout=10):
        pytest.fail(f"no Kafka broker answers at {BOOTSTRAP}: start it with `make infra`")
    value = f"{os.environ.get('EE_TOPIC_PREFIX', '')}kadmin{uuid.uuid4().hex[:8]}."
    yield value
    await kafka_admin.delete_topics_with_prefix(BOOTSTRAP, value)


@pytest.mark.infra
async def test_ensure_topics_creates_every_topic_forever_and_is_idempotent(prefix: str) -> None:
    expected = all_topic_names(prefix)
    assert len(expected) == 2 * len(EVENT_TOPICS)

    created = await kafka_admin.ensure_topics(BOOTSTRAP, prefix, partitions=3)

    assert sorted(created) == sorted(expected)
    assert set(expected) <= set(await kafka_admin.list_topics(BOOTSTRAP))
    configs = await kafka_admin.topic_configs(BOOTSTRAP, expected, ["retention.ms"])
    assert {name: c["retention.ms"] for name, c in configs.items()} == dict.fromkeys(expected, "-1")
    async with admin_client(BOOTSTRAP) as client:
        described = await client.describe_topics(expected)
    assert {t["topic"]: len(t["partitions"]) for t in described} == dict.fromkeys(expected, 3)

    # A second call (even asking for another partition count) creates and changes nothing.
    assert await kafka_admin.ensure_topics(BOOTSTRAP, prefix, partitions=6) == []
    async with admin_client(BOOTSTRAP) as client:
        described = await client.describe_topics(expected)
    assert {t["topic"]: len(t["partitions"]) for t in described} == dict.fromkeys(expected, 3)
    configs = await kafka_admin.topic_configs(BOOTSTRAP, expected, ["retention.ms"])
    assert all(c["retention.ms"] == "-1" for c in configs.values())


@pytest.mark.infra
async def test_ensure_topics_puts_back_infinite_retention(prefix: str) -> None:
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    await kafka_admin.ensure_topics(BOOTSTRAP, prefix, partitions=1)
    victim = topic_name("ee.ranking.events", prefix)
    async with admin_client(BOOTSTRAP) as client:
        await client.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, victim, {"retention.ms": "60000"})]
        )
    # The broker applies a config change asynchronously (KRaft metadata): wait until the drift is
    # visible, or ensure_topics would read the old value and the test would race the broker.
    await _wait_for_retention(victim, "60000")

    assert await kafka_admin.ensure_topics(BOOTSTRAP, prefix, partitions=1) == []

    # Likewise the restored value shows up asynchronously; it must show up.
    await _wait_for_retention(victim, "-1")


@pytest.mark.infra
async def test_cluster_id_is_stable(prefix: str) -> None:
    first = await kafka_admin.cluster_id(BOOTSTRAP)
    assert first
    assert await kafka_admin.cluster_id(BOOTSTRAP) == first


@pytest.mark.infra
async def test_log_offsets_gives_each_partitions_beginning_and_end_and_nothing_for_a_missing_topic(
    prefix: str,
) -> None:
    """What the ranking rebuild replays up to, and what the bench stores as caught-up positions."""
    await kafka_admin.ensure_topics(BOOTSTRAP, prefix, partitions=3)
    topic = topic_name("ee.draws.events", prefix)
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP)
    await producer.start()
    try:
        for value, partition in ((b"a", 1), (b"b", 1), (b"c", 2)):
            await producer.send_and_wait(topic, value, partition=partition)
    finally:
        await producer.stop()
    missing = topic_name("ee.no-such-topic", prefix)
    offsets = await kafka_admin.log_offsets(BOOTSTRAP, [topic, missing])
    assert offsets == [(topic, 0, 0, 0), (topic, 1, 0, 2), (topic, 2, 0, 1)]
    assert await kafka_admin.log_offsets(BOOTSTRAP, [missing]) == []


async def test_kafka_ready_gives_up_on_a_closed_port() -> None:
    assert await kafka_admin.kafka_ready("127.0.0.1:1", timeout=0.5) is False


async def _wait_for_retention(topic: str, value: str, timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        try:
            configs = await kafka_admin.topic_configs(BOOTSTRAP, [topic], ["retention.ms"])
        except kafka_admin.KafkaAdminError:
            configs = {}  # a topic created a moment ago may not be known to every request yet
        if configs.get(topic, {}).get("retention.ms") == value:
            return
        assert asyncio.get_running_loop().time() < deadline, f"{topic} never showed retention.ms={value}"
        await asyncio.sleep(0.05)
