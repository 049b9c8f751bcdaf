"""Helpers for tests against the real PostgreSQL and Kafka (`make test` starts both).

- a fresh database per test module: `create_database`, `drop_database`, `fresh_platform_database`;
- a fresh topic prefix per test module: `unique_topic_prefix`, then `ensure_topics` / `delete_topics`;
- `KafkaReader`: everything on a topic from the beginning, to assert on what was published;
- `wait_until`: poll a condition with a deadline instead of sleeping a fixed time;
- child processes on loopback (tests and `make bench`): `free_port`, `listening`, `spawn`, `stop_process`;
- `SettingsFactory`: the type of the root conftest's `make_settings` fixture;
- `LoopTurns`: the turns another task gets on the event loop while some work runs;
- `default_collector`: CPython's collector settings for a block, the process's restored after it.

Nothing here is imported by service code.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Protocol, Self, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared import kafka_admin
from shared.db import (
    create_database,
    create_engine,
    create_platform_schema,
    drop_database,
    session_factory,
)
from shared.settings import ServiceSettings

S = TypeVar("S", bound=ServiceSettings)


class SettingsFactory(Protocol):
    """The root conftest's `make_settings` fixture: settings of a class for the module's prefix and suffix."""

    def __call__(self, cls: type[S], /, **overrides: Any) -> S: ...


class PlatformTestSettings(ServiceSettings):
    """Settings of the pseudo-service the platform's own tests run as."""

    service_name: ClassVar[str] = "platform"
    default_port: ClassVar[int] = 8099


# -- names ------------------------------------------------------------------------------------------


def run_prefix() -> str:
    """The test run's topic prefix: `EE_TOPIC_PREFIX` (set by `make test`) or `test<unix time>.`.

    The `test<unix time>.` shape is what `python -m shared.kafka_admin purge-test-topics` recognises.
    """
    return os.environ.get("EE_TOPIC_PREFIX") or f"test{int(time.time())}."


def unique_topic_prefix(label: str = "t") -> str:
    """A prefix no other test module uses, under the run's prefix: `test1700000000.outbox3fa9c1.`."""
    return f"{run_prefix()}{label}{uuid.uuid4().hex[:6]}."


def unique_db_suffix(label: str = "t") -> str:
    """A database-name suffix no other test module uses: `_test_outbox3fa9c1`."""
    base = os.environ.get("EE_DB_SUFFIX") or "_test"
    return f"{base}_{label}{uuid.uuid4().hex[:6]}".lower()


# -- databases --------------------------------------------------------------------------------------


@dataclass
class PlatformDatabase:
    """A fresh database with the platform tables, and the settings naming it."""

    settings: ServiceSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]


@asynccontextmanager
async def fresh_platform_database(settings: ServiceSettings) -> AsyncIterator[PlatformDatabase]:
    """Create `settings.database_url` with the platform tables; dispose and drop it on exit."""
    try:
        await create_database(settings.database_url)
    except OSError as exc:
        host = make_url(settings.database_url).host or "this machine's Unix socket"
        raise RuntimeError(
            f"PostgreSQL does not answer at {host} ({exc}): start it with `make test` or "
            "`deploy/local/postgres.sh start`"
        ) from exc
    engine = create_engine(settings)
    try:
        await create_platform_schema(engine)
        yield PlatformDatabase(settings, engine, session_factory(engine))
    finally:
        await engine.dispose()
        await drop_database(settings.database_url)


# -- topics -----------------------------------------------------------------------------------------


async def ensure_topics(settings: ServiceSettings, partitions: int = 3) -> list[str]:
    """Create every event topic (and its `.dlq`) under `settings.topic_prefix`."""
    if not settings.topic_prefix:
        raise ValueError("tests must use a topic prefix (unique_topic_prefix())")
    bootstrap = settings.kafka_bootstrap_servers
    return await kafka_admin.ensure_topics(bootstrap, settings.topic_prefix, partitions)


async def delete_topics(settings: ServiceSettings) -> None:
    """Delete every topic under `settings.topic_prefix` (best effort: the run's purge catches the rest)."""
    if settings.topic_prefix:
        await kafka_admin.delete_topics_with_prefix(settings.kafka_bootstrap_servers, settings.topic_prefix)


