"""The four services as `make up` runs them, isolated for the end-to-end tests, and what the tests need.

`running_world(label)` (an async context manager) gives a `World`:

- databases `<service>_e2e`, dropped and created again (`deploy/local/postgres.sh dropdbs/createdbs _e2e`);
- topics under a fresh prefix below the run's (`<EE_TOPIC_PREFIX>e2e<label><hex>.`), deleted afterwards
  unless `EE_KEEP_TEST_TOPICS` is set;
- the four services started by `deploy/local/services.sh start` on ports 18001..18004 (`EE_E2E_PORT_BASE`
  moves them), pids and logs under `.local/e2e/`, `EE_ENV=test`, draws finding ranking through
  `EE_DRAWS_RANKING_URL`; stopped by `services.sh stop` at the end, whatever happened;
- an HTTP client whose every request carries an `X-Correlation-Id` the test can look for in the events;
- `read_log()`: every record of the world's event topics, and `check_log()`: the envelope, catalogue,
  key, order and duplicate checks of a whole log.

One world at a time on this machine: a file lock under `.local/e2e/` serialises two test runs.
Figures (events sent, found, duplicates, recovery times) go to `.local/e2e-figures.json` and to the
terminal (`report_figures`).
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import signal
import subprocess
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Final, TypeAlias, TypeVar

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from shared import kafka_admin
from shared.auth import mint_token
from shared.envelope import Envelope, EnvelopeError, decode
from shared.events.catalogue import CATALOGUE, EVENT_TOPICS
from shared.events.registry import REGISTRY
from shared.gateway import load_table
from shared.testing import run_prefix

ROOT: Final = Path(__file__).resolve().parents[1]
LOCAL: Final = ROOT / ".local"
RUN_DIR: Final = LOCAL / "e2e"
FIGURES_FILE: Final = LOCAL / "e2e-figures.json"
SERVICES_SH: Final = ROOT / "deploy/local/services.sh"
POSTGRES_SH: Final = ROOT / "deploy/local/postgres.sh"
KAFKA_SH: Final = ROOT / "deploy/local/kafka.sh"
# Every process `services.sh` starts (deploy/services.conf), with its port offset; SERVICES are those
# that own a database (and so a clock, an outbox and consumers): not the console, which only reads them.
PORT_OFFSETS: Final = {entry.name: entry.offset for entry in load_table()}
SERVICES: Final = tuple(name for name in PORT_OFFSETS if (ROOT / "services" / name / "alembic.ini").exists())
SECRET: Final = "e2e-" + "s3cret-" * 6
PROBLEM_JSON: Final = "application/problem+json"
LOCK_WAIT_S: Final = 900.0
BOOTSTRAP: Final = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or "127.0.0.1:9092"
PG_PORT: Final = 5432

T = TypeVar("T")
Record: TypeAlias = "ConsumerRecord[bytes, bytes]"


def port_base() -> int:
    return int(os.environ.get("EE_E2E_PORT_BASE") or 18000)


# Databases are machine-wide, like ports: a run on another port base (another checkout's CI, say) gets
# its own (`_e2e28000`), so two end-to-end runs never drop each other's databases.
# `EE_E2E_DB_SUFFIX` names them outright.
DB_SUFFIX: Final = os.environ.get("EE_E2E_DB_SUFFIX") or (
    "_e2e" if port_base() == 18000 else f"_e2e{port_base()}"
)


def new_correlation(purpose: str) -> str:
    return f"e2e-{purpose}-{uuid.uuid4().hex[:12]}"


def run_script(*args: str | Path, env: Mapping[str, str] | None = None, timeout: float = 120) -> str:
    """Run one of deploy/local's scripts; raise with its output when it fails."""
    done = subprocess.run(
        [str(a) for a in args], cwd=ROOT, env=dict(env) if env is not None else None, capture_output=True,
        text=True, timeout=timeout, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, args))} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        )
    return done.stdout + done.stderr


async def script(*args: str | Path, env: Mapping[str, str] | None = None, limit_s: float = 120) -> str:
    return await asyncio.to_thread(run_script, *args, env=env, timeout=limit_s)


