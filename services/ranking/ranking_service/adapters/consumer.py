"""The projection's Kafka consumer, and the runtime part that loads the pool before consuming."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiokafka import TopicPartition
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ranking_service.adapters.follower import ScoredStreamFollower
from ranking_service.application.events import EVENTS
from ranking_service.application.jobs import RankingJobs
from ranking_service.application.ports import Slots
from ranking_service.application.projection import RankingProjection
from ranking_service.settings import RankingSettings
from shared.consumer import IdempotentConsumer
from shared.events.catalogue import APPLICATIONS_TOPIC, DRAWS_TOPIC, PROFILE_TOPIC
from shared.uow import SupportsNow

log = logging.getLogger(__name__)

TOPICS = (PROFILE_TOPIC, DRAWS_TOPIC, APPLICATIONS_TOPIC)


def ranking_consumer(
    settings: RankingSettings,
    sessions: async_sessionmaker[AsyncSession],
    clock: SupportsNow,
    projection: RankingProjection,
    *,
    name: str | None = None,
    batch_size: int | None = None,
    on_outbox_commit: Callable[[], None] | None = None,
) -> IdempotentConsumer:
    """The consumer of the three topics the pool depends on: group "ranking", or every partition
    (`group_id=None`) for a replica."""
    return IdempotentConsumer(
        name or settings.consumer_name,
        settings,
        sessions,
        clock,
        topics=TOPICS,
        handlers={},
        batch_handler=projection.apply,
        batch_types=[model.event_name() for model in EVENTS.wire_models],
        group_id=settings.group_id,
        batch_size=batch_size or settings.consumer_batch_size,
        on_outbox_commit=on_outbox_commit,
    )


class ProjectionRunner:
    """Runtime part: read the projection table into memory, follow the scored stream (every instance
    holds the whole pool), then score this instance's partitions from the stored positions.

    After a crash the supervisor runs it again, and it reloads the pool from the table: whatever the
    memory missed (a commit whose after-commit step failed), the table and positions have.
    A read replica (its own database, scoring every partition itself) follows no stream.
    """

    name = "ranking-projection"

    def __init__(
        self,
        jobs: RankingJobs,
        consumer: Callable[[], IdempotentConsumer],
        follower: ScoredStreamFollower | None = None,
    ) -> None:
        self.jobs = jobs
        self.make_consumer = consumer
        self.follower = follower
        self.consumer: IdempotentConsumer | None = None
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        follower = self.follower
        start: dict[TopicPartition, int] = {}
        if follower is not None:
            await follower.describe()
            start = await follower.end_offsets()  # before the load: see adapters/follower.py
        await self.jobs.load_exclusively()
        if self._stopping.is_set():
            return
        self.consumer = self.make_consumer()
        if follower is None:
            await self.consumer.run()
            return
        following = asyncio.create_task(follower.run(start), name="ranking-follower")
        scoring = asyncio.create_task(self.consumer.run(), name="ranking-scorer")
        try:
            done, _ = await asyncio.wait({following, scoring}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # a crash of either: the supervisor runs the whole part again
        finally:
            await follower.stop()
            await self.consumer.stop()
            for task in (following, scoring):
                task.cancel()
            await asyncio.gather(following, scoring, return_exceptions=True)

    def slots(self) -> Slots | None:
        """This instance's rescoring share: the partitions of the profile topic it is assigned (none
        before the assignment); every profile for a replica (it scores all of its own database)."""
        if self.follower is None:
            return None
        consumer, count = self.consumer, self.follower.profile_partitions
        topic = self.follower.settings.topic(PROFILE_TOPIC)
        assigned = consumer.positions() if consumer is not None else {}
        return frozenset(tp.partition for tp in assigned if tp.topic == topic), max(count, 1)

    def ready(self) -> bool | str:
        """Readiness (`/readyz` check "projection"): the pool is in memory, up to date with the scored
        stream, and the consumer runs."""
        if not self.jobs.projection.view.loaded:
            return "The ranking pool is not loaded into memory yet."
        if self.follower is not None and not self.follower.caught_up:
            return "The ranking pool is catching up with the scored stream."
        if self.consumer is None or not self.consumer.running:
            return "The ranking projection's consumer is not running."
        return True

    async def sync(self) -> dict[str, int]:
        """Read-your-writes for the draws' selection (`ScoredStreamFollower.sync`); {} for a replica
        (it applies its own commits) or before the follower runs (the pool is not loaded then)."""
        if self.follower is None or not self.follower.following:
            return {}
        return await self.follower.sync()

    async def stop(self) -> None:
        self._stopping.set()
        if self.follower is not None:
            await self.follower.stop()
        if self.consumer is not None:
            await self.consumer.stop()
