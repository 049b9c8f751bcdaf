"""The service runtime: relay, consumers and jobs under supervision, readiness probes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
import pytest
import sqlalchemy as sa

from shared.clock import Clock
from shared.consumer import Delivery, IdempotentConsumer
from shared.db import consumer_positions
from shared.events.catalogue import PROFILE_TOPIC, ProfileWithdrawn
from shared.runtime import ServiceRuntime
from shared.testing import PlatformDatabase, PlatformTestSettings, wait_until
from shared.uow import UnitOfWork
from shared.web import create_service_app

pytestmark = pytest.mark.infra

T0 = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)


async def test_a_runtime_relays_consumes_restarts_crashed_jobs_and_stops_cleanly(
    platform_db: PlatformDatabase, platform_topics: PlatformTestSettings
) -> None:
    settings = platform_topics
    seen: list[str] = []
    crashes = 0

    async def remember(work: UnitOfWork, delivery: Delivery) -> None:
        work.after_commit(lambda: seen.append(delivery.event.key()))

    async def flaky_job() -> None:
        nonlocal crashes
        crashes += 1
        if crashes == 1:
            raise RuntimeError("the first run crashes")
        await asyncio.Event().wait()  # then runs until cancelled

    runtime = ServiceRuntime(
        settings,
        clock=Clock.frozen(T0),
        consumers=[
            lambda rt: IdempotentConsumer(
                "runtime-test",
                rt.settings,
                rt.session_factory,
                rt.clock,
                topics=[PROFILE_TOPIC],
                handlers={"ProfileWithdrawn": remember},
            )
        ],
        background=[flaky_job],
    )
    assert await runtime.database_ready()
    assert await runtime.kafka_ready()
    await runtime.start()
    try:
        async with runtime.uow() as uow:
            uow.publish(ProfileWithdrawn(profile_id="rt-1", owner="alice", withdrawn_at=T0))
            await uow.commit()
        await wait_until(lambda: "rt-1" in seen, message=lambda: str(runtime.task_states()))
        await wait_until(lambda: crashes >= 2, timeout=5)
        assert runtime.task_states() == {
            "outbox-relay": "running",
            "event-loop-monitor": "running",
            "housekeeping": "running",
            "consumer:runtime-test": "running",
            "background:flaky_job": "running",
        }
    finally:
        await runtime.stop()
    assert set(runtime.task_states().values()) == {"stopped"}


async def test_a_cluster_mismatch_stops_that_consumer_for_good_and_says_why(
    platform_db: PlatformDatabase, platform_topics: PlatformTestSettings
) -> None:
    settings = platform_topics
    async with platform_db.sessions() as session:
        await session.execute(
            sa.insert(consumer_positions).values(
                consumer="stale",
                topic=settings.topic(PROFILE_TOPIC),
                partition=0,
                next_offset=1,
                cluster_id="gone",
            )
        )
        await session.commit()
    runtime = ServiceRuntime(settings, relay=False)
    runtime.add_consumer(
        IdempotentConsumer(
            "stale", settings, runtime.session_factory, runtime.clock, topics=[PROFILE_TOPIC], handlers={}
        )
    )
    await runtime.start()
    try:
        await wait_until(lambda: "consumer:stale" in runtime.fatal_errors, timeout=10)
        assert runtime.task_states()["consumer:stale"].startswith("failed: consumer 'stale'")
    finally:
        await runtime.stop()


async def test_readiness_is_false_quickly_when_the_dependencies_are_unreachable(
    platform_settings: PlatformTestSettings,
) -> None:
    nowhere = platform_settings.model_copy(
        update={
            "kafka_bootstrap_servers": "127.0.0.1:1",
            "database_url": "postgresql+asyncpg://ee:ee@127.0.0.1:1/nothing",
        }
    )
    runtime = ServiceRuntime(nowhere)
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert not await runtime.database_ready(timeout_s=1)
    assert not await runtime.kafka_ready(timeout_s=1)
    assert loop.time() - started < 3
    await runtime.stop()


async def readyz(runtime: ServiceRuntime) -> httpx.Response:
    app = create_service_app(runtime, [], title="t", description="t", configure_logs=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc") as client:
        return await client.get("/readyz")


async def test_readyz_is_503_while_a_consumer_is_stopped_by_a_cluster_mismatch(
    platform_db: PlatformDatabase, platform_topics: PlatformTestSettings
) -> None:
    """Database and Kafka answer, but a consumer refused to start: the service cannot do its job."""
    settings = platform_topics
    async with platform_db.sessions() as session:
        await session.execute(
            sa.insert(consumer_positions).values(
                consumer="elsewhere",
                topic=settings.topic(PROFILE_TOPIC),
                partition=0,
                next_offset=1,
                cluster_id="another-cluster",
            )
        )
        await session.commit()
    runtime = ServiceRuntime(settings, relay=False)
    for name in ("healthy", "elsewhere"):
        runtime.add_consumer(
            IdempotentConsumer(
                name, settings, runtime.session_factory, runtime.clock, topics=[PROFILE_TOPIC], handlers={}
            )
        )
    assert (await readyz(runtime)).status_code == 503  # not started: nothing consumes yet
    await runtime.start()
    try:
        await wait_until(lambda: "consumer:elsewhere" in runtime.fatal_errors, timeout=10)
        answer = await readyz(runtime)
        assert answer.status_code == 503
        body = answer.json()
        assert body["checks"] == {"database": "up", "kafka": "up", "consumers": "down"}
        assert "consumer:elsewhere is stopped" in body["detail"] and "another-cluster" in body["detail"]
        assert "healthy" not in body["detail"]
    finally:
        await runtime.stop()


async def test_readyz_is_200_when_every_consumer_runs_and_every_check_passes(
    platform_db: PlatformDatabase, platform_topics: PlatformTestSettings
) -> None:
    settings = platform_topics
    runtime = ServiceRuntime(settings, relay=False)
    consumer = runtime.add_consumer(
        IdempotentConsumer(
            "ready-one", settings, runtime.session_factory, runtime.clock, topics=[PROFILE_TOPIC], handlers={}
        )
    )
    warmed_up = False
    runtime.add_readiness_check("warm", lambda: warmed_up or "Still warming up.")
    await runtime.start()
    try:
        await consumer.wait_ready(timeout=30)
        answer = await readyz(runtime)
        assert answer.status_code == 503
        assert answer.json()["checks"] == {"database": "up", "kafka": "up", "consumers": "up", "warm": "down"}
        assert answer.json()["detail"] == "Still warming up."
        warmed_up = True
        answer = await readyz(runtime)
        assert answer.status_code == 200, answer.text
        assert answer.json()["checks"] == {"database": "up", "kafka": "up", "consumers": "up", "warm": "up"}
    finally:
        await runtime.stop()
    assert (await readyz(runtime)).status_code == 503  # stopped: its consumers no longer run
