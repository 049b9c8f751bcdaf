"""The idempotent consumer: applies Kafka events to the service's database exactly once.

    consumer = IdempotentConsumer("ranking", settings, session_factory, clock,
                                  topics=[PROFILE_TOPIC], handlers={"ProfileUpdated": on_update},
                                  group_id="ranking")
    await consumer.run()   # until stop()

`linger_ms` (default: the service's `consumer_linger_ms`, `shared.settings`): a batch smaller than
`batch_size` waits up to that long for more records, so that a steady trickle is applied in fewer,
larger transactions (each costs the same round trips whatever its size); `stop()` does not wait it out.

A batch of records is one database transaction. In it, each event id is claimed in
`processed_messages` (a redelivered event is already there: a no-op), the handlers run with a unit of
work (they may `uow.publish(...)` through the outbox and `uow.after_commit(...)`), and the next offset
of every partition is stored in `consumer_positions` with the Kafka cluster id (`shared.positions`).

A handler takes one event (`handlers={"ProfileWithdrawn": on_withdrawn}`), or, for a projection that
works best on many events at once, a batch handler takes every new event of its types in the batch,
once, after the per-event handlers (`batch_handler=projection.apply, batch_types=[...]`); when a batch
fails and its messages are retried one at a time, it gets them one at a time too. Either way only the
consumer commits (`shared.uow.BatchUnitOfWork`). Kafka's own offsets
are committed after the database commit and only as a courtesy (lag monitoring): the positions in the
database are the truth, and the consumer seeks to them on start and on every assignment. The courtesy
is paid at most once every `mirror_interval_s` (1 s), and for what is left on stop and on a
revocation: one commit request per batch cost the broker and the consumer more than the lag tools it
serves needed.

What cannot be applied does not stop the consumer:
- not JSON, not a CloudEvent, or data that does not validate as its catalogue event → `<topic>.dlq`
  at once (retrying cannot fix it);
- a handler that raises → the batch rolls back, then its messages are retried one at a time, each up
  to `max_retries` times; the one that still fails goes to `<topic>.dlq` and the rest carry on;
- a value the database rejects (SQLSTATE class 22, e.g. an integer beyond PostgreSQL's range in a
  well-formed event: `shared.failures`) → `<topic>.dlq` at its first one-by-one attempt, with the
  database's words as the reason: retrying cannot fix it, and the database is not down;
- an event type this build does not know (a newer producer) → skipped and counted;
- a known type with no handler here → ignored and counted.
A DLQ record keeps the original key, value and headers and adds `reason`, `error`, `original_topic`,
`original_partition`, `original_offset` and `consumer` headers. These decisions (the verdict on a
record, the retry count, the dead-letter reason and copy) are `shared.decisions`, which the ranking
rebuild reuses.

Database or Kafka unreachable is not the message's fault: nothing is dead-lettered, the consumer seeks
back to its stored positions and tries again with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, TypeAlias

import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared import context, kafka_admin
from shared.cooperative import in_slices
from shared.db import Transaction
from shared.decisions import (
    MAX_RETRIES,
    Action,
    DeadLetterReason,
    DeadLetters,
    UnreadableEvent,
    dead_letter_headers,
    handler_failed,
    judge,
    read_event,
)
from shared.envelope import Envelope
from shared.events.catalogue import Event
from shared.events.registry import REGISTRY, EventRegistry
from shared.failures import rejected_data
from shared.positions import ClusterMismatchError, ConsumerPositions
from shared.settings import ServiceSettings
from shared.uow import BatchUnitOfWork, SupportsNow, UnitOfWork

log = logging.getLogger(__name__)

MIRROR_INTERVAL_S: Final = 1.0
"""At most one Kafka offset commit (the courtesy mirror of the stored positions) per this many seconds."""
MIRROR_TIMEOUT_S: Final = 2.0

FRESH_HIGHWATER_S: Final = 5.0
"""A partition's high-water mark from a fetch younger than this stands for its end offset (`lag`)."""

