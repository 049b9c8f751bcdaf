"""Faults end to end (issue 7): nothing lost, nothing applied twice, clean refusals, recovery.

Profile updates stream in through the profile API (each writer owns its profiles and sends every
update with `If-Match`; after an error it reads the profile to learn whether the update landed, and
sends it again only if not), while:

1. each service in turn is killed with SIGKILL and started again (`services.sh start <name>`) during
   2,000 updates; afterwards every accepted update is on the topic exactly once and in order, the
   ranking projection holds each profile's last update, its `Ranked` events are consistent, and the
   live pool's fingerprint equals a fresh rebuild from the log;
2. the Kafka broker is stopped for 20 s: every service reports not ready (503) meanwhile, writes are
   either accepted into the outbox (and on Kafka afterwards) or refused with 503 problem+json (and
   then not applied: never half-accepted), and everything catches up;
3. PostgreSQL is restarted: requests fail with 503 problem+json (never a 500) and recover.

Kafka: the module runs against a broker it may stop. When this checkout started the shared broker
(CI's fresh clone), that one; otherwise (the broker belongs to another checkout, or is remote) a private
single-node broker of its own (`e2e_harness.fault_broker`: port base + 1092, 19092 by default, data in
`.local/e2e-kafka`, started and stopped by `deploy/local/kafka.sh` by its pid), so the outage test never
skips and never stops anybody else's broker. PostgreSQL: a cluster of the module's own as well
(`e2e_harness.private_postgres`: Debian's `e2e<port>` cluster on port base + 1432, 19432 by default,
created by `deploy/local/postgres.sh` and stopped at the end), so test 3 restarts only that server, never
the shared one on 5432. The module still runs last, and always starts its server again in a `finally`.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import httpx
import orjson
import pytest
from e2e_documents import step_of, variant, varied_documents
from e2e_harness import (
    DB_SUFFIX,
    KAFKA_SH,
    POSTGRES_SH,
    SECRET,
    SERVICES,
    Broker,
    LogReport,
    World,
    check_log,
    consumers_behind,
    end_offsets,
    fault_broker,
    is_problem,
    poll,
    private_postgres,
    read_log,
    report_figures,
    running_world,
    script,
)

from ranking_service.adapters.database import drop_database
from ranking_service.rebuild import rebuild, rebuild_settings
from ranking_service.settings import RankingSettings
from shared.clock import Clock
from shared.events.catalogue import APPLICATIONS_TOPIC, DRAWS_TOPIC, PROFILE_TOPIC
from shared.kafka_admin import kafka_ready

pytestmark = pytest.mark.infra

PARTNER = ("partner-faults", "partner")
OPS = ("ops-faults", "ops")
PROFILES = 40
KILL_UPDATES = 2000
WRITERS = 8
KAFKA_OUTAGE_S = 20.0
CONSUMED = (PROFILE_TOPIC, DRAWS_TOPIC, APPLICATIONS_TOPIC)


# --- the load -----------------------------------------------------------------------------------------


@dataclass
class Tracked:
    profile_id: str
    document: dict[str, Any]
    version: int
    steps: list[int] = field(default_factory=list)  # accepted updates, in order

    @property
    def next_step(self) -> int:
        return (self.steps[-1] if self.steps else 0) + 1


@dataclass
class Load:
    """Profile updates through the API, and what became of each."""

    world: World
    profiles: list[Tracked]
    phase: str = "setup"
    started_updates: int = 0
    accepted: int = 0
    confirmed_after_error: int = 0  # unclear answer (connection lost, 503): a read showed it landed
    statuses: Counter[str] = field(default_factory=Counter)
    transport_errors: Counter[str] = field(default_factory=Counter)
    not_problem_json: list[str] = field(default_factory=list)
    half_accepted: list[str] = field(default_factory=list)  # answered 503, yet applied
    accepted_at: list[tuple[float, str]] = field(default_factory=list)

    def url(self, tracked: Tracked) -> str:
        return f"{self.world.url('profile')}/v1/profiles/{tracked.profile_id}"

    async def read(self, tracked: Tracked) -> dict[str, Any]:
        """The profile as the service has it now (retried while the service or a dependency is down)."""
        deadline = time.monotonic() + 120
        while True:
            try:
                response = await self.world.client.get(
                    self.url(tracked), headers=self.world.auth(*PARTNER), timeout=10
                )
                if response.status_code == 200:
                    body: dict[str, Any] = response.json()
                    return body
                self.statuses[f"{self.phase}:GET {response.status_code}"] += 1
            except httpx.TransportError as exc:
                self.transport_errors[f"{self.phase}:GET {type(exc).__name__}"] += 1
            if time.monotonic() > deadline:
                raise AssertionError(f"profile {tracked.profile_id} unreadable for 120 s")
            await asyncio.sleep(0.25)

    async def update(self, tracked: Tracked) -> None:
        """One update (the next step), until it has landed exactly once."""
        step = tracked.next_step
        body = variant(tracked.document, step)
        while True:
            response: httpx.Response | None = None
            try:
                response = await self.world.client.put(
                    self.url(tracked), json=body, timeout=15,
                    headers={**self.world.auth(*PARTNER), "If-Match": f'"{tracked.version}"'},
                )  # fmt: skip
            except httpx.TransportError as exc:
                self.transport_errors[f"{self.phase}:PUT {type(exc).__name__}"] += 1
            if response is not None:
                self.statuses[f"{self.phase}:PUT {response.status_code}"] += 1
                if response.status_code == 200:
                    tracked.version = int(response.json()["version"])
                    self._landed(tracked, step)
                    return
                if not is_problem(response):
                    self.not_problem_json.append(f"{response.status_code} {response.text[:200]}")
                await asyncio.sleep(0.2)
            else:
                await asyncio.sleep(0.3)
            current = await self.read(tracked)
            tracked.version = int(current["version"])
            if step_of(current["document"]) == step:
                if response is not None and response.status_code == 503:
                    self.half_accepted.append(f"{tracked.profile_id} step {step}: 503 yet applied")
                self.confirmed_after_error += 1
                self._landed(tracked, step)
                return

    def _landed(self, tracked: Tracked, step: int) -> None:
        tracked.steps.append(step)
        self.accepted += 1
        self.accepted_at.append((time.monotonic(), self.phase))

    async def run(self, *, total: int | None = None, stop: asyncio.Event | None = None) -> None:
        """`WRITERS` writers, each owning every WRITERS-th profile, until `total` updates or `stop`."""
        limit = self.started_updates + total if total is not None else None

        async def writer(index: int) -> None:
            mine = self.profiles[index::WRITERS]
            turn = 0
            while (limit is None or self.started_updates < limit) and (stop is None or not stop.is_set()):
                self.started_updates += 1
                await self.update(mine[turn % len(mine)])
                turn += 1

        await asyncio.gather(*(writer(i) for i in range(WRITERS)))


# --- fixtures -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def broker() -> AsyncIterator[Broker]:
    async with fault_broker() as running:
        yield running


@pytest.fixture(scope="module")
async def postgres() -> AsyncIterator[dict[str, str]]:
    async with private_postgres() as env:
        yield env


@pytest.fixture(scope="module")
async def world(
    pytestconfig: pytest.Config, broker: Broker, postgres: dict[str, str]
) -> AsyncIterator[World]:
    async with running_world("faults", broker.bootstrap, postgres) as running:
        running.record("broker", {"bootstrap": broker.bootstrap, "private": broker.private})
        running.record("postgres", {"port": running.pg_port, "cluster": postgres["EE_PG_CLUSTER"]})
        try:
            yield running
        finally:
            report_figures(pytestconfig, "faults", running.figures)


@pytest.fixture(scope="module")
async def load(world: World) -> Load:
    today = await world.today("profile")
    tracked = []
    for document in varied_documents(PROFILES, today, seed=23):
        created = await world.call("profile", "POST", "/v1/profiles", as_=PARTNER, json_body=document)
        assert created.status_code == 201, created.text
        submitted = await world.call(
            "profile",
            "POST",
            f"/v1/profiles/{created.json()['id']}/submit",
            as_=PARTNER,
            headers={"If-Match": created.headers["ETag"]},
        )
        assert submitted.status_code == 200, submitted.text
        tracked.append(Tracked(created.json()["id"], document, int(submitted.json()["version"])))
    return Load(world, tracked)


# --- settling and checking ------------------------------------------------------------------------------


async def settled(world: World, timeout: float = 120) -> float:  # noqa: ASYNC109
    """Wait until every service is ready, every outbox is empty and every consumer has stored a
    position at the end of each partition it reads; the seconds it took."""
    started = time.monotonic()
    await world.wait_ready(timeout=timeout)

    async def outboxes_empty() -> bool:
        return not any((await world.unpublished()).values())

    await poll(outboxes_empty, timeout, "every outbox published", interval=0.25)

    async def consumers_at_the_end() -> bool:
        ends = await end_offsets((world.topic(t) for t in CONSUMED), world.bootstrap)
        return not await consumers_behind(world.fetch, SERVICES, ends)

    await poll(consumers_at_the_end, timeout, "every consumer at the end of its partitions", interval=0.25)
    # Ranking may still publish what the last batch caused.
    await poll(outboxes_empty, timeout, "every outbox published again", interval=0.25)
    return time.monotonic() - started


def ranking_settings(world: World) -> RankingSettings:
    return RankingSettings(
        env="test", auth_secret=SECRET, topic_prefix=world.prefix, db_suffix=DB_SUFFIX,
        database_url=f"postgresql+asyncpg://ee:ee@127.0.0.1:{world.pg_port}/ranking{DB_SUFFIX}",
        kafka_bootstrap_servers=world.bootstrap, replica=False,
    )  # fmt: skip


async def check_nothing_lost_or_doubled(world: World, load: Load, label: str) -> LogReport:
    """Every accepted update once on the topic, in order; ranking holds each profile's last one; its
    `Ranked` events are consistent; the whole log is valid and ordered."""
    stored = await world.fetch(
        "profile", "SELECT count(*) AS n FROM event_store WHERE type LIKE '%.ProfileUpdated.%'"
    )
    expected_updates = int(stored[0]["n"])

    async def whole_log() -> LogReport | None:
        report = check_log(await read_log(world), world.prefix)
        found = report.by_type["ProfileUpdated"]
        if found != expected_updates:
            debug = Counter(
                f"{e.record.topic.removeprefix(world.prefix)}:{e.record.partition}" for e in report.events
            )
            print(f"{label}: {found} ProfileUpdated on Kafka, {expected_updates} stored; records {debug}")
            return None
        return report

    report = await poll(whole_log, 60, f"{label}: every stored ProfileUpdated on Kafka", interval=1.0)
    assert not report.problems(), report.problems()
    seen: set[str] = set()
    updates: dict[str, list[int]] = {t.profile_id: [] for t in load.profiles}
    ranked: dict[str, list[tuple[int, int]]] = {t.profile_id: [] for t in load.profiles}
    for event in sorted(report.events, key=lambda e: (e.record.topic, e.record.partition, e.record.offset)):
        if event.envelope.id in seen:
            continue  # a republished record (at-least-once); consumers drop it by its id
        seen.add(event.envelope.id)
        key = event.key or ""
        if event.name == "ProfileUpdated" and key in updates:
            updates[key].append(step_of(event.data["document"]))
        elif event.name == "Ranked" and key in ranked:
            ranked[key].append((int(event.envelope.aggregateversion or 0), int(event.data["crs"])))

    query = "SELECT profile_id, version, document, crs FROM ranking_profiles WHERE profile_id = ANY($1)"
    rows = await world.fetch("ranking", query, [t.profile_id for t in load.profiles])
    projection = {row["profile_id"]: row for row in rows}
    problems = []
    for tracked in load.profiles:
        pid = tracked.profile_id
        if updates[pid] != tracked.steps:
            problems.append(f"{pid}: accepted {tracked.steps[-8:]}, on the topic {updates[pid][-8:]}")
        row = projection.get(pid)
        document = orjson.loads(row["document"]) if row is not None else {}
        if row is None or row["version"] != tracked.version or step_of(document) != tracked.steps[-1]:
            problems.append(f"{pid}: ranking holds version {row and row['version']} vs {tracked.version}")
        revisions = [revision for revision, _ in ranked[pid]]
        if revisions != sorted(set(revisions)):
            problems.append(f"{pid}: Ranked revisions {revisions}")
        if row is not None and ranked[pid] and ranked[pid][-1][1] != row["crs"]:
            problems.append(f"{pid}: last Ranked {ranked[pid][-1]} but ranking holds {row['crs']}")
    assert not problems, f"{label}: {len(problems)} problems, e.g. {problems[:5]}"
    return report


async def fingerprints(world: World) -> dict[str, Any]:
    """The live pool's fingerprint (memory and table) and a fresh rebuild's, from the whole log."""
    live = await world.call("ranking", "GET", "/v1/admin/pool/fingerprint", as_=OPS)
    assert live.status_code == 200, live.text
    settings = ranking_settings(world)
    started = time.monotonic()
    try:
        rebuilt = await rebuild(settings, clock=Clock(), timeout_s=120)
    finally:
        await drop_database(rebuild_settings(settings).database_url)
    return {
        "memory": live.json()["fingerprint"],
        "table": rebuilt.live_fingerprint,
        "rebuilt": rebuilt.fingerprint,
        "pool_size": rebuilt.pool_size,
        "rebuild_events": rebuilt.events,
        "rebuild_s": round(time.monotonic() - started, 2),
    }


# --- 1. kill -9 -----------------------------------------------------------------------------------------


async def test_kill_9_each_service_during_2000_updates_loses_nothing_and_the_pool_equals_a_rebuild(
    world: World, load: Load
) -> None:
    load.phase = "kill"
    recovery: dict[str, float] = {}
    started = time.monotonic()

    async def chaos() -> None:
        for index, service in enumerate(SERVICES):
            threshold = (index + 1) * KILL_UPDATES // (len(SERVICES) + 1)
            await poll(partial(_at_least, load, threshold), 120, f"{threshold} updates", interval=0.05)
            killed_at = time.monotonic()
            await world.kill9(service)
            await world.start(service)  # migrations, uvicorn, waits for /readyz = 200
            recovery[service] = round(time.monotonic() - killed_at, 2)

    await asyncio.gather(load.run(total=KILL_UPDATES), chaos())
    streamed = time.monotonic() - started
    settle = await settled(world)
    report = await check_nothing_lost_or_doubled(world, load, "after kill -9")
    prints = await fingerprints(world)
    world.record(
        "kill_9",
        {
            "updates_sent": KILL_UPDATES,
            "updates_accepted": load.accepted,
            "confirmed_after_lost_answer": load.confirmed_after_error,
            "profile_updated_found": sum(len(t.steps) for t in load.profiles),
            "records_on_kafka": report.records,
            "duplicate_records": report.duplicates,
            "restart_to_ready_s": recovery,
            "stream_s": round(streamed, 2),
            "settle_s": round(settle, 2),
            "statuses": dict(load.statuses),
            "transport_errors": dict(load.transport_errors),
            "fingerprints": prints,
        },
    )
    assert load.accepted == KILL_UPDATES == load.started_updates
    assert not load.not_problem_json, load.not_problem_json[:3]
    assert not [s for s in load.statuses if s.endswith((" 500", " 502", " 504"))], load.statuses
    assert prints["memory"] == prints["table"] == prints["rebuilt"], prints
    assert prints["pool_size"] == PROFILES


async def _at_least(load: Load, count: int) -> bool:
    return load.accepted >= count


# --- 2. Kafka down ---------------------------------------------------------------------------------------


async def more_writes(load: Load, count: int, timeout: float, what: str) -> None:  # noqa: ASYNC109
    await poll(partial(_at_least, load, load.accepted + count), timeout, what)


async def stop_writers(stop: asyncio.Event, writers: asyncio.Task[None]) -> None:
    stop.set()
    try:
        await asyncio.wait_for(writers, 180)
    except TimeoutError:
        writers.cancel()
        raise


async def test_kafka_down_20s_services_not_ready_writes_in_outbox_or_503_and_all_catches_up(
    world: World, load: Load, broker: Broker
) -> None:
    load.phase = "kafka"
    stop = asyncio.Event()
    writers = asyncio.create_task(load.run(stop=stop))
    figures: dict[str, Any] = {}
    try:
        await more_writes(load, 50, 30, "steady load before the outage")
        began = time.monotonic()
        try:
            await script(KAFKA_SH, "stop", env=broker.env, limit_s=120)
            assert not await kafka_ready(broker.bootstrap, timeout=1), (
                f"kafka.sh stop left the broker at {broker.bootstrap} running"
            )
            stopped = time.monotonic()
            figures["broker_stop_s"] = round(stopped - began, 2)
            accepted_before = load.accepted

            async def nobody_ready() -> bool:
                codes = await asyncio.gather(*(world.readyz(s) for s in SERVICES))
                return all(code == 503 for code in codes)

            await poll(nobody_ready, 15, "every service to report not ready")
            figures["all_not_ready_after_s"] = round(time.monotonic() - stopped, 2)
            outbox_peak, probes = 0, Counter[int]()
            while time.monotonic() - stopped < KAFKA_OUTAGE_S:
                outbox_peak = max(outbox_peak, (await world.unpublished())["profile"])
                probes.update(await asyncio.gather(*(world.readyz(s) for s in SERVICES)))
                await asyncio.sleep(1.0)
            figures["readyz_during_outage"] = {str(code): n for code, n in sorted(probes.items())}
            assert not probes[200], f"a service reported ready while Kafka was down: {probes}"
            figures["accepted_during_outage"] = load.accepted - accepted_before
            figures["profile_outbox_peak"] = outbox_peak
        finally:
            restart_began = time.monotonic()
            await script(KAFKA_SH, "start", env=broker.env, limit_s=180)
            figures["broker_start_s"] = round(time.monotonic() - restart_began, 2)
        figures["ready_again_s"] = round(await world.wait_ready(timeout=120) + figures["broker_start_s"], 2)
        await more_writes(load, 50, 60, "writes flowing again")
    finally:
        await stop_writers(stop, writers)
    figures["caught_up_s"] = round(time.monotonic() - restart_began + await settled(world), 2)
    report = await check_nothing_lost_or_doubled(world, load, "after the Kafka outage")
    statuses = {k: v for k, v in load.statuses.items() if k.startswith("kafka:")}
    figures.update(
        statuses=statuses,
        transport_errors={k: v for k, v in load.transport_errors.items() if k.startswith("kafka:")},
        half_accepted=len(load.half_accepted),
        duplicate_records=report.duplicates,
        records_on_kafka=report.records,
    )
    world.record("kafka_outage", figures)
    assert not load.half_accepted, load.half_accepted[:3]
    assert not load.not_problem_json, load.not_problem_json[:3]
    assert set(statuses) <= {"kafka:PUT 200", "kafka:PUT 503", "kafka:GET 503"}, statuses
    # Writes went somewhere: into the outbox (then Kafka) or refused.
    assert figures["accepted_during_outage"] > 0 or statuses.get("kafka:PUT 503"), figures
    if figures["accepted_during_outage"]:
        assert figures["profile_outbox_peak"] > 0, figures


# --- 3. PostgreSQL restarted -------------------------------------------------------------------------------


async def test_postgres_restart_during_load_fails_cleanly_with_503_and_recovers(
    world: World, load: Load
) -> None:
    load.phase = "postgres"
    stop = asyncio.Event()
    writers = asyncio.create_task(load.run(stop=stop))
    figures: dict[str, Any] = {}
    try:
        await more_writes(load, 50, 30, "steady load before the restart")
        began = time.monotonic()
        try:
            await script(POSTGRES_SH, "restart", env=world.env, limit_s=120)
        finally:
            await script(POSTGRES_SH, "start", env=world.env, limit_s=120)
        figures["restart_s"] = round(time.monotonic() - began, 2)
        figures["ready_again_s"] = round(await world.wait_ready(timeout=120) + figures["restart_s"], 2)
        await more_writes(load, 50, 60, "writes flowing again")
        figures["writes_again_s"] = round(time.monotonic() - began, 2)
    finally:
        await stop_writers(stop, writers)
    settle = await settled(world)
    report = await check_nothing_lost_or_doubled(world, load, "after the PostgreSQL restart")
    statuses = {k: v for k, v in load.statuses.items() if k.startswith("postgres:")}
    figures.update(
        statuses=statuses,
        transport_errors={k: v for k, v in load.transport_errors.items() if k.startswith("postgres:")},
        settle_s=round(settle, 2),
        duplicate_records=report.duplicates,
    )
    world.record("postgres_restart", figures)
    assert not load.not_problem_json, load.not_problem_json[:3]
    assert set(statuses) <= {"postgres:PUT 200", "postgres:PUT 503", "postgres:GET 503"}, statuses

    prints = await fingerprints(world)
    world.record(
        "totals",
        {
            "updates_accepted": load.accepted,
            "profile_updated_found": sum(len(t.steps) for t in load.profiles),
            "records_on_kafka": report.records,
            "duplicate_records": report.duplicates,
            "events_by_type": dict(sorted(report.by_type.items())),
            "fingerprints": prints,
        },
    )
    assert prints["memory"] == prints["table"] == prints["rebuilt"], prints