async def poll(
    probe: Callable[[], Awaitable[T | None]],
    timeout: float,  # noqa: ASYNC109 - a deadline is the point
    what: str,
    interval: float = 0.2,
) -> T:
    """Call `probe` until it returns something other than None (or False); fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = await probe()
        except (httpx.TransportError, AssertionError) as exc:
            last = exc
            result = None
        else:
            result = last
        if result is not None and result is not False:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not after {timeout:g}s (last: {last!r})")
        await asyncio.sleep(interval)


# --- the world ----------------------------------------------------------------------------------


@dataclass
class Sent:
    """One request the test sent, by correlation id: what it was, and the answer's status."""

    correlation: str
    purpose: str
    status: int
    subject: str | None = None


@dataclass
class World:
    label: str
    prefix: str
    env: dict[str, str]
    client: httpx.AsyncClient
    bootstrap: str = BOOTSTRAP  # the Kafka the world's services use
    pg_port: int = PG_PORT  # the PostgreSQL server of the world's databases
    sent: dict[str, Sent] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    _tokens: dict[tuple[str, str, str | None], str] = field(default_factory=dict)

    # -- addresses and tokens ---------------------------------------------------------------------

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{port_base() + PORT_OFFSETS[service]}"

    def token(self, sub: str, role: str, province: str | None = None) -> str:
        key = (sub, role, province)
        if key not in self._tokens:
            self._tokens[key] = mint_token(SECRET, sub, role, province, ttl_seconds=4 * 3600)
        return self._tokens[key]

    def auth(self, sub: str, role: str, province: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(sub, role, province)}"}

    def topic(self, base: str) -> str:
        return f"{self.prefix}{base}"

    # -- requests ---------------------------------------------------------------------------------

    async def call(
        self,
        service: str,
        method: str,
        path: str,
        *,
        as_: tuple[str, str] | tuple[str, str, str] | None = None,
        purpose: str = "call",
        subject: str | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        timeout: float = 30.0,  # noqa: ASYNC109
    ) -> httpx.Response:
        """One request with a fresh X-Correlation-Id (remembered in `sent`), as `(sub, role[, province])`."""
        correlation = new_correlation(purpose)
        all_headers = {"X-Correlation-Id": correlation, **(headers or {})}
        if as_ is not None:
            all_headers.update(self.auth(*as_))
        response = await self.client.request(
            method,
            self.url(service) + path,
            json=json_body,
            headers=all_headers,
            params=params,
            timeout=timeout,
        )
        self.sent[correlation] = Sent(correlation, purpose, response.status_code, subject)
        return response

    async def set_clock(self, offset: timedelta, services: Iterable[str] = SERVICES) -> None:
        """`PUT /v1/admin/clock` on every service: business time = real time + `offset`."""
        for service in services:
            response = await self.call(
                service, "PUT", "/v1/admin/clock", as_=("e2e-ops", "ops"), purpose="clock",
                json_body={"offset_seconds": offset.total_seconds()},
            )  # fmt: skip
            assert response.status_code == 200, response.text

    async def today(self, service: str = "ranking") -> date:
        response = await self.client.get(self.url(service) + "/v1/admin/clock")
        assert response.status_code == 200, response.text
        return datetime.fromisoformat(response.json()["now"]).date()

    async def readyz(self, service: str) -> int:
        try:
            response = await self.client.get(self.url(service) + "/readyz", timeout=5)
        except httpx.TransportError:
            return 0
        return response.status_code

    async def wait_ready(self, services: Iterable[str] = SERVICES, timeout: float = 90) -> float:  # noqa: ASYNC109
        """Wait until every service's /readyz is 200; the seconds it took."""
        started = time.monotonic()
        names = list(services)

        async def all_ready() -> bool:
            codes = await asyncio.gather(*(self.readyz(name) for name in names))
            return all(code == 200 for code in codes)

        await poll(all_ready, timeout, f"/readyz of {', '.join(names)}")
        return time.monotonic() - started

    # -- processes ---------------------------------------------------------------------------------

    async def start(self, *services: str) -> None:
        await script(SERVICES_SH, "start", *services, env=self.env, limit_s=180)

    async def stop(self, *services: str) -> None:
        await script(SERVICES_SH, "stop", *services, env=self.env, limit_s=120)

    def pid(self, service: str) -> int:
        return int((RUN_DIR / "run" / f"{service}.pid").read_text().strip())

    async def kill9(self, service: str) -> int:
        """SIGKILL the service's uvicorn (no shutdown at all) and wait until it is gone."""
        pid = self.pid(service)
        os.kill(pid, signal.SIGKILL)

        async def gone() -> bool:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            return False

        await poll(gone, 10, f"{service} (pid {pid}) to exit after SIGKILL", interval=0.05)
        return pid

    def log_path(self, service: str) -> Path:
        return RUN_DIR / "logs" / f"{service}.log"

    # -- databases ---------------------------------------------------------------------------------

    def dsn(self, service: str) -> str:
        return f"postgresql://ee:ee@127.0.0.1:{self.pg_port}/{service}{DB_SUFFIX}"

    async def fetch(self, service: str, query: str, *args: Any) -> list[asyncpg.Record]:
        """Rows from a service's database (to look at outboxes, positions, projections)."""
        conn = await asyncpg.connect(self.dsn(service), timeout=10)
        try:
            return list(await conn.fetch(query, *args))
        finally:
            await conn.close()

    async def positions(self, topic: str, partition: int) -> dict[str, int]:
        """Every consumer's stored next offset on one partition, across the four databases."""
        found: dict[str, int] = {}
        query = "SELECT consumer, next_offset FROM consumer_positions WHERE topic = $1 AND partition = $2"
        for service in SERVICES:
            for row in await self.fetch(service, query, topic, partition):
                found[f"{service}:{row['consumer']}"] = int(row["next_offset"])
        return found

    async def unpublished(self) -> dict[str, int]:
        """Outbox rows not yet on Kafka, per service."""
        query = "SELECT count(*) AS n FROM outbox WHERE published_at IS NULL"
        return {service: int((await self.fetch(service, query))[0]["n"]) for service in SERVICES}

    # -- figures -----------------------------------------------------------------------------------

    def record(self, name: str, value: Any) -> None:
        self.figures[name] = value