Record: TypeAlias = ConsumerRecord[bytes, bytes]


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event handed to a handler: the (upcast) envelope, its parsed event and where it came from."""

    envelope: Envelope
    event: Event
    topic: str
    partition: int
    offset: int


Handler = Callable[[UnitOfWork, Delivery], Awaitable[None]]
BatchHandler = Callable[[UnitOfWork, Sequence[Delivery]], Awaitable[None]]


class MissingTopicError(RuntimeError):
    """A topic the consumer reads does not exist (yet)."""


@dataclass
class ConsumerMetrics:
    processed: int = 0  # applied by a handler and committed
    duplicates: int = 0  # already applied (event id seen, or offset below the stored position)
    skipped_unknown: int = 0  # type this build does not know
    ignored: int = 0  # known type without a handler in this consumer
    dead_lettered: int = 0
    retries: int = 0  # handler attempts that failed and were retried
    batches: int = 0  # database transactions committed for batches
    failures: int = 0  # infrastructure failures (database or Kafka) the loop recovered from
    dead_lettered_by_reason: dict[str, int] = field(default_factory=dict)  # DeadLetterReason -> count

    def as_dict(self) -> dict[str, int]:
        return {k: v for k, v in self.__dict__.items() if isinstance(v, int)}


@dataclass
class _Pending:
    record: Record
    delivery: Delivery
    handler: Handler | None  # None: the batch handler's


@dataclass
class _Batch:
    pending: list[_Pending] = field(default_factory=list)
    dead: list[tuple[Record, str, str]] = field(default_factory=list)  # unreadable: record, reason, error
    advance: dict[TopicPartition, int] = field(default_factory=dict)  # next offset per partition


class _InfrastructureError(Exception):
    """Database or Kafka failed under us: retry the batch later, blame no message."""


# On the batch's asyncpg connection (numbered parameters), like the positions: once per batch.
_CLAIM = (
    "INSERT INTO processed_messages (consumer, event_id) "
    "SELECT $1, unnest($2::text[]) "
    "ON CONFLICT DO NOTHING RETURNING event_id"
)


class IdempotentConsumer:
    """Consume `topics` (base names; the settings' prefix is added) into the service database.

    `group_id` is a base name too: the consumer joins `settings.consumer_group(group_id)`, under the
    topic prefix, so a test run never joins the live group. None: every partition, no group.
    """

    def __init__(
        self,
        name: str,
        settings: ServiceSettings,
        session_factory: async_sessionmaker[AsyncSession],
        clock: SupportsNow,
        *,
        topics: Sequence[str],
        handlers: Mapping[str, Handler],
        batch_handler: BatchHandler | None = None,
        batch_types: Iterable[str] = (),
        group_id: str | None = None,
        batch_size: int = 500,
        max_retries: int = MAX_RETRIES,
        registry: EventRegistry = REGISTRY,
        poll_timeout_ms: int = 200,
        retry_backoff_s: float = 0.05,
        max_backoff_s: float = 5.0,
        on_outbox_commit: Callable[[], None] | None = None,
        linger_ms: int | None = None,
        mirror_interval_s: float = MIRROR_INTERVAL_S,
    ) -> None:
        if not topics:
            raise ValueError("a consumer needs at least one topic")
        self.name = name
        self.settings = settings
        self.topics = [settings.topic(t) for t in topics]
        self.handlers = dict(handlers)
        self.batch_handler = batch_handler
        self.batch_types = frozenset(batch_types)
        if self.batch_types and batch_handler is None:
            raise ValueError("batch_types without a batch_handler")
        if both := self.batch_types & set(self.handlers):
            raise ValueError(f"{sorted(both)} have both a handler and the batch handler")
        self._stored = ConsumerPositions(name)
        self._handled = frozenset(self.handlers) | self.batch_types
        self._dead_letters = DeadLetters(settings, name)
        self.group_id = None if group_id is None else settings.consumer_group(group_id)
        self.batch_size = batch_size
        self.max_retries = max(1, max_retries)
        self.metrics = ConsumerMetrics()
        self.on_outbox_commit = on_outbox_commit
        self._session_factory = session_factory
        self._clock = clock
        self._registry = registry
        self._poll_timeout_ms = poll_timeout_ms
        self._retry_backoff_s = retry_backoff_s
        self._max_backoff_s = max_backoff_s
        if linger_ms is None:
            linger_ms = settings.consumer_linger_ms
        if linger_ms < 0:
            raise ValueError("linger_ms must be 0 or more")
        self._linger_s = linger_ms / 1000
        self._lingering = False
        self._consumer: AIOKafkaConsumer | None = None
        self._cluster_id: str | None = None
        # Next offset per assigned partition as committed in the database.
        self._positions: dict[TopicPartition, int] = {}
        # Stored positions not yet mirrored into Kafka's group offsets, and when the next mirror may go.
        self._unmirrored: dict[TopicPartition, int] = {}
        self._mirror_interval_s = mirror_interval_s
        self._next_mirror = 0.0
        # Partitions sought to their stored position in the current assignment: only their records
        # are processed.
        self._positioned: set[TopicPartition] = set()
        # True from a revocation until the next assignment listener is done (group mode).
        self._assigning = False
        self._stopping = asyncio.Event()
        self._ready = asyncio.Event()
        self._finished = asyncio.Event()
        self._running = False
        # Clear while a database transaction of a batch is open: a revocation waits for it so the
        # next owner reads the positions it commits. Never held across a Kafka call (commit or
        # getmany wait for the rebalance, which would wait for us: a deadlock).
        self._db_idle = asyncio.Event()
        self._db_idle.set()

    @property
    def cluster_id(self) -> str | None:
        return self._cluster_id

    @property
    def running(self) -> bool:
        """True between the start of `run()` and its end (connecting, consuming or backing off)."""
        return self._running

    async def lag(
        self, timeout_s: float = 1.0, fresh_s: float = FRESH_HIGHWATER_S
    ) -> dict[TopicPartition, int]:
        """Records not yet applied per assigned partition: Kafka's end offset minus the stored position.

        The end offset is the high-water mark that the partition's last fetch brought back, when that
        fetch is under `fresh_s` old: a running consumer fetches each partition it has not paused every
        few hundred milliseconds. Otherwise it is asked of the broker, and that answer waits behind
        any fetch in flight on the same connection (up to the fetch's 500 ms wait). Asking every
        time made each `/metrics` scrape take half a second. Falls back to the last high-water mark,
        however old, when the broker does not answer in `timeout_s`.
        Empty when the consumer is not running or has no partition.
        """
        consumer, positions = self._consumer, dict(self._positions)
        if consumer is None or not positions:
            return {}
        ends = _fresh_highwaters(consumer, positions, fresh_s)
        stale = [tp for tp in positions if tp not in ends]
        if stale:
            try:
                ends.update(await asyncio.wait_for(consumer.end_offsets(stale), timeout_s))
            except Exception as exc:
                log.debug("consumer %s: end offsets unavailable (%r); using high-water marks", self.name, exc)
                ends.update(_fresh_highwaters(consumer, stale, fresh_s=float("inf")))
        return {tp: max(0, ends[tp] - position) for tp, position in positions.items() if tp in ends}

    @property
    def lingering(self) -> bool:
        """True while a batch in hand waits for more records (tests)."""
        return self._lingering

    def positions(self) -> dict[TopicPartition, int]:
        """Next offset per assigned partition, as committed in the database."""
        return dict(self._positions)

    async def wait_ready(self, timeout: float = 30.0) -> None:  # noqa: ASYNC109 - a deadline is the API
        """Wait until partitions are assigned and positioned (tests)."""
        await asyncio.wait_for(self._ready.wait(), timeout)

    # -- lifecycle --------------------------------------------------------------------------------

    async def run(self) -> None:
        """Consume until `stop()`. Raises `ClusterMismatchError` at once against another cluster."""
        self._running = True
        self._finished.clear()
        self._assigning = False  # a previous run may have died between a revocation and its assignment
        try:
            consumer = await self._start()
            backoff = self._retry_backoff_s
            while not self._stopping.is_set():
                if self.group_id is not None and not self._assigning:
                    await self._position_unpositioned(consumer)
                batch = await consumer.getmany(timeout_ms=self._poll_timeout_ms, max_records=self.batch_size)
                if self._linger_s > 0:
                    await self._linger(consumer, batch)
                # aiokafka hands out records of a new assignment before the assignment listener has
                # finished seeking: those come from Kafka's committed offset, not from ours. Drop
                # them; after the seek the fetcher reads again from the stored position.
                records = [r for tp, part in batch.items() if tp in self._positioned for r in part]
                if not records:
                    await self._mirror_if_due(consumer)  # a quiet spell still gets the last batch's
                    continue
                try:
                    await self._handle(records)
                    backoff = self._retry_backoff_s
                except _InfrastructureError as exc:
                    self.metrics.failures += 1
                    log.warning(
                        "consumer %s: %s; retrying from the stored positions in %.1fs",
                        self.name,
                        exc.__cause__ or exc,
                        backoff,
                    )
                    self._rewind(consumer, records)
                    await self._sleep(backoff)
                    backoff = min(backoff * 2, self._max_backoff_s)
                    continue
                await self._commit_kafka(consumer, records)
        finally:
            if self._consumer is not None:
                await self._mirror(self._consumer)
            self._ready.clear()
            self._positioned.clear()
            await self._close()
            self._running = False
            self._finished.set()

    async def _linger(self, consumer: AIOKafkaConsumer, batch: dict[TopicPartition, list[Record]]) -> None:
        """A batch smaller than `batch_size` waits up to the linger for more records, added in place.

        Every transaction costs the same round trips whatever its size (claim, lock, positions, outbox,
        commit, the Kafka offset mirror), so under a steady trickle a few milliseconds of waiting buys
        fewer, larger batches. The fetcher keeps fetching meanwhile; one non-blocking `getmany` then
        takes what came. `stop()` cuts the wait short (the batch in hand is still applied). Nothing is
        committed before the batch is handled, so exactly-once and crash safety are as without it.
        """
        got = sum(len(part) for part in batch.values())
        if got == 0 or got >= self.batch_size:
            return
        self._lingering = True
        try:
            await self._sleep(self._linger_s)
        finally:
            self._lingering = False
        more = await consumer.getmany(timeout_ms=0, max_records=self.batch_size - got)
        for tp, part in more.items():
            batch[tp] = [*batch.get(tp, ()), *part]

    async def stop(self, grace_s: float = 10.0) -> None:
        """Finish the batch in hand, then leave the group and close the clients."""
        self._stopping.set()
        if self._running:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._finished.wait(), grace_s)

    async def _start(self) -> AIOKafkaConsumer:
        broker_cluster, partitions = await self._describe_broker()
        await self._check_cluster(broker_cluster)
        self._cluster_id = broker_cluster
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            group_id=self.group_id,
            client_id=f"ee-{self.settings.service_name}-{self.name}",
            enable_auto_commit=False,
            # Where a partition without a stored position starts, and where a seek below the log
            # start lands: the beginning (event topics keep everything).
            auto_offset_reset="earliest",
            max_poll_records=self.batch_size,
        )
        self._consumer = consumer
        await consumer.start()
        if self.group_id is None:
            # No group: this consumer reads every partition (e.g. a read replica holding the whole
            # pool). Assign them explicitly and seek to the stored positions.
            consumer.assign(partitions)
            await self._seek_to_stored(consumer, partitions)
        else:
            consumer.subscribe(self.topics, listener=_SeekOnAssign(self, consumer))
        return consumer

    async def _describe_broker(self) -> tuple[str, list[TopicPartition]]:
        """The cluster id and every partition of our topics; waits for topics that do not exist yet."""
        delay = 0.2
        while True:
            async with kafka_admin.admin_client(self.settings.kafka_bootstrap_servers) as admin:
                cluster = await admin.describe_cluster()
                described = await admin.describe_topics(self.topics)
            cluster_id = cluster.get("cluster_id")
            if not cluster_id:
                bootstrap = self.settings.kafka_bootstrap_servers
                raise KafkaError(f"the broker at {bootstrap} reported no cluster id")
            missing = [t["topic"] for t in described if t["error_code"] or not t["partitions"]]
            if not missing:
                partitions = [
                    TopicPartition(t["topic"], p["partition"]) for t in described for p in t["partitions"]
                ]
                return str(cluster_id), sorted(partitions)
            log.warning(
                "consumer %s: topics %s do not exist yet (create them with `python -m "
                "shared.kafka_admin ensure-topics`); waiting",
                self.name,
                ", ".join(missing),
            )
            await self._sleep(delay)
            if self._stopping.is_set():
                raise MissingTopicError(", ".join(missing))
            delay = min(delay * 2, self._max_backoff_s)

    async def _check_cluster(self, broker_cluster: str) -> None:
        where = (
            f"of {self.settings.service_name} (database {self.settings.database_name}, broker "
            f"{self.settings.kafka_bootstrap_servers})"
        )
        async with self._session_factory() as session:
            await self._stored.check_cluster(session, broker_cluster, where=where)

    async def _seek_to_stored(self, consumer: AIOKafkaConsumer, partitions: Sequence[TopicPartition]) -> None:
        stored = await self._load_positions(partitions)
        assigned = consumer.assignment()
        for tp in partitions:
            if tp not in assigned:  # revoked meanwhile
                continue
            # Offset 0 when nothing is stored: below the log start it resets to the earliest offset.
            # Explicit even then: with a group, Kafka's committed offset would win otherwise, and
            # the database (perhaps just wiped for a rebuild) is what decides.
            consumer.seek(tp, stored.get(tp, 0))
            self._positions[tp] = stored.get(tp, 0)
            self._positioned.add(tp)
        if self._positioned:
            self._ready.set()

    async def _position_unpositioned(self, consumer: AIOKafkaConsumer) -> None:
        """Seek partitions the assignment listener could not (it failed, e.g. the database was down)."""
        missing = set(consumer.assignment()) - self._positioned
        if missing:
            try:
                await self._seek_to_stored(consumer, sorted(missing))
            except Exception as exc:
                log.warning("consumer %s: cannot read its positions yet: %r", self.name, exc)
                await self._sleep(self._retry_backoff_s)

    async def _load_positions(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        async with self._session_factory() as session:
            return await self._stored.load(session, partitions)

    async def _close(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            try:
                await consumer.stop()
            except Exception as exc:
                log.debug("consumer %s: closing the Kafka consumer: %r", self.name, exc)
        await self._dead_letters.close()

    # -- a batch ----------------------------------------------------------------------------------

    async def _handle(self, records: Sequence[Record]) -> None:
        batch = await self._classify(records)
        try:
            for record, reason, error in batch.dead:
                await self._dead_letter(record, reason, error, DeadLetterReason.UNREADABLE)
        except Exception as exc:
            raise _InfrastructureError("the dead-letter topic is unreachable") from exc
        try:
            await self._apply_batch(batch)
        except _InfrastructureError:
            raise
        except Exception as exc:
            if rejected_data(exc) is None and await self._infrastructure_failed(exc):
                raise _InfrastructureError("the database is unreachable") from exc
            log.info(
                "consumer %s: a handler failed in a batch of %d (%r); retrying one by one",
                self.name,
                len(batch.pending),
                exc,
            )
            await self._apply_one_by_one(batch)

    async def _classify(self, records: Sequence[Record]) -> _Batch:
        """Parse and judge the records, yielding to the event loop between slices (a batch of
        500 documents is tens of milliseconds of validation: the service's requests run meanwhile)."""
        batch = _Batch()
        async for record in in_slices(records):
            tp = TopicPartition(record.topic, record.partition)
            if tp not in self._positioned:
                continue  # revoked while this batch was classified (the next owner reads it)
            if record.offset < self._positions.get(tp, 0):
                self.metrics.duplicates += 1  # re-fetched after a seek; already committed
                continue
            batch.advance[tp] = record.offset + 1
            verdict = judge(record.value, self._handled, self._registry)
            if verdict.action is Action.DEAD_LETTER:
                batch.dead.append((record, verdict.reason, verdict.error))
                continue
            if verdict.action is Action.SKIP_UNKNOWN:
                self.metrics.skipped_unknown += 1
                log.info(
                    "consumer %s: skipped unknown event type %s at %s:%d@%d",
                    self.name,
                    verdict.reason,
                    record.topic,
                    record.partition,
                    record.offset,
                )
                continue
            if verdict.action is Action.IGNORE:
                self.metrics.ignored += 1
                continue
            assert verdict.envelope is not None and verdict.event is not None
            handler = self.handlers.get(verdict.event.event_name())
            envelope, event = verdict.envelope, verdict.event
            delivery = Delivery(envelope, event, record.topic, record.partition, record.offset)
            batch.pending.append(_Pending(record, delivery, handler))
        return batch

    async def _apply_batch(self, batch: _Batch) -> None:
        """Every pending message and the positions in one transaction."""
        applied = duplicates = 0
        self._db_idle.clear()
        try:
            async with self._uow() as uow:
                ids = [p.delivery.envelope.id for p in batch.pending]
                fresh = await self._claim(uow.tx, ids) if ids else set()
                batched: list[_Pending] = []
                for pending in batch.pending:
                    event_id = pending.delivery.envelope.id
                    if event_id not in fresh:
                        duplicates += 1  # counted once the batch commits (else counted again one by one)
                        continue
                    fresh.discard(event_id)  # the same event twice in one batch: the second is a duplicate
                    if pending.handler is None:
                        batched.append(pending)
                    else:
                        await self._call(pending, pending.handler, uow)
                    applied += 1
                await self._call_batch(batched, uow)
                await self._save_positions(uow.tx, batch.advance)
                await uow.commit_batch()
        finally:
            self._db_idle.set()
        self.metrics.processed += applied
        self.metrics.duplicates += duplicates
        self.metrics.batches += 1
        self._positions.update(batch.advance)

    async def _apply_one_by_one(self, batch: _Batch) -> None:
        for pending in batch.pending:
            record = pending.record
            tp = TopicPartition(record.topic, record.partition)
            error: Exception | None = None
            kind, reason = DeadLetterReason.HANDLER_FAILED, ""
            for attempt in range(1, self.max_retries + 1):
                self._db_idle.clear()
                try:
                    async with self._uow() as uow:
                        if not await self._claim(uow.tx, [pending.delivery.envelope.id]):
                            self.metrics.duplicates += 1
                        elif pending.handler is None:
                            await self._call_batch([pending], uow)
                            self.metrics.processed += 1
                        else:
                            await self._call(pending, pending.handler, uow)
                            self.metrics.processed += 1
                        await self._save_positions(uow.tx, {tp: record.offset + 1})
                        await uow.commit_batch()
                    error = None
                    break
                except Exception as exc:
                    rejected = rejected_data(exc)
                    if rejected is not None:
                        error, kind = exc, DeadLetterReason.DATA_REJECTED
                        reason = (
                            f"the database rejected a value of {pending.delivery.envelope.type}: {rejected}"
                        )
                        log.warning(
                            "consumer %s: %s at %s:%d@%d",
                            self.name,
                            reason,
                            record.topic,
                            record.partition,
                            record.offset,
                        )
                        break  # retrying the same value cannot succeed
                    if await self._infrastructure_failed(exc):
                        raise _InfrastructureError("the database is unreachable") from exc
                    error = exc
                    self.metrics.retries += 1
                    log.warning(
                        "consumer %s: handler for %s at %s:%d@%d failed (attempt %d/%d): %r",
                        self.name,
                        pending.delivery.envelope.type,
                        record.topic,
                        record.partition,
                        record.offset,
                        attempt,
                        self.max_retries,
                        exc,
                    )
                    if attempt < self.max_retries:
                        await asyncio.sleep(self._retry_backoff_s * attempt)
                finally:
                    self._db_idle.set()
            if error is not None:
                error_name = type(error).__name__
                if kind == DeadLetterReason.HANDLER_FAILED:
                    event_type = pending.delivery.envelope.type
                    reason, error_name = handler_failed(event_type, error, self.max_retries)
                try:
                    await self._dead_letter(record, reason, error_name, kind)
                except Exception as exc:
                    raise _InfrastructureError("the dead-letter topic is unreachable") from exc
            self._positions[tp] = max(self._positions.get(tp, 0), record.offset + 1)
        # Positions of everything else in the batch (dead-lettered, unknown, ignored).
        self._db_idle.clear()
        try:
            async with self._uow() as uow:
                await self._save_positions(uow.tx, batch.advance)
                await uow.commit_batch()
        except Exception as exc:
            raise _InfrastructureError("the database is unreachable") from exc
        finally:
            self._db_idle.set()
        self.metrics.batches += 1
        self._positions.update(batch.advance)

    async def _call(self, pending: _Pending, handler: Handler, uow: UnitOfWork) -> None:
        with _message_context(pending.delivery.envelope):
            await handler(uow, pending.delivery)

    async def _call_batch(self, batched: Sequence[_Pending], uow: UnitOfWork) -> None:
        """The batch handler with the batch's new events of its types, in order (no call without any).

        Outside any one message's context: a batch handler that emits events says which one caused
        each (e.g. the ranking projection, per candidate).
        """
        if batched and self.batch_handler is not None:
            await self.batch_handler(uow, [p.delivery for p in batched])

    def _uow(self) -> BatchUnitOfWork:
        return BatchUnitOfWork(
            self._session_factory, self.settings, self._clock, on_outbox_commit=self.on_outbox_commit
        )

    async def _claim(self, tx: Transaction, ids: list[str]) -> set[str]:
        """Record the event ids as processed; return those not recorded before."""
        connection = await tx.connection()
        return {row[0] for row in await connection.fetch(_CLAIM, self.name, ids)}

    async def _save_positions(self, tx: Transaction, advance: Mapping[TopicPartition, int]) -> None:
        await self._stored.save(tx, self._cluster_id, advance)

    async def _infrastructure_failed(self, exc: BaseException) -> bool:
        """Was `exc` the database going away rather than the handler's own fault?"""
        if isinstance(exc, DisconnectionError | InterfaceError | OSError | ConnectionError):
            return True
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
            return True
        try:
            async with asyncio.timeout(2), self._session_factory() as session:
                await session.execute(sa.text("SELECT 1"))
        except Exception:
            return True
        return False

    # -- Kafka side -------------------------------------------------------------------------------

    async def _dead_letter(self, record: Record, reason: str, error: str, kind: str) -> None:
        await self._dead_letters.send(record, reason, error)
        self.metrics.dead_lettered += 1
        by_reason = self.metrics.dead_lettered_by_reason
        by_reason[kind] = by_reason.get(kind, 0) + 1

    async def _commit_kafka(self, consumer: AIOKafkaConsumer, records: Sequence[Record]) -> None:
        """Note the batch's stored positions for the mirror into Kafka's group offsets (lag tools read
        them), and send it when the last one is `mirror_interval_s` old."""
        if self.group_id is None:
            return
        for tp in {TopicPartition(r.topic, r.partition) for r in records}:
            if tp in self._positions:
                self._unmirrored[tp] = self._positions[tp]
        await self._mirror_if_due(consumer)

    async def _mirror_if_due(self, consumer: AIOKafkaConsumer) -> None:
        if self._unmirrored and time.monotonic() >= self._next_mirror:
            await self._mirror(consumer)

    async def _mirror(self, consumer: AIOKafkaConsumer, only: Iterable[TopicPartition] | None = None) -> None:
        """Commit the noted positions (of the partitions `only`, else all) to Kafka's group offsets."""
        if only is None:
            offsets, self._unmirrored = self._unmirrored, {}
        else:
            offsets = {tp: self._unmirrored.pop(tp) for tp in only if tp in self._unmirrored}
        if not offsets:  # (only a group's consumer notes positions: `_commit_kafka`)
            return
        self._next_mirror = time.monotonic() + self._mirror_interval_s
        try:
            # Bounded: a broker that went away must not hold up a stop or a rebalance for a courtesy.
            await asyncio.wait_for(consumer.commit(offsets), MIRROR_TIMEOUT_S)
        except Exception as exc:  # rebalanced meanwhile, or no broker: the database positions still hold
            log.info("consumer %s: Kafka offset commit skipped: %r", self.name, exc)

    def _rewind(self, consumer: AIOKafkaConsumer, records: Sequence[Record]) -> None:
        """Seek the partitions of a batch that failed back to their committed positions."""
        first: dict[TopicPartition, int] = {}
        for r in records:
            tp = TopicPartition(r.topic, r.partition)
            first[tp] = min(first.get(tp, r.offset), r.offset)
        assigned = consumer.assignment()
        for tp, offset in first.items():
            if tp in assigned:
                consumer.seek(tp, self._positions.get(tp, offset))

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    # -- rebalances (group mode) ------------------------------------------------------------------

    async def _on_assigned(self, consumer: AIOKafkaConsumer, assigned: set[TopicPartition]) -> None:
        self._assigning = True
        try:
            await self._seek_to_stored(consumer, sorted(assigned))
        finally:
            self._assigning = False

    async def _on_revoked(self, revoked: set[TopicPartition]) -> None:
        self._assigning = True
        # Let a batch transaction in flight commit, so the next owner reads its positions.
        await self._db_idle.wait()
        if self._consumer is not None:
            await self._mirror(self._consumer, only=revoked)  # the group's offsets, before they move
        for tp in revoked:
            self._positions.pop(tp, None)
            self._positioned.discard(tp)


class _SeekOnAssign(ConsumerRebalanceListener):
    def __init__(self, owner: IdempotentConsumer, consumer: AIOKafkaConsumer) -> None:
        self._owner = owner
        self._consumer = consumer

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._owner._on_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._owner._on_assigned(self._consumer, assigned)


def _fresh_highwaters(
    consumer: AIOKafkaConsumer, partitions: Iterable[TopicPartition], fresh_s: float
) -> dict[TopicPartition, int]:
    """The high-water marks of `partitions` whose last fetch came back under `fresh_s` ago (`inf`:
    every one known)."""
    oldest_ms = (time.time() - fresh_s) * 1000  # aiokafka stamps fetches with the wall clock, in ms
    fresh: dict[TopicPartition, int] = {}
    assigned = consumer.assignment()  # a partition revoked meanwhile has no fetch state to read
    for tp in partitions:
        if tp not in assigned:
            continue
        highwater, fetched_ms = consumer.highwater(tp), consumer.last_poll_timestamp(tp)
        if highwater is not None and fetched_ms is not None and fetched_ms >= oldest_ms:
            fresh[tp] = highwater
    return fresh


@contextlib.contextmanager
def _message_context(envelope: Envelope) -> Iterator[None]:
    """Events a handler emits are caused by this one and continue its conversation."""
    corr = context.correlation_id.set(envelope.correlationid or envelope.id)
    cause = context.causation_id.set(envelope.id)
    try:
        yield
    finally:
        context.causation_id.reset(cause)
        context.correlation_id.reset(corr)


__all__ = [
    "BatchHandler",
    "ClusterMismatchError",
    "ConsumerMetrics",
    "DeadLetterReason",
    "Delivery",
    "Handler",
    "IdempotentConsumer",
    "MissingTopicError",
    "UnreadableEvent",
    "dead_letter_headers",
    "read_event",
]
