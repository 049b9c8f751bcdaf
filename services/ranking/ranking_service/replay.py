"""The rebuild's engine: replay the log into a fresh projection database, fast, with the same result.

The live consumer applies events in batches, one transaction each: it claims every event id in
`processed_messages`, locks and rescores the touched rows, upserts them and stores its positions. A
rebuild into a fresh database needs none of that per batch, because the merge of facts is
deterministic whatever the order and the batching (`domain.candidate`): profile facts follow the
stream's `aggregateversion` (an old or repeated version changes nothing), invitation states only move
up. So the replay

1. reads every partition up to its end offset at the start, merging the events into facts in
   memory (a profile event without a stream version, the only kind a redelivery could apply twice,
   is deduplicated by event id);
2. scores each profile whose facts changed **once**, at the end, as of the clock's now (what the
   last batch touching it would have done), and writes the rows with COPY, one transaction per shard;
3. stores the consumer positions (the end offsets, with the cluster id) under the live consumer's
   name, so the rebuilt database can take over from the live one.

Envelopes are decoded with orjson; the common profile events (created, submitted, updated: the ones
carrying a document) are checked field by field against their catalogue shape without building a
pydantic model, and anything that does not match that shape exactly goes through the consumer's own
reading (`shared.consumer.read_event`), which decides as the consumer would: dead-lettered with the
same reason, skipped as unknown, or applied. A document that is not a valid profile document still
makes the profile `unscorable` at scoring time, as in the live projection.

Profile events are keyed by `profile_id`, so each profile's stream lives in one partition of
`ee.profile.events`: those partitions are split between worker processes (2 on this machine), each
merging, scoring and writing its own profiles. The events of the other topics (invitations,
applications: few) are read first, in this process, and handed to every worker, which applies those
about its profiles; the rest (profiles with no profile event) are written here.

What differs from the rows the live consumer would have written, none of it visible in the pool or its
fingerprint: `revision` is 1 (written once), `processed_messages` stays empty (the positions, and
the merge itself, make a redelivery a no-op), and a profile out of the pool at the end keeps no earlier
score (the live row keeps the last score it had while in the pool).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import multiprocessing
import re
import sys
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, TypeAlias

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from sqlalchemy.engine import make_url

from ranking_service.adapters.repository import COPY_COLUMNS, copy_record
from ranking_service.domain.candidate import (
    HANDLED_EVENTS,
    NO_STANDING,
    CandidateRow,
    ProfileFacts,
    apply_event,
    evaluate,
)
from ranking_service.domain.pool import is_profile_id
from ranking_service.settings import RankingSettings
from shared.consumer import UnreadableEvent, dead_letter_headers, read_event
from shared.db import asyncpg_connect_args
from shared.envelope import SPEC_VERSION
from shared.events.catalogue import (
    PROFILE_TOPIC,
    CandidateEvent,
    Event,
    ProfileCreated,
    ProfileSubmitted,
    ProfileUpdated,
)
from shared.events.registry import REGISTRY, UnknownEventType
from shared.messages import dlq_topic
from shared.producer import start_producer
from shared.rules.crs import pinned_rules

log = logging.getLogger(__name__)

Record: TypeAlias = ConsumerRecord[bytes, bytes]
Partition = tuple[str, int, int, int]  # topic, partition, first offset, end offset

MAX_RETRIES: Final = 3  # the consumer's default: a failing handler is named with it in the DLQ reason
COPY_CHUNK: Final = 2_000  # rows scored between two hand-overs to the COPY stream
INLINE_BELOW: Final = 20_000
"""Fewer profile events than this: replay in this process (starting workers costs about a second)."""
FETCH_BYTES: Final = 8 * 1024 * 1024
_DOCUMENT_EVENTS: Final = (ProfileCreated, ProfileSubmitted, ProfileUpdated)


# --- reading one record -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Item:
    """One event, reduced to what the merge needs."""

    profile_id: str
    owner: str
    event: Event
    version: int | None
    event_id: str


class DeadRecord(Exception):
    """The consumer would dead-letter this record, with this reason."""

    def __init__(self, reason: str, error: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error = error


_HANDLED: Final = frozenset(HANDLED_EVENTS)
_REQUIRED: Final = ("specversion", "id", "source", "type", "time", "data")
_RFC3339: Final = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2})")
# Exactly the fields of each fast-read event: (required, optional).
_SHAPES: Final[dict[type[Event], tuple[frozenset[str], frozenset[str]]]] = {
    ProfileCreated: (frozenset({"profile_id", "owner", "document", "created_at"}), frozenset()),
    ProfileSubmitted: (
        frozenset({"profile_id", "owner", "document", "eligible_programs", "submitted_at", "expires_at"}),
        frozenset(),
    ),
    ProfileUpdated: (
        frozenset({"profile_id", "owner", "document", "status", "eligible_programs", "updated_at"}),
        frozenset({"submitted_at", "expires_at"}),
    ),
}
_current_models: dict[str, type[Event] | None] = {}


def read_item(value: bytes | None) -> Item | None:
    """The record as an item to merge; None when the consumer would skip or ignore it.

    Raises `DeadRecord` for what the consumer would dead-letter (unreadable, or rejected by the
    projection's handler).
    """
    try:
        envelope_id, version, event = _fast_read(value) or _slow_read(value)
    except UnknownEventType:
        return None
    if type(event) not in _HANDLED:
        return None  # a known type the projection has no handler for
    assert isinstance(event, CandidateEvent)
    if not is_profile_id(event.profile_id):
        # What the handler raises, after the consumer's retries.
        error = ValueError(f"profile_id {event.profile_id!r} is not a canonical lowercase UUID")
        raise DeadRecord(
            f"handler for {_type_of(value)} failed {MAX_RETRIES} times; last error: {error!r}", "ValueError"
        )
    return Item(event.profile_id, sys.intern(event.owner), event, version, envelope_id)


def _type_of(value: bytes | None) -> str:
    envelope, _ = read_event(value)
    return envelope.type


def _slow_read(value: bytes | None) -> tuple[str, int | None, Event]:
    try:
        envelope, event = read_event(value)
    except UnreadableEvent as exc:
        raise DeadRecord(exc.reason, exc.error) from exc
    return envelope.id, envelope.aggregateversion, event


def _fast_read(value: bytes | None) -> tuple[str, int | None, Event] | None:
    """The common profile events without pydantic; None for anything else (read the slow way)."""
    try:
        body = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return None
    if type(body) is not dict or any(name not in body for name in _REQUIRED):
        return None
    data, version, event_type = body["data"], body.get("aggregateversion"), body["type"]
    if body["specversion"] != SPEC_VERSION or type(data) is not dict or type(event_type) is not str:
        return None
    if version is not None and type(version) is not int:
        return None
    if _instant(str(body["time"]).replace("Z", "+00:00")) is None:
        return None
    model = _current_model(event_type)
    if model is None:
        return None
    fields = _fast_fields(model, data)
    if fields is None:
        return None
    return str(body["id"]), version, model.model_construct(**fields)


def _current_model(event_type: str) -> type[Event] | None:
    """The catalogue model when `event_type` is its current version (nothing to upcast)."""
    if event_type not in _current_models:
        try:
            model: type[Event] | None = REGISTRY.model_for(event_type)
        except UnknownEventType:
            model = None
        if model is not None and (model not in _SHAPES or model.event_type() != event_type):
            model = None
        if len(_current_models) < 1000:
            _current_models[event_type] = model
        return model
    return _current_models[event_type]


def _fast_fields(model: type[Event], data: dict[str, Any]) -> dict[str, Any] | None:
    """`data` as the model's fields when it has exactly the expected shape and types, else None."""
    required, optional = _SHAPES[model]
    keys = data.keys()
    if not required <= keys or not keys <= required | optional:
        return None
    fields = dict(data)
    for name, value in data.items():
        if name in ("profile_id", "owner", "status"):
            if type(value) is not str:
                return None
        elif name == "document":
            if type(value) is not dict:
                return None
        elif name == "eligible_programs":
            if type(value) is not list or any(type(code) is not str for code in value):
                return None
        elif value is None and name in optional:
            continue
        else:  # an instant
            instant = _instant(value) if type(value) is str and _RFC3339.fullmatch(value) else None
            if instant is None:
                return None
            fields[name] = instant
    return fields


def _instant(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


# --- merging --------------------------------------------------------------------------------------


@dataclass
class Stats:
    events: int = 0  # records read
    applied: int = 0  # events that changed a profile's facts
    unchanged: int = 0  # old versions and repeats
    skipped: int = 0  # unknown types, and known types the projection has no handler for
    dead_lettered: int = 0
    written: int = 0  # rows written

    def add(self, other: Stats) -> None:
        for name, value in vars(other).items():
            setattr(self, name, getattr(self, name) + value)


@dataclass
class Merge:
    """Facts of every profile heard of, merged in memory; documents kept as compact JSON."""

    facts: dict[str, ProfileFacts] = field(default_factory=dict)
    changed: set[str] = field(default_factory=set)
    documents: dict[str, str] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)  # ids of profile events without a stream version
    stats: Stats = field(default_factory=Stats)

    def apply(self, item: Item) -> None:
        if item.version is None and isinstance(item.event, _DOCUMENT_EVENTS):
            if item.event_id in self.seen:  # the consumer's processed_messages would drop it
                self.stats.unchanged += 1
                return
            self.seen.add(item.event_id)
        facts = self.facts.get(item.profile_id)
        if facts is None:
            facts = ProfileFacts(item.profile_id, item.owner)
        if not apply_event(facts, item.event, item.version):
            self.stats.unchanged += 1
            return
        self.stats.applied += 1
        self.facts[item.profile_id] = facts
        self.changed.add(item.profile_id)
        if facts.document is not None:  # a document event: keep it as JSON text (a dict costs ~5x more)
            # As text, not orjson's bytes: those keep the encoder's whole buffer (~8 KB), text is exact.
            self.documents[item.profile_id] = orjson.dumps(facts.document).decode()
            facts.document = None

    def rows(self, now: datetime, rules_name: str, ids: Iterable[str]) -> Iterator[tuple[Any, ...]]:
        """COPY records of these changed profiles, each evaluated once as of `now`."""
        rules = pinned_rules(rules_name)  # None: the version in force on the day of `now`
        for profile_id in ids:
            facts = self.facts[profile_id]
            packed = self.documents.get(profile_id)
            facts.document = None if packed is None else orjson.loads(packed)
            standing = evaluate(facts, NO_STANDING, now, rules)
            record = copy_record(CandidateRow(facts, standing, 1), now, packed)
            facts.document = None
            yield record


# --- one shard: read, merge, score, write ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Job:
    """What a shard does: its partitions of the profile topic, and where everything goes."""

    settings: dict[str, Any]  # RankingSettings fields (picklable for a worker process)
    consumer_name: str
    partitions: tuple[Partition, ...]
    others: tuple[Item, ...]  # events of the other topics, about any profile
    rules_name: str
    now: datetime


@dataclass(frozen=True, slots=True)
class ShardResult:
    stats: Stats
    others_used: frozenset[str]  # profiles of `others` this shard wrote (had profile events here)


def run_shard(job: Job) -> ShardResult:
    """Entry point of a worker process."""
    return asyncio.run(replay_shard(job))


async def replay_shard(job: Job) -> ShardResult:
    settings = RankingSettings(**job.settings)
    merge = Merge()
    with _no_cyclic_gc():
        await read_partitions(settings, job.consumer_name, job.partitions, merge.apply, merge.stats)
        own = {item.profile_id for item in job.others if item.profile_id in merge.facts}
        for item in job.others:
            if item.profile_id in own:
                merge.apply(item)
        ids = sorted(merge.changed)
        merge.stats.written = await write_rows(settings, merge.rows(job.now, job.rules_name, ids))
    return ShardResult(merge.stats, frozenset(own))


@contextlib.contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """No cyclic garbage collection while replaying: the merged facts grow to millions of objects,
    and each full collection would walk them all again (a third of the replay's time at 100,000
    profiles) to find no cycle; reference counting frees what the replay drops."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


async def read_partitions(
    settings: RankingSettings,
    consumer_name: str,
    partitions: Sequence[Partition],
    apply: Callable[[Item], None],
    stats: Stats,
) -> None:
    """Merge every record of `partitions` below their end offsets; dead-letter what cannot be read."""
    ends = {TopicPartition(topic, p): end for topic, p, begin, end in partitions if end > begin}
    if not ends:
        return
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=FETCH_BYTES,
        fetch_max_bytes=4 * FETCH_BYTES,
        client_id=f"ee-{settings.service_name}-rebuild",
    )
    dlq = _DeadLetters(settings, consumer_name)
    await consumer.start()
    try:
        consumer.assign(list(ends))
        for topic, p, begin, end in partitions:
            if end > begin:
                consumer.seek(TopicPartition(topic, p), begin)
        pending = dict(ends)
        while pending:
            batch = await consumer.getmany(*pending, timeout_ms=1000, max_records=20_000)
            for tp, records in batch.items():
                if tp not in pending:
                    continue
                end = pending[tp]
                for record in records:
                    if record.offset >= end:
                        break
                    stats.events += 1
                    try:
                        item = read_item(record.value)
                    except DeadRecord as dead:
                        await dlq.send(record, dead.reason, dead.error)
                        stats.dead_lettered += 1
                        continue
                    if item is None:
                        stats.skipped += 1
                    else:
                        apply(item)
            for tp in list(pending):
                # The position, not the last record: offsets a record does not hold (markers) count too.
                if await consumer.position(tp) >= pending[tp]:
                    del pending[tp]
                    consumer.pause(tp)
    finally:
        await consumer.stop()
        await dlq.close()


class _DeadLetters:
    """The consumer's DLQ records, sent as the consumer sends them (producer started on first use)."""

    def __init__(self, settings: RankingSettings, consumer_name: str) -> None:
        self.settings = settings
        self.consumer_name = consumer_name
        self.producer: AIOKafkaProducer | None = None

    async def send(self, record: Record, reason: str, error: str) -> None:
        if self.producer is None:
            self.producer = await start_producer(self.settings, f"{self.consumer_name}-dlq")
        headers = dead_letter_headers(record, reason, error, self.consumer_name)
        await (await self.producer.send(dlq_topic(record.topic), record.value, record.key, headers=headers))
        log.error("rebuild: %s:%d@%d sent to %s: %s", record.topic, record.partition, record.offset,
                  dlq_topic(record.topic), reason)  # fmt: skip

    async def close(self) -> None:
        if self.producer is not None:
            await self.producer.stop()


async def write_rows(settings: RankingSettings, rows: Iterable[tuple[Any, ...]]) -> int:
    """COPY the rows into `ranking_profiles` in one transaction; how many were written."""
    count = 0

    async def chunks() -> AsyncIterator[tuple[Any, ...]]:
        nonlocal count
        for row in rows:
            count += 1
            yield row
            if count % COPY_CHUNK == 0:
                await asyncio.sleep(0)  # let the COPY stream send what was scored meanwhile

    conn = await connect(settings.database_url)
    try:
        async with conn.transaction():
            await conn.copy_records_to_table("ranking_profiles", records=chunks(), columns=COPY_COLUMNS)
    finally:
        await conn.close()
    return count


async def connect(database_url: str) -> asyncpg.Connection:
    url = make_url(database_url)
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    return await asyncpg.connect(dsn, timeout=10, **asyncpg_connect_args(database_url))


# --- the whole replay -----------------------------------------------------------------------------


async def replay(
    settings: RankingSettings,
    consumer_name: str,
    partitions: Sequence[Partition],
    cluster_id: str,
    rules_name: str,
    now: datetime,
    *,
    workers: int | None = None,
) -> Stats:
    """Replay `partitions` (every partition of the three topics) into `settings`' fresh database."""
    profile_topic = settings.topic(PROFILE_TOPIC)
    profile_parts = [p for p in partitions if p[0] == profile_topic]
    other_parts = [p for p in partitions if p[0] != profile_topic]
    profile_events = sum(end - begin for _, _, begin, end in profile_parts)
    count = workers if workers is not None else (2 if profile_events >= INLINE_BELOW else 1)
    shards = split(profile_parts, max(1, min(count, len(profile_parts) or 1)))
    stats = Stats()
    collected: list[Item] = []
    if len(shards) == 1:
        await read_partitions(settings, consumer_name, other_parts, collected.append, stats)
        job = Job(settings.model_dump(), consumer_name, tuple(shards[0]), tuple(collected), rules_name, now)
        results = [await replay_shard(job)]
    else:
        async with _Processes(len(shards)) as processes:  # they start up while the other topics are read
            await read_partitions(settings, consumer_name, other_parts, collected.append, stats)
            fields, others = settings.model_dump(), tuple(collected)
            jobs = [Job(fields, consumer_name, tuple(shard), others, rules_name, now) for shard in shards]
            results = await processes.run(jobs)
    used: set[str] = set()
    for result in results:
        stats.add(result.stats)
        used |= result.others_used
    # Profiles heard of only on the other topics (an invitation for a profile with no profile event).
    rest = Merge()
    for item in collected:
        if item.profile_id not in used:
            rest.apply(item)
    rest.stats.written = await write_rows(settings, rest.rows(now, rules_name, sorted(rest.changed)))
    stats.written += rest.stats.written
    stats.applied += rest.stats.applied
    stats.unchanged += rest.stats.unchanged
    await save_positions(settings, consumer_name, partitions, cluster_id)
    return stats


class _Processes:
    """Worker processes for the shards ("spawn": fresh interpreters, no copy of this event loop).

    Started on entry (importing the service takes them about a second), stopped on exit; on a failure,
    a cancellation or a timeout they are terminated, so no shard goes on writing in the background.
    """

    def __init__(self, count: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.pool = ProcessPoolExecutor(max_workers=count, mp_context=context)
        self.count = count

    async def __aenter__(self) -> _Processes:
        loop = asyncio.get_running_loop()
        self.started = [loop.run_in_executor(self.pool, _started) for _ in range(self.count)]
        return self

    async def run(self, jobs: Sequence[Job]) -> list[ShardResult]:
        loop = asyncio.get_running_loop()
        await asyncio.gather(*self.started)
        return list(await asyncio.gather(*(loop.run_in_executor(self.pool, run_shard, job) for job in jobs)))

    async def __aexit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is not None:
            processes = getattr(self.pool, "_processes", None) or {}  # the executor's map: pid -> Process
            for process in list(processes.values()):
                process.terminate()
        self.pool.shutdown(wait=False, cancel_futures=True)


def _started() -> bool:
    """A worker's first task: by then it has imported this module, and with it the service."""
    return True


def split(partitions: Sequence[Partition], shards: int) -> list[list[Partition]]:
    """Partitions in `shards` groups of about the same number of events (largest first, to the least)."""
    groups: list[list[Partition]] = [[] for _ in range(shards)]
    loads = [0] * shards
    for partition in sorted(partitions, key=lambda p: p[3] - p[2], reverse=True):
        lightest = loads.index(min(loads))
        groups[lightest].append(partition)
        loads[lightest] += partition[3] - partition[2]
    return [group for group in groups if group] or [[]]


async def save_positions(
    settings: RankingSettings, consumer_name: str, partitions: Sequence[Partition], cluster_id: str
) -> None:
    """The next offset of every partition that had records: where the live consumer resumes."""
    rows = [(consumer_name, topic, p, end, cluster_id) for topic, p, begin, end in partitions if end > begin]
    conn = await connect(settings.database_url)
    try:
        await conn.executemany(
            "INSERT INTO consumer_positions (consumer, topic, partition, next_offset, cluster_id, "
            "updated_at) VALUES ($1, $2, $3, $4, $5, now())",
            rows,
        )
    finally:
        await conn.close()
