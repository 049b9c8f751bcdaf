"""No ranking singleton (issue 11): two ranking instances, real processes (uvicorn) against the real
Kafka and PostgreSQL, one consumer group and one shared database.

- they split the partitions of the profile, draws and applications topics (each scores its share and
  emits through its outbox), and both hold the whole pool (each follows the scored stream): the same
  fingerprint, and the same CRS and rank for every candidate, asked of either;
- a rules activation sent to one reaches both (`RulesActivated`), each rescoring its partitions;
- `kill -9` of one while profiles stream in: the other takes over its partitions; nothing is lost or
  scored twice (every source event claimed once, one `Ranked` per revision, the survivor's pool equals
  a fresh rebuild from the log), and the killed one, started again, holds the same pool.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

import httpx
import pytest
import sqlalchemy as sa
from ranking_app import SECRET, token
from ranking_factories import (
    DOB_394,
    DOB_416,
    DOB_432,
    NOW,
    SENIOR_MANAGER_OFFER,
    ProfileStream,
    document,
    pid,
)
from ranking_world import World, open_world
from sqlalchemy.ext.asyncio import AsyncEngine

from ranking_service.adapters.database import drop_database
from ranking_service.rebuild import rebuild, rebuild_settings
from shared import testing
from shared.clock import Clock
from shared.db import create_engine
from shared.envelope import decode
from shared.events.catalogue import RANKING_TOPIC, Ranked, RulesActivated
from shared.events.registry import REGISTRY

ROOT: Final = Path(__file__).resolve().parents[3]
SOURCE_TOPICS: Final = ("ee.profile.events", "ee.draws.events", "ee.applications.events")
DOBS: Final = (DOB_432, DOB_416, DOB_394, "1995-02-02", "1992-07-07", "1998-11-11")
LAG = re.compile(r"^ee_consumer_lag_messages\{([^}]*)\}", re.M)
LABEL = re.compile(r'(\w+)="([^"]*)"')
APPLIED = re.compile(r'^ee_consumer_events_applied_total\{[^}]*consumer="ranking"[^}]*\} (\S+)', re.M)


@dataclass
class Instance:
    """One ranking process."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill9(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill9()


class Cluster:
    def __init__(self, world: World, logs: Path) -> None:
        self.world = world
        self.logs = logs
        self.instances: dict[str, Instance] = {}
        self.http = httpx.AsyncClient(timeout=30)

    def start(self, name: str) -> Instance:
        settings = self.world.settings
        env = {k: v for k, v in os.environ.items() if not k.startswith("EE_RANKING_")}
        env.update(
            PYTHONPATH=f"{ROOT}:{ROOT / 'services' / 'ranking'}",
            EE_ENV="test",
            EE_AUTH_SECRET=SECRET,
            EE_TOPIC_PREFIX=settings.topic_prefix,
            EE_DB_SUFFIX=settings.db_suffix,
            EE_RANKING_DATABASE_URL=settings.database_url,
            EE_RANKING_DB_POOL_SIZE="4",
            EE_RANKING_RESCORE_INTERVAL_S="1",
            KAFKA_BOOTSTRAP_SERVERS=settings.kafka_bootstrap_servers,
        )
        port = testing.free_port()
        log = self.logs / f"ranking-{name}-{port}.log"
        command = [sys.executable, "-m", "uvicorn", "ranking_service.main:app", "--host", "127.0.0.1",
                   "--port", str(port), "--no-access-log"]  # fmt: skip
        with log.open("wb") as out:
            process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        instance = self.instances[name] = Instance(name, port, process, log)
        return instance

    async def ready(self, instance: Instance, timeout: float = 90) -> None:  # noqa: ASYNC109
        async def answered() -> bool:
            assert instance.process.poll() is None, instance.log.read_text()[-3000:]
            try:
                return (await self.http.get(instance.url + "/readyz")).status_code == 200
            except httpx.HTTPError:
                return False

        what = f"ranking {instance.name} ready"
        await testing.wait_until(answered, timeout=timeout, interval=0.3, message=what)

    async def get(self, instance: Instance, path: str) -> Any:
        response = await self.http.get(instance.url + path, headers=token("ops", "ops-1"))
        assert response.status_code == 200, (instance.name, path, response.text)
        return response.json()

    async def metrics(self, instance: Instance) -> str:
        return (await self.http.get(instance.url + "/metrics")).text

    async def assigned(self, instance: Instance) -> set[tuple[str, int]]:
        held = set()
        for labels in LAG.findall(await self.metrics(instance)):
            values = dict(LABEL.findall(labels))
            held.add((values["topic"], int(values["partition"])))
        return held

    async def applied(self, instance: Instance) -> float:
        found = APPLIED.findall(await self.metrics(instance))
        return float(found[0]) if found else 0.0

    async def fingerprint(self, instance: Instance) -> dict[str, Any]:
        answer: dict[str, Any] = await self.get(instance, "/v1/admin/pool/fingerprint")
        return answer


