"""The applications service running for real in a test: its runtime (relay, consumers, clock job) on a
fresh database and topic prefix, called over HTTP through its ASGI app, its events read back from Kafka."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import httpx
import orjson

from applications_service.main import build_app
from applications_service.settings import ApplicationsSettings
from shared.auth import mint_token
from shared.clock import Clock
from shared.envelope import decode, encode
from shared.events.catalogue import APPLICATIONS_TOPIC, DRAWS_TOPIC, PROFILE_TOPIC, Event, Invited
from shared.messages import envelope_for
from shared.runtime import ServiceRuntime
from shared.settings import ServiceSettings
from shared.testing import KafkaReader, produce, wait_until

Json = dict[str, Any]


def token(settings: ServiceSettings, sub: str, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(settings.auth_secret, sub, role)}"}


async def publish(settings: ServiceSettings, event: Event, source: str) -> None:
    """Put a catalogue event on its (prefixed) topic as its producer would."""
    envelope = envelope_for(event, source=source, time=datetime.now().astimezone())
    await produce(settings, settings.topic(event.topic), [encode(envelope)], key=event.key().encode())


def invited_now(clock: Clock, **overrides: Any) -> Invited:
    now = clock.now()
    fields: dict[str, Any] = {
        "profile_id": f"p-{uuid.uuid4()}",
        "owner": f"candidate-{uuid.uuid4().hex[:8]}",
        "invitation_id": str(uuid.uuid4()),
        "round_id": str(uuid.uuid4()),
        "round_number": 444,
        "program": "fsw",
        "crs": 512,
        "citizenship": "IN",
        "invited_at": now,
        "deadline": now + timedelta(days=60),
    }
    fields.update(overrides)
    return Invited(**fields)


def application_body(
    invitation_id: str, today: date, country: str = "IN", funds: int | None = 20_000
) -> Json:
    return {
        "invitation_id": invitation_id,
        "passport": {"number": "Z1234567", "country": country, "expiry": str(today + timedelta(days=2000))},
        "medical_exam_date": str(today - timedelta(days=10)),
        "police_certificates": True,
        "proof_of_funds_cad": funds,
    }


@dataclass
class Service:
    settings: ApplicationsSettings
    runtime: ServiceRuntime
    client: httpx.AsyncClient
    clock: Clock
    seen: list[Json] = field(default_factory=list)

    def as_(self, sub: str, role: str) -> dict[str, str]:
        return token(self.settings, sub, role)

    async def invite(self, **overrides: Any) -> Invited:
        """Publish Invited on the draws topic and wait until the service shows the invitation."""
        event = invited_now(self.clock, **overrides)
        await publish(self.settings, event, "ee/draws")
        headers = self.as_("ops-1", "ops")

        async def visible() -> bool:
            answer = await self.client.get(f"/v1/invitations/{event.invitation_id}", headers=headers)
            return answer.status_code == 200

        await wait_until(visible, timeout=30, message=f"invitation {event.invitation_id} never appeared")
        return event

    async def events(self, invitation_id: str, at_least: int, timeout: float = 20.0) -> list[Json]:  # noqa: ASYNC109
        """Our events about one invitation on `ee.applications.events`, as decoded envelopes."""
        topic = self.settings.topic(APPLICATIONS_TOPIC)
        mine: list[Json] = []

        async def enough() -> bool:
            async with KafkaReader(self.settings, topic) as reader:
                records = await reader.drain(quiet_s=0.3)
            mine[:] = [_json(r.value) for r in records if _about(r.value, invitation_id)]
            return len(mine) >= at_least

        await wait_until(
            enough,
            timeout=timeout,
            interval=0.2,
            message=lambda: f"{invitation_id}: wanted {at_least} events, got {_types(mine)}",
        )
        return mine


def _json(raw: bytes | None) -> Json:
    assert raw is not None
    envelope = decode(raw)
    return {
        "type": envelope.name,
        "data": envelope.data,
        "subject": envelope.subject,
        "correlationid": envelope.correlationid,
        "aggregateversion": envelope.aggregateversion,
    }


def _about(raw: bytes | None, invitation_id: str) -> bool:
    return raw is not None and orjson.loads(raw)["data"].get("invitation_id") == invitation_id


def _types(events: list[Json]) -> list[str]:
    return [e["type"] for e in events]


def types(events: list[Json]) -> list[str]:
    return _types(events)


@asynccontextmanager
async def running_service(
    settings: ApplicationsSettings, clock: Clock, scheduler_interval_s: float = 3600.0
) -> AsyncIterator[Service]:
    """Start the runtime (relay, consumers, clock job) and serve its app in-process."""
    quick = settings.model_copy(update={"scheduler_interval_s": scheduler_interval_s})
    app = build_app(quick, clock=clock)
    runtime: ServiceRuntime = app.state.runtime
    await runtime.start()
    try:
        for consumer in runtime.consumers:
            await consumer.wait_ready(timeout=30)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://applications") as client:
            yield Service(settings, runtime, client, clock)
    finally:
        await runtime.stop()


__all__ = [
    "DRAWS_TOPIC",
    "PROFILE_TOPIC",
    "Service",
    "application_body",
    "publish",
    "running_service",
    "types",
]
