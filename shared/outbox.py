"""The outbox relay: moves committed outbox rows to Kafka, at least once, in order per key.

One relay is active per service, whatever the number of replicas: each replica runs one, and the
one holding a PostgreSQL advisory lock publishes while the others wait and retry. The lock is a
session lock held by a dedicated connection, and that same connection runs every relay query, so a
relay that loses its connection has lost its lock too and stops publishing at once.

The relay reads the unpublished rows by id (`WHERE published_at IS NULL ORDER BY id`) rather than
resuming from the last id it saw: ids are taken before commit, so a transaction that commits late
holds a smaller id than rows already relayed, and a moving cursor would skip it forever.

A pass publishes a batch with an idempotent producer (acks from every in-sync replica), awaits every
acknowledgement, and only then marks the rows published. A crash between the two republishes the
batch: consumers dedupe by event id. Kafka down: the pass fails, nothing is marked, the relay backs off
and tries again; rows are never dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.cooperative import Slices
from shared.producer import start_producer
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    id: int
    event_id: str
    topic: str
    key: str | None
    payload: bytes


# Called after Kafka acknowledged a batch and before the rows are marked published. Tests use it to
# simulate a crash at the worst moment (raise from it); production passes nothing.
FaultHook = Callable[[Sequence[OutboxRecord]], Awaitable[None]]


# Sent through asyncpg directly on the leader's connection: a pass runs on every commit under load and
# every poll when idle (50 a second by default), and SQLAlchemy's statement path cost most of its CPU.
_UNPUBLISHED_SQL = (
    "SELECT id, event_id, topic, key, payload FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT $1"
)
_MARK_PUBLISHED_SQL = "UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])"


def relay_lock_key(service_name: str) -> int:
    """The advisory lock id of a service's relay (a stable signed 64-bit hash of its name)."""
    digest = hashlib.blake2b(f"ee.outbox.relay:{service_name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class IdlePoll:
    """How long the relay waits for a wake-up before it looks at the outbox again.

    The relay's own process wakes it at each commit; only rows committed by other processes (the
    service's other workers or instances) need the poll. While passes find rows, the relay polls every
    `base_s`; each empty pass doubles the wait, up to `max_s`; finding rows or being woken brings it
    back to `base_s`. An idle relay then costs a few queries a second instead of one every `base_s`
    (at 20 ms, about 2% of a core per service on this project's machine), and a row another process
    commits after a quiet spell waits at most `max_s`.
    """

    __slots__ = ("base_s", "max_s", "wait_s")

    def __init__(self, base_s: float, max_s: float) -> None:
        if not 0 < base_s <= max_s:
            raise ValueError(f"need 0 < base_s <= max_s, got {base_s} and {max_s}")
        self.base_s = base_s
        self.max_s = max_s
        self.wait_s = base_s

    def after_pass(self, *, found: bool) -> None:
        self.wait_s = self.base_s if found else min(self.wait_s * 2, self.max_s)

    def woken(self) -> None:
        self.wait_s = self.base_s


class OutboxRelay:
    """Publish the outbox of one service database to Kafka. `run()` until `stop()`."""

    def __init__(
        self,
        engine: AsyncEngine,
        settings: ServiceSettings,
        *,
        batch_size: int = 1000,
        fault_hook: FaultHook | None = None,
        lock_retry_s: float = 1.0,
        max_backoff_s: float = 5.0,
        producer_options: dict[str, Any] | None = None,
        linger_s: float = 0.005,
    ) -> None:
        self._engine = engine
        self._linger_s = linger_s
        self._settings = settings
        self._batch_size = batch_size
        self._fault_hook = fault_hook
        self._lock_key = relay_lock_key(settings.service_name)
        self._lock_retry_s = lock_retry_s
        self._max_backoff_s = max_backoff_s
        self._poll = IdlePoll(
            settings.relay_poll_interval_ms / 1000,
            max(settings.relay_idle_poll_max_ms, settings.relay_poll_interval_ms) / 1000,
        )
        self._producer_options = producer_options or {}
        self._producer: AIOKafkaProducer | None = None
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._running = False
        self._finished = asyncio.Event()
        # Serialises passes: publish_pending() may be called while run() is active.
        self._pass_lock = asyncio.Lock()
        self._leader_conn: AsyncConnection | None = None
        self.published = 0
        self.failures = 0
        self.last_error: str | None = None

    @property
    def is_leader(self) -> bool:
        """True while this relay holds the advisory lock (it is the one publishing)."""
        return self._leader_conn is not None

    @property
    def poll_wait_s(self) -> float:
        """How long the relay now waits for a wake-up before it looks again (see `IdlePoll`)."""
        return self._poll.wait_s

    def wake(self) -> None:
        """Start the next pass now instead of at the next poll (a unit of work just committed rows)."""
        self._wake.set()

    # -- the loop ---------------------------------------------------------------------------------

    async def run(self) -> None:
        """Publish until `stop()`: take the lock (or wait for it), then pass after pass."""
        self._running = True
        self._finished.clear()
        backoff = 0.1
        try:
            while not self._stopping.is_set():
                try:
                    async with self._leadership() as conn:
                        if conn is None:
                            await self._sleep(self._lock_retry_s)
                            continue
                        log.info("outbox relay of %s is active", self._settings.service_name)
                        while not self._stopping.is_set():
                            self._wake.clear()
                            async with self._pass_lock:
                                count = await self._pass(conn)
                            self._poll.after_pass(found=count > 0)
                            backoff = 0.1
                            if count < self._batch_size:
                                await self._wait_for_work()
                except Exception as exc:
                    self.failures += 1
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    log.warning(
                        "outbox relay of %s failed (%s); retrying in %.1fs",
                        self._settings.service_name,
                        self.last_error,
                        backoff,
                    )
                    # A producer that saw errors may be wedged (idempotent sequence state); start over.
                    await self._close_producer()
                    await self._sleep(backoff)
                    backoff = min(backoff * 2, self._max_backoff_s)
        finally:
            await self._close_producer()
            self._running = False
            self._finished.set()

    async def stop(self, grace_s: float = 10.0) -> None:
        """Finish the current pass, release the lock, close the producer."""
        self._stopping.set()
        self._wake.set()
        if self._running:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._finished.wait(), grace_s)
        await self._close_producer()

    async def publish_pending(self) -> int:
        """One pass outside `run()` (tests, tools): returns how many rows it published.

        Returns 0 without publishing when another relay holds the lock.
        """
        async with self._pass_lock:
            if self._leader_conn is not None:
                return await self._pass(self._leader_conn)
            async with self._leadership() as conn:
                return 0 if conn is None else await self._pass(conn)

    # -- one pass ---------------------------------------------------------------------------------

    async def _pass(self, conn: AsyncConnection) -> int:
        # The connection is in autocommit: each statement is its own transaction (no BEGIN/COMMIT
        # round trips, and no read transaction held open while publishing waits on Kafka).
        driver = await _driver(conn)
        records = [OutboxRecord(*row) for row in await driver.fetch(_UNPUBLISHED_SQL, self._batch_size)]
        if not records:
            return 0
        acked = await self._publish(records)
        if self._fault_hook is not None:
            await self._fault_hook(acked)
        if acked:
            await driver.execute(_MARK_PUBLISHED_SQL, [r.id for r in acked])
            self.published += len(acked)
        if len(acked) < len(records):
            raise RuntimeError(self.last_error or "Kafka did not acknowledge every message")
        return len(acked)

    async def _publish(self, records: Sequence[OutboxRecord]) -> list[OutboxRecord]:
        """Send every record, await every ack; return the acknowledged prefix (in id order)."""
        producer = await self._started_producer()
        futures: list[asyncio.Future[Any]] = []
        send_error: BaseException | None = None
        # `send` only appends to the producer's batch (it awaits nothing while there is room), so a
        # batch of a thousand rows after a backlog was one stretch of ~13 ms of the service's loop.
        async for record in Slices().each(records):
            try:
                futures.append(
                    await producer.send(
                        record.topic,
                        value=record.payload,
                        key=record.key.encode() if record.key is not None else None,
                    )
                )
            except Exception as exc:  # e.g. no metadata for the topic: everything after it waits
                send_error = exc
                break
        results = await asyncio.gather(*futures, return_exceptions=True)
        acked: list[OutboxRecord] = []
        for record, outcome in zip(records, results, strict=False):
            if isinstance(outcome, BaseException):
                send_error = outcome
                break
            acked.append(record)
        if send_error is not None:
            failed = records[len(acked)]
            self.last_error = f"publishing outbox row {failed.id} to {failed.topic}: {send_error!r}"
            log.warning(
                "%s (does the topic exist? `python -m shared.kafka_admin ensure-topics`)", self.last_error
            )
        return acked

    # -- resources --------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _leadership(self) -> AsyncIterator[AsyncConnection | None]:
        """A dedicated connection holding the relay lock, or None when another relay holds it."""
        conn = await self._engine.connect()
        held = False
        try:
            # A session lock, so autocommit keeps it; the connection is invalidated on the way out.
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            result = await conn.execute(sa.select(sa.func.pg_try_advisory_lock(self._lock_key)))
            held = bool(result.scalar())
            if held:
                self._leader_conn = conn
            yield conn if held else None
        finally:
            self._leader_conn = None
            try:
                if held:
                    # A session lock outlives the transaction and survives a return to the pool (the
                    # pool only rolls back): close the connection itself so the lock goes with it.
                    await conn.invalidate()
                await conn.close()
            except Exception as exc:  # a broken connection: the server already dropped the lock
                log.debug("closing the relay connection: %r", exc)

    async def _started_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            options: dict[str, Any] = {"max_batch_size": 1 << 20, "linger_ms": 0, **self._producer_options}
            self._producer = await start_producer(self._settings, "relay", **options)
        return self._producer

    async def _close_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                await producer.stop()
            except Exception as exc:
                log.debug("closing the relay producer: %r", exc)

    async def _wait_for_work(self) -> None:
        try:
            await asyncio.wait_for(self._wake.wait(), self._poll.wait_s)
        except TimeoutError:
            return
        self._poll.woken()
        if self._linger_s > 0 and not self._stopping.is_set():
            # Woken by a commit: let the commits of the next few milliseconds join this pass, so that
            # under load one pass (two statements and one produce request) carries many rows.
            await self._sleep(self._linger_s)

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake up at once on stop()."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)


async def _driver(conn: AsyncConnection) -> asyncpg.Connection:
    """The asyncpg connection under the relay's (autocommit) connection."""
    raw: Any = (await conn.get_raw_connection()).dbapi_connection
    driver: asyncpg.Connection = raw._connection
    return driver
