"""Every ranking instance holds the whole pool: it follows the scored stream, `ee.ranking.events`.

Scoring is split across the instances by the consumer group (each scores the profiles of its
partitions, in the shared database, and publishes `Ranked` / `RemovedFromPool` / `PoolDetailsChanged`
through the outbox). Each instance also reads every partition of the ranking topic (no group) and, for
each batch of records, reads the named profiles' committed rows from the shared table (one query) and
applies them to its view when newer than what it holds (the row's `revision`). The stream says who
changed and in which order; the table gives the whole standing (the details queries show, which the
events do not carry). `RulesActivated` switches the view's rules and starts this instance's sweep.

Start: the ranking topic's end offsets are read before the table is loaded, and the follower starts
from them, so every change committed after the load is read again (applied or skipped by revision),
and every change published before was already in the table. The instance is ready once the follower
has read up to the end offsets measured after the load.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Final

import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ranking_service.application.jobs import RankingJobs
from ranking_service.application.ports import StoredStanding, StoreFactory
from ranking_service.application.projection import apply_to_view
from ranking_service.domain.pool import PoolEntry, from_us
from ranking_service.domain.view import MemoryChange, PoolView
from ranking_service.settings import RankingSettings
from shared import kafka_admin
from shared.cooperative import in_slices
from shared.envelope import Envelope, EnvelopeError, decode
from shared.errors import Unavailable
from shared.events.catalogue import PROFILE_TOPIC, RANKING_TOPIC, CandidateEvent, RulesActivated
from shared.events.registry import REGISTRY, UnknownEventType

log = logging.getLogger(__name__)

SYNC_TIMEOUT_S: Final = 10.0
_POLL_S: Final = 0.01
_LAST_OUTBOX_ROW: Final = sa.text("SELECT coalesce(max(id), 0) FROM outbox")
_UNPUBLISHED_UP_TO: Final = sa.text(
    "SELECT EXISTS (SELECT 1 FROM outbox WHERE published_at IS NULL AND id <= :last)"
)


class NotInSync(Unavailable):
    """The view could not catch up with what was committed before the query in time."""

    title = "Pool catching up"

    def __init__(self) -> None:
        super().__init__(
            "This ranking instance has not yet read every change committed before your request; "
            "retry in a few seconds.",
            retry_after=2,
        )


class ScoredStreamFollower:
    """Reads the ranking topic's every partition into the view (see the module docstring)."""

    def __init__(
        self,
        settings: RankingSettings,
        sessions: async_sessionmaker[AsyncSession],
        view: PoolView,
        jobs: RankingJobs,
        store_for: StoreFactory,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.view = view
        self.jobs = jobs
        self.store_for = store_for
        self.topic = settings.topic(RANKING_TOPIC)
        self.partitions: list[TopicPartition] = []
        self.profile_partitions = 0  # partition count of the profile topic: the rescoring slots
        self.next_offsets: dict[TopicPartition, int] = {}
        self.caught_up = False
        self.following = False
        self.applied = 0  # standings read from the table and applied (metrics, tests)
        self._consumer: AIOKafkaConsumer | None = None
        self._offsets: AIOKafkaConsumer | None = None
        self._moved = asyncio.Event()
        self._stopping = asyncio.Event()

    # --- start -----------------------------------------------------------------------------------

    async def describe(self) -> None:
        """The ranking topic's partitions and the profile topic's partition count (waits for both)."""
        delay = 0.2
        while True:
            async with kafka_admin.admin_client(self.settings.kafka_bootstrap_servers) as admin:
                described = await admin.describe_topics([self.topic, self.settings.topic(PROFILE_TOPIC)])
            counts = {t["topic"]: t["partitions"] for t in described if not t["error_code"]}
            if counts.get(self.topic) and counts.get(self.settings.topic(PROFILE_TOPIC)):
                self.partitions = sorted(
                    TopicPartition(self.topic, p["partition"]) for p in counts[self.topic]
                )
                self.profile_partitions = len(counts[self.settings.topic(PROFILE_TOPIC)])
                return
            log.warning("ranking follower: topics %s do not exist yet; waiting", self.topic)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def end_offsets(self) -> dict[TopicPartition, int]:
        """The topic's end offsets now, asked on a connection of their own: Kafka answers a connection's
        requests in order, and the follower's fetch waits up to 500 ms for records."""
        if self._offsets is None:
            offsets = AIOKafkaConsumer(
                bootstrap_servers=self.settings.kafka_bootstrap_servers,
                group_id=None,
                client_id=f"ee-{self.settings.service_name}-follower-offsets",
                enable_auto_commit=False,
            )
            await offsets.start()
            self._offsets = offsets
        try:
            ends: dict[TopicPartition, int] = await self._offsets.end_offsets(self.partitions)
        except Exception:
            offsets, self._offsets = self._offsets, None
            await offsets.stop()
            raise
        return ends

    async def _open(self) -> AIOKafkaConsumer:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            group_id=None,
            client_id=f"ee-{self.settings.service_name}-follower",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=2_000,
        )
        await consumer.start()
        consumer.assign(self.partitions)
        self._consumer = consumer
        return consumer

    # --- the loop --------------------------------------------------------------------------------

    async def run(self, start: Mapping[TopicPartition, int]) -> None:
        """Follow the topic from `start` until stopped (or until the task is cancelled)."""
        self._stopping = asyncio.Event()  # a run after a crash of the runner starts afresh
        consumer = self._consumer or await self._open()
        for tp in self.partitions:
            consumer.seek(tp, start.get(tp, 0))
        self.next_offsets = {tp: start.get(tp, 0) for tp in self.partitions}
        self.caught_up = False
        self.following = True
        target = await self.end_offsets()
        try:
            while not self._stopping.is_set():
                if not self.caught_up and all(self.next_offsets[tp] >= end for tp, end in target.items()):
                    self.caught_up = True
                    log.info("ranking follower caught up with %s", self.topic)
                batches = await consumer.getmany(timeout_ms=200)
                if batches:
                    await self._apply(batches)
        finally:
            self.following = False
            self._consumer = None
            await consumer.stop()
            offsets, self._offsets = self._offsets, None
            if offsets is not None:
                await offsets.stop()

    async def stop(self) -> None:
        self._stopping.set()

    async def _apply(self, batches: Mapping[TopicPartition, list[object]]) -> None:
        touched: dict[str, None] = {}
        rules: list[tuple[str, str | None]] = []
        advance: dict[TopicPartition, int] = {}
        every = ((tp, record) for tp, records in batches.items() for record in records)
        async for tp, record in in_slices(every):  # the queries run between slices of decoding
            advance[tp] = record.offset + 1  # type: ignore[attr-defined]
            try:
                envelope = decode(record.value or b"")  # type: ignore[attr-defined]
                event = REGISTRY.parse(envelope)
            except (EnvelopeError, UnknownEventType, ValueError) as exc:
                log.warning("ranking follower: skipping an unreadable record of %s (%r)", tp, exc)
                continue
            if isinstance(event, RulesActivated):
                rules.append((event.rules_version, envelope.correlationid or envelope.id))
            elif isinstance(event, CandidateEvent) and not self._holds(event.profile_id, envelope):
                touched[event.profile_id] = None
        if touched:
            standings = await self._standings(list(touched))
            changes = []
            for standing in standings:
                if standing.row is None or standing.info is None:
                    changes.append(MemoryChange(standing.profile_id, standing.revision, None, None))
                    continue
                profile_id, crs, submitted_us, programs, categories = standing.row
                entry = PoolEntry(
                    profile_id, crs, from_us(submitted_us), frozenset(programs), frozenset(categories)
                )
                changes.append(MemoryChange(profile_id, standing.revision, entry, standing.info))
            await apply_to_view(self.view, changes)
            self.applied += len(changes)
        for version, correlation in rules:
            self.jobs.rules_activated(version, correlation)
        for tp, offset in advance.items():
            self.next_offsets[tp] = max(self.next_offsets.get(tp, 0), offset)
        self._moved.set()
        self._moved = asyncio.Event()

    def _holds(self, profile_id: str, envelope: Envelope) -> bool:
        """Does the view already hold this scoring or a later one? (This instance's own scorings are
        applied after their commit, before the follower reads them: no need to read the row again.)

        The event's `aggregateversion` is the row's revision it was published with. A candidate the
        view does not hold is read (another instance scored it, or it left: the row says which).
        """
        revision = envelope.aggregateversion
        held = self.view.info(profile_id)
        return revision is not None and held is not None and held.revision >= revision

    async def _standings(self, profile_ids: list[str]) -> list[StoredStanding]:
        """The rows, retried while the database does not answer (the view waits; nothing is skipped)."""
        delay = 0.1
        while True:
            try:
                async with self.sessions() as session:
                    return await self.store_for(session).standings(profile_ids)
            except (OSError, DBAPIError) as exc:
                if self._stopping.is_set():
                    raise
                log.warning("ranking follower: the database does not answer (%r); retrying", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    # --- read-your-writes ------------------------------------------------------------------------

    async def sync(self, timeout_s: float = SYNC_TIMEOUT_S) -> dict[str, int]:
        """Wait until this view reflects every scoring committed before the call: the outbox rows
        written up to now are published, and this follower has read the ranking topic up to its end
        offsets after that. Returns those offsets ({"topic:partition": next offset}); raises
        `NotInSync` (503, retryable) after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        async with self.sessions() as session:
            last = (await session.execute(_LAST_OUTBOX_ROW)).scalar_one()
            while (await session.execute(_UNPUBLISHED_UP_TO, {"last": last})).scalar_one():
                await session.rollback()  # a fresh snapshot for the next look
                if time.monotonic() > deadline:
                    raise NotInSync()
                await asyncio.sleep(_POLL_S)
        try:
            target = await asyncio.wait_for(self.end_offsets(), max(0.1, deadline - time.monotonic()))
        except (TimeoutError, Exception) as exc:
            log.warning("ranking follower: end offsets unavailable (%r)", exc)
            raise NotInSync() from exc
        while not all(self.next_offsets.get(tp, 0) >= end for tp, end in target.items()):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise NotInSync()
            moved = self._moved
            try:
                await asyncio.wait_for(moved.wait(), min(remaining, 0.2))
            except TimeoutError:
                pass
        return {f"{tp.topic}:{tp.partition}": offset for tp, offset in sorted(target.items())}