@pytest.fixture
async def world() -> AsyncIterator[World]:
    async with open_world("scaleout") as opened:
        yield opened


@pytest.fixture
async def cluster(world: World, tmp_path: Path) -> AsyncIterator[Cluster]:
    cluster = Cluster(world, tmp_path)
    try:
        yield cluster
    finally:
        for instance in cluster.instances.values():
            instance.stop()
        await cluster.http.aclose()


@pytest.fixture
async def claims(world: World) -> AsyncIterator[Claims]:
    engine = create_engine(world.settings)
    try:
        yield Claims(engine)
    finally:
        await engine.dispose()


def profiles(first: int, count: int) -> Iterator[ProfileStream]:
    for n in range(first, first + count):
        yield ProfileStream(pid(n))


def doc_of(n: int, revision: int = 0) -> dict[str, Any]:
    extra = {"job_offer": SENIOR_MANAGER_OFFER} if n % 4 == 0 else {}
    return document(DOBS[(n + revision) % len(DOBS)], **extra)


async def submit(world: World, first: int, count: int) -> dict[str, ProfileStream]:
    streams = {}
    for offset, stream in enumerate(profiles(first, count)):
        n = first + offset
        at = NOW - timedelta(days=1) + timedelta(minutes=n)
        await world.publish(stream.created(doc_of(n), at=at), stream.submitted(doc_of(n), at=at))
        streams[stream.profile_id] = stream
    return streams


async def same_pool(cluster: Cluster, size: int, timeout: float = 90) -> dict[str, Any]:  # noqa: ASYNC109
    """Wait until every running instance holds `size` candidates with one fingerprint."""
    running = [i for i in cluster.instances.values() if i.process.poll() is None]
    seen: dict[str, Any] = {}

    async def agreed() -> bool:
        answers = [await cluster.fingerprint(instance) for instance in running]
        seen["answers"] = answers
        prints = {(a["fingerprint"], a["pool_size"]) for a in answers}
        return len(prints) == 1 and answers[0]["pool_size"] == size

    await testing.wait_until(
        agreed, timeout=timeout, interval=0.3, message=lambda: f"one pool of {size}: {seen}"
    )
    return dict(seen["answers"][0])


@dataclass
class Claims:
    """Counts ranking's claimed source events (`processed_messages`), remembering the last count."""

    engine: AsyncEngine
    last: int = 0

    async def count(self) -> int:
        async with self.engine.connect() as conn:
            query = sa.text("SELECT count(*) FROM processed_messages WHERE consumer = 'ranking'")
            self.last = int((await conn.execute(query)).scalar_one())
        return self.last


async def ranked_events(world: World) -> list[tuple[Any, Any]]:
    async with testing.KafkaReader(world.settings, world.settings.topic(RANKING_TOPIC)) as reader:
        await reader.read(1, timeout=30)
        records = await reader.drain(1.5)
    events = []
    for record in records:
        envelope = decode(record.value or b"")
        events.append((envelope, REGISTRY.parse(envelope)))
    return events