CLUSTER_SH: Final = ROOT / "deploy/local/cluster.sh"


@dataclass(frozen=True)
class PrivateCluster:
    """What `prepare_private_cluster` gives: the topic prefix, the environment for cluster.sh and
    make, and the brokers' bootstrap address."""

    prefix: str
    env: dict[str, str]
    bootstrap: str


def prepare_private_cluster(
    label: str,
    *,
    secret: str,
    port_base: int,
    run_dir: Path,
    db_suffix: str,
    kafka_port: int,
    **extra: str,
) -> PrivateCluster:
    """A fresh topic prefix and the environment of a cluster of this test's own (ports, run directory,
    databases; nothing of the caller's service URLs or broker), a killed run's leftovers wiped (stopped
    by pid first), its databases dropped, and the brokers' address. `extra`: more settings."""
    prefix = f"{run_prefix()}{label}{uuid.uuid4().hex[:6]}."
    env = {k: v for k, v in os.environ.items() if not (k.startswith("EE_") and k.endswith("_DATABASE_URL"))}
    for name in ("MAKEFLAGS", "MAKELEVEL", "EE_DRAWS_RANKING_URL", "KAFKA_BOOTSTRAP_SERVERS"):
        env.pop(name, None)
    env.update(
        EE_ENV="test",
        EE_AUTH_SECRET=secret,
        EE_PORT_BASE=str(port_base),
        EE_LOCAL_RUN=str(run_dir),
        EE_DB_SUFFIX=db_suffix,
        EE_TOPIC_PREFIX=prefix,
        EE_CLUSTER_KAFKA_PORT=str(kafka_port),
        **extra,
    )
    run_script(CLUSTER_SH, "wipe", env=env, timeout=300)
    run_script(POSTGRES_SH, "dropdbs", db_suffix, env=env)
    bootstrap = run_script(CLUSTER_SH, "bootstrap", env=env).strip()
    return PrivateCluster(prefix, env, bootstrap)