async def produce(
    settings: ServiceSettings,
    topic: str,
    values: Sequence[bytes | None],
    *,
    key: bytes | None = None,
    partition: int | None = None,
) -> None:
    """Write raw records to a (prefixed) topic and wait for the acks: the way to inject garbage."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, enable_idempotence=True)
    await producer.start()
    try:
        futures = [await producer.send(topic, value=v, key=key, partition=partition) for v in values]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


class KafkaReader:
    """Reads a topic from the beginning, every partition, without a consumer group.

    async with KafkaReader(settings, settings.topic("ee.profile.events")) as reader:
        records = await reader.read(3, timeout=10)
    """

    def __init__(self, settings: ServiceSettings, topic: str) -> None:
        self.topic = topic
        self._bootstrap = settings.kafka_bootstrap_servers
        self.records: list[ConsumerRecord[bytes, bytes]] = []
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )

    async def __aenter__(self) -> Self:
        async with kafka_admin.admin_client(self._bootstrap) as admin:
            described = await admin.describe_topics([self.topic])
        partitions = sorted(p["partition"] for t in described if not t["error_code"] for p in t["partitions"])
        if not partitions:
            raise AssertionError(f"topic {self.topic} does not exist")
        await self._consumer.start()
        tps = [TopicPartition(self.topic, p) for p in partitions]
        self._consumer.assign(tps)
        await self._consumer.seek_to_beginning(*tps)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._consumer.stop()

    async def read(self, at_least: int, timeout: float = 15.0) -> list[ConsumerRecord[bytes, bytes]]:  # noqa: ASYNC109
        """Collect records until at least `at_least` were read in all; then return all of them."""
        deadline = time.monotonic() + timeout
        while len(self.records) < at_least:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"{self.topic}: expected at least {at_least} records, got {len(self.records)}"
                )
            batch = await self._consumer.getmany(timeout_ms=int(min(remaining, 0.5) * 1000))
            for records in batch.values():
                self.records.extend(records)
        return list(self.records)

    async def drain(self, quiet_s: float = 0.5) -> list[ConsumerRecord[bytes, bytes]]:
        """Read until nothing new arrives for `quiet_s` seconds (to assert that no more came)."""
        while True:
            batch = await self._consumer.getmany(timeout_ms=int(quiet_s * 1000))
            if not batch:
                return list(self.records)
            for records in batch.values():
                self.records.extend(records)


# -- waiting ----------------------------------------------------------------------------------------


async def wait_until(
    condition: Callable[[], bool | Awaitable[bool]],
    timeout: float = 15.0,  # noqa: ASYNC109 - a deadline is the point
    interval: float = 0.02,
    message: str | Callable[[], str] = "condition not met",
) -> None:
    """Poll `condition` (sync or async) until true; fail with `message` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            text = message() if callable(message) else message
            raise AssertionError(f"{text} (after {timeout:g}s)")
        await asyncio.sleep(interval)


# -- child processes --------------------------------------------------------------------------------


def free_port() -> int:
    """A loopback port free just now (bound, then released) for a child process to listen on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening(port: int) -> bool:
    """Whether something accepts connections on the loopback `port`."""
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def spawn(
    args: list[str], cwd: Path, env: dict[str, str] | None = None, log: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start `args` in `cwd`; its output appended to `log` (stdout and stderr), or dropped."""
    if log is None:
        return subprocess.Popen(args, stdout=subprocess.DEVNULL, env=env, cwd=cwd)
    with log.open("ab") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd)


def stop_process(process: subprocess.Popen[bytes] | None, timeout: float = 20.0) -> None:
    """SIGTERM (a graceful shutdown), then SIGKILL if it has not exited after `timeout` seconds.

    Blocking: call it through `asyncio.to_thread` from async code."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


class LoopTurns:
    """`async with LoopTurns() as turns:` runs another task that counts its turns on the event loop
    (`turns.count`) until the block ends: work that never gives the loop back leaves it unchanged."""

    def __init__(self) -> None:
        self.count = 0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._tick())
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(0)
            self.count += 1


CPYTHON_THRESHOLD = (700, 10, 10)
"""CPython's collector thresholds (young, middle, old), before a service settles them."""


@contextmanager
def default_collector() -> Iterator[None]:
    """The collector as a fresh CPython process has it (default thresholds, nothing frozen) for the
    block; the process's thresholds restored and nothing left frozen after it."""
    before = gc.get_threshold()
    gc.set_threshold(*CPYTHON_THRESHOLD)
    gc.unfreeze()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
