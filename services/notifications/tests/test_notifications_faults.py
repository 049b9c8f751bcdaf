"""kill -9 of the notifications service in the middle of a burst loses nothing: the service runs as a
real process (uvicorn), is SIGKILLed while deliveries are in flight, and started again; every event
reaches the receiver (a real process verifying signatures), each webhook-id once after dedupe, in
per-candidate order."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from notifications_harness import Receiver, ServiceProcess, publish, token

from notifications_service.settings import NotificationsSettings
from shared.events.catalogue import Applied, Approved, Event, InvitationDeadlineApproaching
from shared.testing import wait_until

pytestmark = pytest.mark.infra

CANDIDATES = 150
PER_CANDIDATE = 4


def _journey(owner: str, profile_id: str) -> list[Event]:
    now, invitation = datetime.now().astimezone(), str(uuid.uuid4())
    base = {"profile_id": profile_id, "owner": owner, "invitation_id": invitation}
    return [
        InvitationDeadlineApproaching(**base, deadline=now + timedelta(days=30), days_before=30),
        InvitationDeadlineApproaching(**base, deadline=now + timedelta(days=7), days_before=7),
        Applied(**base, application_id=f"a-{profile_id}", program="fsw", applied_at=now),
        Approved(**base, application_id=f"a-{profile_id}", decided_at=now),
    ]


@pytest.fixture
async def process(infra: NotificationsSettings, tmp_path: Path) -> AsyncIterator[ServiceProcess]:
    env = {
        "EE_ENV": "test",
        "EE_TOPIC_PREFIX": infra.topic_prefix,
        "EE_DB_SUFFIX": infra.db_suffix,
        "EE_NOTIFICATIONS_DATABASE_URL": infra.database_url,
        "EE_NOTIFICATIONS_RETRY_SCHEDULE": ",".join(str(s) for s in infra.retry_schedule_s),
        "EE_NOTIFICATIONS_POLL_INTERVAL_S": "0.1",
        "EE_NOTIFICATIONS_MAX_IN_FLIGHT": "4",
        "EE_AUTH_SECRET": infra.auth_secret,
    }
    running = ServiceProcess(env, tmp_path / "notifications.log")
    try:
        yield running
    finally:
        await running.stop()


async def test_kill_9_mid_burst_loses_nothing(
    infra: NotificationsSettings, process: ServiceProcess, tmp_path: Path
) -> None:
    await process.start()
    rcv = Receiver(tmp_path, {}, delay_ms=3)
    partner = token(infra, "portal-kill", "partner")
    async with httpx.AsyncClient(base_url=process.base_url, trust_env=False, timeout=10) as client:
        answer = await client.post(
            "/v1/webhooks/subscriptions",
            headers=partner,
            json={"url": rcv.url("/kill"), "event_types": ["ee.applications.*"]},
        )
        assert answer.status_code == 201, answer.text
    rcv.routes["/kill"] = answer.json()["secret"]
    journeys: dict[str, list[Event]] = {}
    events: list[Event] = []
    for i in range(CANDIDATES):
        profile_id = f"p-kill-{i}-{uuid.uuid4().hex[:6]}"
        journeys[profile_id] = _journey("portal-kill", profile_id)
        events += journeys[profile_id]
    await rcv.start()
    try:
        await publish(infra, events, "ee/applications")

        def distinct() -> int:
            return len({r["webhook_id"] for r in rcv.accepted("/kill")})

        await wait_until(
            lambda: distinct() >= len(events) // 10, timeout=60, message="the burst never started"
        )
        process.kill9()
        at_kill = distinct()
        assert at_kill < len(events), "the burst was over before the kill: nothing was tested"

        await process.start()
        await wait_until(
            lambda: distinct() >= len(events),
            timeout=120,
            message=lambda: f"{distinct()} of {len(events)} after the restart ({at_kill} before the kill)",
        )
    finally:
        await rcv.stop()

    records = rcv.accepted("/kill")
    assert not any("error" in r for r in rcv.records())
    first: dict[str, dict[str, object]] = {}
    order: dict[str, list[str]] = {}
    for record in records:
        if record["webhook_id"] in first:
            continue
        first[record["webhook_id"]] = record
        data = record["body"]["data"]
        order.setdefault(data["profile_id"], []).append(f"{record['body']['type']}/{data.get('days_before')}")
    assert len(first) == len(events)
    for profile_id, journey in journeys.items():
        assert order[profile_id] == [f"{e.event_type()}/{getattr(e, 'days_before', None)}" for e in journey]
    print(
        f"kill -9 after {at_kill} of {len(events)} distinct deliveries; "
        f"{len(records) - len(first)} sent again after the restart (same webhook-id)"
    )
