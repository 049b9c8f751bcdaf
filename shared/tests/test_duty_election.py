"""Several processes of one service (uvicorn --workers, instances): the consumers and background jobs
run in exactly one of them, elected by a PostgreSQL advisory lock, and another takes over when that
one dies. Two runtimes on two engines stand for two processes against the same database."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from shared.clock import Clock
from shared.consumer import Delivery, IdempotentConsumer
from shared.events.catalogue import PROFILE_TOPIC, ProfileWithdrawn
from shared.leadership import advisory_key
from shared.runtime import DutyElection, ServiceRuntime
from shared.testing import PlatformDatabase, PlatformTestSettings, wait_until
from shared.uow import UnitOfWork

pytestmark = pytest.mark.infra

T0 = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)


class Process:
    """One "process": a runtime with a consumer and a job that each note who runs them."""

    def __init__(self, name: str, settings: PlatformTestSettings, log: list[tuple[str, str]]) -> None:
        self.name = name
        self.jobs_running = 0

        async def remember(work: UnitOfWork, delivery: Delivery) -> None:
            work.after_commit(lambda: log.append((self.name, delivery.event.key())))

        async def job() -> None:
            self.jobs_running += 1
            try:
                await asyncio.Event().wait()
            finally:
                self.jobs_running -= 1

        self.runtime = ServiceRuntime(
            settings,
            clock=Clock.frozen(T0),
            consumers=[
                lambda rt: IdempotentConsumer(
                    "election-test",
                    rt.settings,
                    rt.session_factory,
                    rt.clock,
                    topics=[PROFILE_TOPIC],
                    handlers={"ProfileWithdrawn": remember},
                )
            ],
            background=[job],
            elect_duties=True,
        )
        election = self.runtime.election
        assert election is not None
        election.retry_s = 0.2
        election.check_s = 0.2
        self.election: DutyElection = election

    @property
    def leads(self) -> bool:
        return self.election.leading


async def _publish(runtime: ServiceRuntime, key: str) -> None:
    async with runtime.uow() as uow:
        uow.publish(ProfileWithdrawn(profile_id=key, owner="alice", withdrawn_at=T0))
        await uow.commit()


async def _exactly_one_leads(processes: list[Process], seconds: float) -> None:
    """For `seconds`: never both leading, the job running only where the lock is held."""
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        assert sum(p.leads for p in processes) <= 1, [p.name for p in processes if p.leads]
        assert sum(p.jobs_running for p in processes) <= 1
        for p in processes:
            assert p.jobs_running == 0 or p.leads
        await asyncio.sleep(0.02)


async def test_one_process_runs_the_duties_and_another_takes_over_when_it_dies(
    platform_db: PlatformDatabase, platform_topics: PlatformTestSettings
) -> None:
    log: list[tuple[str, str]] = []
    a, b = Process("a", platform_topics, log), Process("b", platform_topics, log)
    processes = [a, b]
    await a.runtime.start()
    await b.runtime.start()
    try:
        await wait_until(lambda: a.leads or b.leads, timeout=10)
        await wait_until(lambda: sum(p.jobs_running for p in processes) == 1, timeout=10)
        await _exactly_one_leads(processes, 1.0)
        leader, follower = (a, b) if a.leads else (b, a)
        assert follower.runtime.task_states()["consumer:election-test"] == "standby"
        assert follower.runtime.task_states()["background:job"] == "standby"
        assert follower.runtime.parts_running() is True  # a follower is ready: it serves requests

        # The leader's consumer handles what is published, whichever process wrote it.
        await _publish(follower.runtime, "e-1")
        await wait_until(lambda: "e-1" in {k for _, k in log}, timeout=30)
        assert {n for n, k in log if k == "e-1"} == {leader.name}

        # The leader's lock connection dies (its process was killed, the network dropped it): the
        # server releases the lock, the leader stops its duties, and exactly one process leads again.
        async with platform_db.sessions() as session:
            killed = await session.scalar(
                sa.text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_locks "
                    "WHERE locktype = 'advisory' AND granted "
                    "AND ((classid::bigint << 32) | objid::bigint) = (:key)::bigint"
                ),
                {"key": advisory_key(f"{platform_topics.service_name}.duties")},
            )
        assert killed == 1
        await wait_until(lambda: a.election.terms + b.election.terms >= 2, timeout=10)
        await wait_until(lambda: sum(p.jobs_running for p in processes) == 1, timeout=10)
        await _exactly_one_leads(processes, 1.0)

        # The leader stops for good: the other takes over, and its consumer goes on from the
        # stored positions (nothing handled twice, nothing skipped).
        leader, follower = (a, b) if a.leads else (b, a)
        await leader.runtime.stop()
        await wait_until(lambda: follower.leads and follower.jobs_running == 1, timeout=10)
        assert follower.runtime.task_states()["consumer:election-test"] == "running"
        await _publish(follower.runtime, "e-2")
        await wait_until(lambda: "e-2" in {k for _, k in log}, timeout=30)
        assert [k for _, k in log].count("e-1") == 1
        assert {n for n, k in log if k == "e-2"} == {follower.name}
    finally:
        for p in processes:
            await p.runtime.stop()
