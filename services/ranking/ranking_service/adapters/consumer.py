"""The projection's Kafka consumer, and the runtime part that loads the pool before consuming."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ranking_service.application.jobs import RankingJobs
from ranking_service.application.projection import RankingProjection
from ranking_service.domain.candidate import HANDLED_EVENTS
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
        batch_types=[event.event_name() for event in HANDLED_EVENTS],
        group_id=settings.group_id,
        batch_size=batch_size or settings.consumer_batch_size,
        on_outbox_commit=on_outbox_commit,
    )


class ProjectionRunner:
    """Runtime part: read the projection table into memory, then consume from the stored positions.

    After a crash the supervisor runs it again, and it reloads the pool from the table: whatever the
    memory missed (a commit whose after-commit step failed), the table and positions have.
    """

    name = "ranking-projection"

    def __init__(self, jobs: RankingJobs, consumer: Callable[[], IdempotentConsumer]) -> None:
        self.jobs = jobs
        self.make_consumer = consumer
        self.consumer: IdempotentConsumer | None = None
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        await self.jobs.load_exclusively()
        if self._stopping.is_set():
            return
        self.consumer = self.make_consumer()
        await self.consumer.run()

    def ready(self) -> bool | str:
        """Readiness (`/readyz` check "projection"): the pool is in memory and the consumer runs."""
        if not self.jobs.projection.view.loaded:
            return "The ranking pool is not loaded into memory yet."
        if self.consumer is None or not self.consumer.running:
            return "The ranking projection's consumer is not running."
        return True

    async def stop(self) -> None:
        self._stopping.set()
        if self.consumer is not None:
            await self.consumer.stop()