def service_env(
    prefix: str, bootstrap: str = BOOTSTRAP, pg_env: Mapping[str, str] | None = None
) -> dict[str, str]:
    env = dict(os.environ)
    for name in list(env):
        if name.endswith("_DATABASE_URL") and name.startswith("EE_"):
            del env[name]  # the services use their own <service>_e2e databases
    env.update(
        EE_ENV="test",
        EE_AUTH_SECRET=SECRET,
        EE_TOPIC_PREFIX=prefix,
        EE_DB_SUFFIX=DB_SUFFIX,
        EE_PORT_BASE=str(port_base()),
        EE_LOCAL_RUN=str(RUN_DIR),
        EE_DRAWS_RANKING_URL=f"http://127.0.0.1:{port_base() + 2}",
        KAFKA_BOOTSTRAP_SERVERS=bootstrap,
    )
    if pg_env:  # a private PostgreSQL server: every service's database on it (postgres.sh manages it)
        env.update(pg_env)
        port = pg_env["EE_PG_PORT"]
        for name in service_names():
            env[f"EE_{name.upper()}_DATABASE_URL"] = (
                f"postgresql+asyncpg://ee:ee@127.0.0.1:{port}/{name}{DB_SUFFIX}"
            )
    return env


async def _lock(path: Path) -> int:
    """An exclusive flock on `path` (waits for another test run's world to finish)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                raise AssertionError(
                    f"another end-to-end run holds {path} for over {LOCK_WAIT_S:g}s"
                ) from None
            await asyncio.sleep(1)


@asynccontextmanager
async def running_world(
    label: str, bootstrap: str = BOOTSTRAP, pg_env: Mapping[str, str] | None = None
) -> AsyncIterator[World]:
    """Fresh databases and topics, the four services started; everything stopped on exit."""
    fd = await _lock(RUN_DIR / ".harness.lock")
    prefix = f"{run_prefix()}e2e{label}{uuid.uuid4().hex[:6]}."
    env = service_env(prefix, bootstrap, pg_env)
    try:
        await script(SERVICES_SH, "stop", env=env)  # leftovers of a run that was killed
        await script(POSTGRES_SH, "dropdbs", DB_SUFFIX, env=env)
        await script(POSTGRES_SH, "createdbs", DB_SUFFIX, env=env)
        await kafka_admin.ensure_topics(bootstrap, prefix)
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=32)
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:
            pg_port = int(pg_env["EE_PG_PORT"]) if pg_env else PG_PORT
            world = World(label, prefix, env, client, bootstrap, pg_port)
            try:
                started = time.monotonic()
                await world.start()
                world.record("services_start_s", round(time.monotonic() - started, 2))
                yield world
            finally:
                await world.stop()
        if not os.environ.get("EE_KEEP_TEST_TOPICS"):
            await kafka_admin.delete_topics_with_prefix(bootstrap, prefix)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


# --- a private broker (the fault tests stop Kafka: never the shared one) ----------------------------


@dataclass(frozen=True)
class Broker:
    """The Kafka a fault test may stop and start: `env` is what `kafka.sh` needs to manage it."""

    bootstrap: str
    env: dict[str, str]
    private: bool


def private_broker_port() -> int:
    """`EE_E2E_KAFKA_PORT`, else the port base + 1092 (19092 for 18000): per port base, like the rest."""
    return int(os.environ.get("EE_E2E_KAFKA_PORT") or port_base() + 1092)


def broker_this_checkout_started() -> bool:
    """True when `kafka.sh` of this checkout started the broker at BOOTSTRAP (then stopping it is ours
    to do: CI's fresh clone); False when it belongs to another checkout or is remote."""
    done = subprocess.run([str(KAFKA_SH), "ours"], cwd=ROOT, capture_output=True, timeout=30, check=False)
    return done.returncode == 0


@asynccontextmanager
async def fault_broker() -> AsyncIterator[Broker]:
    """The broker this checkout started, when it started the shared one; otherwise a private
    single-node broker of its own (port `private_broker_port()`, controller +1, data under
    `.local/e2e-kafka`, wiped first), started by `kafka.sh` and stopped (by its pid) on exit."""
    if await asyncio.to_thread(broker_this_checkout_started):
        yield Broker(BOOTSTRAP, dict(os.environ), private=False)
        return
    port = private_broker_port()
    env = dict(os.environ)
    env.update(
        EE_KAFKA_PORT=str(port),
        EE_KAFKA_CONTROLLER_PORT=str(port + 1),
        EE_KAFKA_HOME=str(LOCAL / "e2e-kafka"),
        KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{port}",
    )
    broker = Broker(f"127.0.0.1:{port}", env, private=True)
    await script(KAFKA_SH, "stop", env=env)  # a leftover of a killed run (ours by its pid, or nothing)
    await script(KAFKA_SH, "wipe", env=env)
    await script(KAFKA_SH, "start", env=env, limit_s=600)  # the first start may fetch the jars
    ours = await asyncio.to_thread(
        subprocess.run, [str(KAFKA_SH), "ours"], cwd=ROOT, env=env, timeout=30, check=False
    )
    if ours.returncode:
        raise AssertionError(
            f"port {port} answers, but not with a broker this test started: "
            "set EE_E2E_KAFKA_PORT to a free port"
        )
    try:
        yield broker
    finally:
        await script(KAFKA_SH, "stop", env=env, limit_s=120)


def service_names() -> list[str]:
    """Every service of deploy/services.conf (services.sh starts them all)."""
    from shared.gateway import load_table

    return [entry.name for entry in load_table()]


def private_postgres_port() -> int:
    """`EE_E2E_PG_PORT`, else the port base + 1432 (19432 for 18000)."""
    return int(os.environ.get("EE_E2E_PG_PORT") or port_base() + 1432)


@asynccontextmanager
async def private_postgres() -> AsyncIterator[dict[str, str]]:
    """A PostgreSQL cluster of the test's own (Debian's pg_createcluster through postgres.sh: cluster
    `e2e<port>` on `private_postgres_port()`), so a fault test may restart it without touching the shared
    server on 5432; stopped on exit (its data is kept for the next run). Yields postgres.sh's variables."""
    port = private_postgres_port()
    env = {"EE_PG_PORT": str(port), "EE_PG_CLUSTER": f"e2e{port}"}
    await script(POSTGRES_SH, "start", env={**os.environ, **env}, limit_s=180)
    try:
        yield env
    finally:
        await script(POSTGRES_SH, "stop", env={**os.environ, **env}, limit_s=120)


# --- reading and checking the log -----------------------------------------------------------------


async def partitions_of(
    topics: Iterable[str],
    bootstrap: str = BOOTSTRAP,
    timeout: float = 60,  # noqa: ASYNC109
) -> list[TopicPartition]:
    """Every partition of `topics`, once each has a leader (just after a broker restart some have not;
    reading them then would silently find nothing)."""
    names = list(topics)
    deadline = time.monotonic() + timeout
    while True:
        problems: list[str] = []
        partitions: list[TopicPartition] = []
        try:
            async with kafka_admin.admin_client(bootstrap) as admin:
                described = await admin.describe_topics(names)
        except Exception as exc:
            problems.append(repr(exc))
            described = []
        for topic in described:
            if topic["error_code"]:
                problems.append(f"{topic['topic']}: error {topic['error_code']}")
            for partition in topic["partitions"]:
                if partition["error_code"] or partition["leader"] < 0:
                    problems.append(f"{topic['topic']}:{partition['partition']} has no leader")
                partitions.append(TopicPartition(topic["topic"], partition["partition"]))
        if {topic["topic"] for topic in described} != set(names):
            problems.append(f"described {sorted(t['topic'] for t in described)} of {names}")
        if not problems:
            return partitions
        if time.monotonic() > deadline:
            raise AssertionError(f"topics not readable after {timeout:g}s: {problems[:5]}")
        await asyncio.sleep(0.5)


async def read_topics(topics: Iterable[str], bootstrap: str = BOOTSTRAP, timeout: float = 60) -> list[Record]:  # noqa: ASYNC109
    """Every record of `topics`, from the beginning to the end offsets of the moment it starts."""
    names = list(topics)
    partitions = await partitions_of(names, bootstrap)
    # "earliest": assign() starts a position reset of its own, by the default "latest" otherwise, which
    # can land after the seek below and leave every partition at its end (0 records read, in CI).
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    records: list[Record] = []
    try:
        consumer.assign(partitions)
        begin = await consumer.beginning_offsets(partitions)
        end = await consumer.end_offsets(partitions)
        for tp in partitions:
            consumer.seek(tp, begin[tp])  # the offsets just read, not a second reset request
        pending = {tp for tp, offset in end.items() if offset > 0}
        deadline = time.monotonic() + timeout
        while pending:
            if time.monotonic() > deadline:
                raise AssertionError(f"reading {names}: partitions {pending} did not reach their end offsets")
            # Every assigned partition at once: asking for a subset can starve (aiokafka keeps the
            # fetched data of the others buffered and stops fetching for the node).
            batch = await consumer.getmany(timeout_ms=500, max_records=10_000)
            for tp, items in batch.items():
                records.extend(r for r in items if r.offset < end[tp])
                if items and items[-1].offset + 1 >= end[tp]:
                    pending.discard(tp)
            for tp in list(pending):
                if await consumer.position(tp) >= end[tp]:
                    pending.discard(tp)
    finally:
        await consumer.stop()
    got = Counter(TopicPartition(r.topic, r.partition) for r in records)
    short = {
        f"{tp.topic}:{tp.partition}": (got[tp], end[tp] - begin[tp])
        for tp in end
        if got[tp] < end[tp] - begin[tp]
    }
    if short:
        raise AssertionError(f"reading {names}: read fewer records than the partitions hold: {short}")
    return records


async def produce_raw(topic: str, value: bytes, key: str | None) -> tuple[int, int]:
    """One raw record (garbage, say) keyed like the services key theirs; its (partition, offset)."""
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, enable_idempotence=True)
    await producer.start()
    try:
        sent = await producer.send_and_wait(topic, value=value, key=key.encode() if key else None)
    finally:
        await producer.stop()
    return sent.partition, sent.offset


