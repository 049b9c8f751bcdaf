"""Regression test (found by the journey test): ranking's events continue the conversation that moved
the candidate.

The projection applies a consumer batch just before it commits, after every handler ran and outside
their message context, so `Ranked` / `RemovedFromPool` got a fresh correlation id per batch instead of
the one of the request that caused them. The real projection and unit of work over a real PostgreSQL
session (the platform tables: the outbox is where the events are read back); only the ranking row store
is a stand-in with nobody in it yet.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from ranking_service.application.projection import RankingProjection
from ranking_service.domain.candidate import CandidateRow
from ranking_service.domain.view import PoolView
from ranking_service.settings import RankingSettings
from shared import context
from shared.clock import Clock
from shared.consumer import Delivery
from shared.db import outbox
from shared.envelope import Envelope
from shared.events.catalogue import PROFILE_TOPIC, ProfileSubmitted
from shared.messages import envelope_for
from shared.rules.crs import CURRENT_RULES
from shared.rules.document import PROFILE_DOCUMENT_EXAMPLE
from shared.testing import PlatformDatabase
from shared.uow import UnitOfWork

pytestmark = pytest.mark.infra

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


class NewRows:
    """The projection table with nobody in it yet."""

    def __init__(self, session: Any) -> None:
        self.session = session

    async def lock(self, profile_ids: Sequence[str]) -> dict[str, CandidateRow]:
        return {}

    async def save(self, rows: Sequence[CandidateRow], now: datetime) -> None:
        return None

    async def scoring_rules(self) -> str | None:
        return None  # never activated: each day the version in force on it


def submitted(profile_id: str, correlation: str) -> Delivery:
    event = ProfileSubmitted(
        profile_id=profile_id, owner="partner-1", document=PROFILE_DOCUMENT_EXAMPLE,
        eligible_programs=["fsw"], submitted_at=NOW, expires_at=NOW.replace(year=2027),
    )  # fmt: skip
    envelope: Envelope = envelope_for(
        event, source="ee/profile", time=NOW, aggregate_id=profile_id, aggregate_version=2,
        correlation_id=correlation, causation_id=correlation,
    )  # fmt: skip
    return Delivery(envelope, event, "t." + PROFILE_TOPIC, 0, 7)


async def test_each_ranked_carries_the_correlation_of_the_event_that_moved_its_candidate(
    platform_db: PlatformDatabase,
) -> None:
    settings = RankingSettings(env="test", topic_prefix="t.")
    clock = Clock.frozen(NOW)
    projection = RankingProjection(PoolView(CURRENT_RULES.name), NewRows, clock, emit=True)
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    deliveries = [submitted(first, "request-a"), submitted(second, "request-b")]

    async with UnitOfWork(platform_db.sessions, settings, clock) as uow:
        await projection.apply(uow, deliveries)
        await uow.commit()

    async with platform_db.sessions() as session:
        payloads = (await session.execute(sa.select(outbox.c.payload).order_by(outbox.c.id))).scalars()
        published = [orjson.loads(payload) for payload in payloads]
    by_profile = {body["subject"]: body for body in published}
    assert {body["type"] for body in published} == {"ee.ranking.Ranked.v1"}
    assert by_profile[first]["correlationid"] == "request-a"
    assert by_profile[first]["causationid"] == deliveries[0].envelope.id
    assert by_profile[second]["correlationid"] == "request-b"
    assert by_profile[second]["causationid"] == deliveries[1].envelope.id
    assert context.correlation_id.get() is None and context.causation_id.get() is None