async def test_two_instances_split_the_partitions_hold_the_whole_pool_and_survive_a_kill_9(
    world: World, cluster: Cluster, claims: Claims
) -> None:
    a, b = cluster.start("a"), cluster.start("b")
    await asyncio.gather(cluster.ready(a), cluster.ready(b))
    everything = {(world.settings.topic(t), p) for t in SOURCE_TOPICS for p in range(3)}

    # 1. One group: the nine partitions are split between the two, none held by both.
    held: dict[str, Any] = {}

    async def split() -> bool:
        held_a = held["a"] = await cluster.assigned(a)
        held_b = held["b"] = await cluster.assigned(b)
        return bool(held_a) and bool(held_b) and not held_a & held_b and held_a | held_b == everything

    await testing.wait_until(
        split, timeout=60, interval=0.3, message=lambda: f"the partitions split between a and b: {held}"
    )

    # 2. Both score their share, both hold the whole pool: same fingerprint, same rank everywhere.
    streams = await submit(world, 1, 48)
    await same_pool(cluster, 48)
    assert await cluster.applied(a) > 0 and await cluster.applied(b) > 0
    for profile_id in streams:
        seen_a = await cluster.get(a, f"/v1/pool/candidates/{profile_id}")
        seen_b = await cluster.get(b, f"/v1/pool/candidates/{profile_id}")
        assert (seen_a["crs"], seen_a["rank"]) == (seen_b["crs"], seen_b["rank"]), profile_id
        assert seen_a["breakdown"] == seen_b["breakdown"], profile_id

    # 3. A rules activation sent to a reaches b: both switch, the job offers count again everywhere.
    offered = pid(4)
    before = (await cluster.get(b, f"/v1/pool/candidates/{offered}"))["crs"]
    activated = await cluster.http.post(
        a.url + "/v1/admin/rules/2020-10-27/activate", headers={**token("ops"), "If-Match": '"0"'}
    )
    assert activated.status_code == 200, activated.text

    async def rescored_on_b() -> bool:
        rules = await cluster.get(b, "/v1/admin/rules")
        standing = await cluster.get(b, f"/v1/pool/candidates/{offered}")
        return bool(rules["active"] == "2020-10-27" and standing["crs"] == before + 200)

    await testing.wait_until(rescored_on_b, timeout=60, interval=0.3, message="b heard of the activation")
    await same_pool(cluster, 48)
    for instance in (a, b):
        assert (await cluster.get(instance, "/v1/admin/rules"))["active"] == "2020-10-27"

    # 4. kill -9 of b while new profiles and updates stream in: a takes over b's partitions.
    async def stream_in() -> None:
        await submit(world, 49, 24)
        for n, (profile_id, stream) in enumerate(list(streams.items())[:24]):
            await world.publish(stream.updated(doc_of(n + 1, revision=1)))
            assert profile_id == stream.profile_id

    streaming = asyncio.create_task(stream_in())
    await asyncio.sleep(0.3)
    b.kill9()
    await streaming

    async def took_over() -> bool:
        return await cluster.assigned(a) == everything

    what = "a holds every partition after b's kill"
    await testing.wait_until(took_over, timeout=90, interval=0.3, message=what)

    # Nothing lost, nothing twice: every source event claimed once (the claim commits with the
    # table's rows, so once all are claimed the table is final; the pool in memory follows the Ranked
    # stream, a relay behind it, so it is waited for, not sampled).
    published = 2 * 72 + 24

    async def all_claimed() -> bool:
        return await claims.count() >= published

    await testing.wait_until(
        all_claimed, timeout=90, interval=0.3,
        message=lambda: f"{claims.last} of {published} source events claimed",
    )  # fmt: skip
    await asyncio.sleep(1)  # a second claim of one event, were there one, would show by now
    assert await claims.count() == published

    # The table equals a rebuild from the log, and so, once it has read the last Ranked, does memory.
    try:
        rebuilt = await rebuild(world.settings, clock=Clock(), timeout_s=120)
    finally:
        await drop_database(rebuild_settings(world.settings).database_url)
    assert rebuilt.pool_size == 72
    assert rebuilt.live_fingerprint == rebuilt.fingerprint
    survivor: dict[str, Any] = {}

    async def memory_is_the_rebuild() -> bool:
        survivor.update(await cluster.fingerprint(a))
        return bool(survivor["fingerprint"] == rebuilt.fingerprint and survivor["pool_size"] == 72)

    await testing.wait_until(
        memory_is_the_rebuild, timeout=30, interval=0.3,
        message=lambda: f"a's pool {survivor} never equalled the rebuild's {rebuilt.fingerprint}",
    )  # fmt: skip

    # One Ranked per revision, in order, the last of each being what a shows.
    events = await ranked_events(world)
    by_id = {envelope.id: (envelope, event) for envelope, event in events}  # the relay may resend one
    revisions: dict[str, list[int]] = defaultdict(list)
    last_crs: dict[str, int] = {}
    in_order = sorted(by_id.values(), key=lambda pair: (pair[0].subject or "", pair[0].aggregateversion or 0))
    for envelope, event in in_order:
        if isinstance(event, Ranked):
            revisions[event.profile_id].append(envelope.aggregateversion or 0)
            last_crs[event.profile_id] = event.crs
    assert all(r == sorted(set(r)) for r in revisions.values()), revisions
    assert len(revisions) == 72
    assert sum(isinstance(e, RulesActivated) for _, e in by_id.values()) == 1
    for profile_id, crs in last_crs.items():
        assert (await cluster.get(a, f"/v1/pool/candidates/{profile_id}"))["crs"] == crs, profile_id

    # 5. b started again joins the group and holds the same pool.
    b = cluster.start("b")
    await cluster.ready(b)
    await same_pool(cluster, 72)
    await testing.wait_until(split, timeout=90, interval=0.3, message=lambda: f"split again: {held}")