async def end_offsets(topics: Iterable[str], bootstrap: str = BOOTSTRAP) -> dict[str, int]:
    """`{"topic:partition": end offset}` of every partition of `topics`."""
    partitions = await partitions_of(topics, bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        offsets = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    return {f"{tp.topic}:{tp.partition}": offset for tp, offset in offsets.items()}


Fetch: TypeAlias = Callable[[str, str], Awaitable[list[asyncpg.Record]]]


async def consumers_behind(fetch: Fetch, services: Iterable[str], ends: Mapping[str, int]) -> list[str]:
    """Every consumer whose stored position (its `consumer_positions` rows, read by `fetch(service,
    query)`) is short of the end of a partition of a topic it reads; `ends` is `end_offsets(...)`."""
    behind = []
    for service in services:
        rows = await fetch(service, "SELECT consumer, topic, partition, next_offset FROM consumer_positions")
        readers: dict[str, set[str]] = {}
        stored = {}
        for row in rows:
            readers.setdefault(row["consumer"], set()).add(row["topic"])
            stored[(row["consumer"], f"{row['topic']}:{row['partition']}")] = int(row["next_offset"])
        for consumer, topics in readers.items():
            for key, end in ends.items():
                if key.rsplit(":", 1)[0] in topics and end > 0 and stored.get((consumer, key), 0) < end:
                    behind.append(f"{service}:{consumer} {key} {stored.get((consumer, key), 0)}/{end}")
    return behind


async def read_log(world: World) -> list[Record]:
    return await read_topics((world.topic(t) for t in EVENT_TOPICS), world.bootstrap)


@dataclass
class Event:
    """One valid record of the log, decoded."""

    record: Record
    envelope: Envelope
    name: str
    data: dict[str, Any]

    @property
    def key(self) -> str | None:
        return self.record.key.decode() if self.record.key is not None else None


@dataclass
class LogReport:
    records: int = 0
    events: list[Event] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)  # why a record is not a valid catalogue event
    misplaced: list[str] = field(default_factory=list)  # wrong topic, key or subject
    out_of_order: list[str] = field(default_factory=list)  # aggregateversion not increasing
    duplicates: int = 0  # the same event id more than once
    by_type: Counter[str] = field(default_factory=Counter)

    def problems(self) -> list[str]:
        return [*self.invalid[:10], *self.misplaced[:10], *self.out_of_order[:10]]

    def of(self, name: str) -> list[Event]:
        return [e for e in self.events if e.name == name]


