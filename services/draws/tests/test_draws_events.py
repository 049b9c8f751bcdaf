"""What the draws service says on Kafka and hears from it: real PostgreSQL, real Kafka."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from draws_fixtures import *  # noqa: F403  (the fixtures)
from draws_fixtures import NOW, candidate
from draws_ranking_peer import RankingPeer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from draws_service.adapters.consumer import open_invitations_consumer
from draws_service.application.handlers import DrawsService, RoundRequest
from draws_service.settings import DrawsSettings
from shared import testing
from shared.clock import Clock
from shared.db import session_factory
from shared.envelope import decode, encode
from shared.events.catalogue import (
    APPLICATIONS_TOPIC,
    DRAWS_TOPIC,
    Applied,
    Event,
    InvitationDeclined,
    InvitationExpired,
    Invited,
    RoundOfInvitationsHeld,
)
from shared.events.registry import REGISTRY
from shared.messages import envelope_for
from shared.outbox import OutboxRelay

pytestmark = pytest.mark.infra


async def publish_all(engine: AsyncEngine, settings: DrawsSettings) -> int:
    relay = OutboxRelay(engine, settings)
    total = 0
    try:
        while count := await relay.publish_pending():
            total += count
    finally:
        await relay.stop()
    return total


async def test_a_round_reaches_kafka_as_valid_envelopes_keyed_by_profile(
    service: DrawsService, pool: RankingPeer, engine: AsyncEngine, draws_topics: DrawsSettings
) -> None:
    pool.load([candidate(450 + i % 40, minutes=i, programs=("cec", "fst")) for i in range(1500)])
    record = (await service.hold(RoundRequest("general", 1200), "kafka")).stored.record
    assert await publish_all(engine, draws_topics) == 1201

    async with testing.KafkaReader(draws_topics, draws_topics.topic(DRAWS_TOPIC)) as reader:
        records = await reader.read(1201, timeout=30)
    assert len(records) == 1201
    events = [(r.key, decode(r.value)) for r in records]
    held = [(k, e) for k, e in events if e.name == "RoundOfInvitationsHeld"]
    invited = [(k, e) for k, e in events if e.name == "Invited"]
    assert len(held) == 1 and len(invited) == 1200

    key, envelope = held[0]
    event = REGISTRY.parse(envelope)
    assert isinstance(event, RoundOfInvitationsHeld)
    assert key == record.round_id.encode() and event.round_number == record.round_number
    assert (event.invitations_count, event.cutoff_crs, event.held_at) == (1200, record.cutoff_crs, NOW)

    profiles = set()
    for key, envelope in invited:
        event = REGISTRY.parse(envelope)
        assert isinstance(event, Invited)
        assert key == event.profile_id.encode() and envelope.subject == event.profile_id
        assert envelope.source == "ee/draws" and envelope.type == "ee.draws.Invited.v1"
        assert event.round_id == record.round_id and event.program == "cec"
        assert event.deadline - event.invited_at == timedelta(days=60)
        assert event.owner == "partner-7" and event.citizenship == "IN"
        profiles.add(event.profile_id)
    assert len(profiles) == 1200


def _envelope(event: Event) -> bytes:
    return encode(envelope_for(event, source="ee/applications", time=NOW))


async def _status(engine: AsyncEngine) -> dict[str, str]:
    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT invitation_id::text, status FROM invitations"))
        return {row.invitation_id: row.status for row in rows}


async def test_declined_expired_and_applied_close_invitations_once(
    service: DrawsService,
    pool: RankingPeer,
    engine: AsyncEngine,
    draws_topics: DrawsSettings,
    clock: Clock,
) -> None:
    pool.load([candidate(500 - i) for i in range(4)])
    await service.hold(RoundRequest("general", 4), "to-close")
    async with engine.connect() as conn:
        itas = list(
            await conn.execute(text("SELECT invitation_id::text, profile_id FROM invitations ORDER BY rank"))
        )
    common: dict[str, Any] = {"owner": "partner-7"}
    closing = [
        InvitationDeclined(
            profile_id=itas[0].profile_id, invitation_id=itas[0].invitation_id, declined_at=NOW, **common
        ),
        InvitationExpired(
            profile_id=itas[1].profile_id, invitation_id=itas[1].invitation_id, expired_at=NOW, **common
        ),
        Applied(
            profile_id=itas[2].profile_id,
            invitation_id=itas[2].invitation_id,
            application_id="a-1",
            program="fsw",
            applied_at=NOW,
            **common,
        ),
    ]
    topic = draws_topics.topic(APPLICATIONS_TOPIC)
    for event in closing:
        value = _envelope(event)
        await testing.produce(draws_topics, topic, [value, value], key=event.key().encode())  # redelivered

    consumer = open_invitations_consumer(draws_topics, session_factory(engine), clock)
    task = asyncio.create_task(consumer.run())
    try:
        await testing.wait_until(
            lambda: consumer.metrics.processed >= 3,
            timeout=30,
            message=lambda: str(consumer.metrics.as_dict()),
        )
        await testing.wait_until(lambda: consumer.metrics.duplicates >= 3, timeout=10)
    finally:
        await consumer.stop()
        await task
    assert await _status(engine) == {
        itas[0].invitation_id: "declined",
        itas[1].invitation_id: "expired",
        itas[2].invitation_id: "applied",
        itas[3].invitation_id: "open",
    }