_TOPIC_OF: Final = {event.event_name(): event.topic for event in CATALOGUE}


def check_log(records: Iterable[Record], prefix: str) -> LogReport:
    """Every record: a CloudEvents envelope of a catalogue type (`REGISTRY.parse`), on its topic,
    keyed by its subject (the profile for candidate events); per partition and aggregate,
    `aggregateversion` strictly increasing in offset order; event ids counted for duplicates."""
    report = LogReport()
    seen: dict[str, bytes] = {}
    last_version: dict[tuple[str, int, str], tuple[int, int]] = {}
    key_partition: dict[tuple[str, str], int] = {}
    ordered = sorted(records, key=lambda r: (r.topic, r.partition, r.offset))
    for record in ordered:
        report.records += 1
        where = f"{record.topic}:{record.partition}@{record.offset}"
        try:
            envelope = decode(record.value or b"")
            event = REGISTRY.parse(envelope)
        except (EnvelopeError, ValueError, KeyError) as exc:  # pydantic's ValidationError is a ValueError
            report.invalid.append(f"{where}: {exc!r}"[:300])
            continue
        except Exception as exc:  # UnknownEventType and the like
            report.invalid.append(f"{where}: {exc!r}"[:300])
            continue
        name = envelope.name
        if envelope.id in seen:
            # Republished after a crash between Kafka's ack and the outbox marking (at least once):
            # consumers drop it by its id. Counted, and kept out of the order check.
            report.duplicates += 1
            if seen[envelope.id] != record.value:
                report.misplaced.append(f"{where}: event {envelope.id} again with other content")
            continue
        seen[envelope.id] = record.value or b""
        report.by_type[name] += 1
        base = record.topic.removeprefix(prefix)
        key = record.key.decode() if record.key is not None else None
        if _TOPIC_OF.get(name) != base:
            report.misplaced.append(f"{where}: {name} on {base}, expected {_TOPIC_OF.get(name)}")
        if key != event.key() or envelope.subject != key:
            report.misplaced.append(
                f"{where}: {name} keyed {key!r}, subject {envelope.subject!r}, event key {event.key()!r}"
            )
        if key is not None:
            first = key_partition.setdefault((record.topic, key), record.partition)
            if first != record.partition:
                report.misplaced.append(f"{where}: key {key} on partitions {first} and {record.partition}")
        if not envelope.correlationid:
            report.invalid.append(f"{where}: {name} without a correlation id")
        if envelope.aggregateid is not None and envelope.aggregateversion is not None:
            slot = (record.topic, record.partition, envelope.aggregateid)
            previous = last_version.get(slot)
            if previous is not None and envelope.aggregateversion <= previous[0]:
                report.out_of_order.append(
                    f"{where}: {name} of {envelope.aggregateid} at version {envelope.aggregateversion} "
                    f"after version {previous[0]} (offset {previous[1]})"
                )
            last_version[slot] = (envelope.aggregateversion, record.offset)
        report.events.append(Event(record, envelope, name, envelope.data))
    return report


def is_problem(response: httpx.Response) -> bool:
    """An RFC 9457 answer: problem+json with type, title, status (= the HTTP status) and detail."""
    if not response.headers.get("content-type", "").startswith(PROBLEM_JSON):
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    return (
        isinstance(body, dict) and body.get("status") == response.status_code and bool(body.get("title"))
        and "type" in body and bool(body.get("detail"))
    )  # fmt: skip


# --- figures ---------------------------------------------------------------------------------------


def save_figures(section: str, figures: Mapping[str, Any]) -> str:
    """Merge `figures` under `section` into .local/e2e-figures.json; the section as one JSON line."""
    FIGURES_FILE.parent.mkdir(parents=True, exist_ok=True)
    try:
        everything = json.loads(FIGURES_FILE.read_text())
    except (OSError, ValueError):
        everything = {}
    if everything.get("run") != run_prefix():
        everything = {"run": run_prefix()}
    everything[section] = {
        **dict(figures),
        "recorded_at": datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    FIGURES_FILE.write_text(json.dumps(everything, indent=2, sort_keys=True, default=str) + "\n")
    return json.dumps(dict(figures), sort_keys=True, default=str)


def report_figures(config: Any, section: str, figures: Mapping[str, Any]) -> None:
    """Save the figures and show them in pytest's terminal output (no `-s` needed)."""
    line = save_figures(section, figures)
    reporter = config.pluginmanager.get_plugin("terminalreporter") if config is not None else None
    capture = config.pluginmanager.get_plugin("capturemanager") if config is not None else None
    if reporter is None or capture is None:
        return
    with capture.global_and_fixture_disabled():  # pytest captures fd 1 while tests and fixtures run
        reporter.write_line("")
        reporter.write_line(f"[e2e figures: {section}] {line}")
        reporter.write_line(f"[e2e figures: {section}] also in {FIGURES_FILE.relative_to(ROOT)}")


def grouped(events: Iterable[Event], by: Callable[[Event], T]) -> dict[T, list[Event]]:
    out: dict[T, list[Event]] = defaultdict(list)
    for event in events:
        out[by(event)].append(event)
    return out
