"""The clock job in a running service: reminders once each across a restart of the runtime, the
60-day deadline before/at/after through `PUT /v1/admin/clock`, COPR reminders and expiry. Real Kafka
and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from applications_infra import AppsDatabase, fresh_apps_database
from applications_service_harness import Service, application_body, running_service, types

from applications_service.main import build_app
from applications_service.settings import ApplicationsSettings
from shared import testing
from shared.clock import Clock
from shared.testing import SettingsFactory

pytestmark = pytest.mark.infra

START = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
OPS = ("ops-1", "ops")
OFFICER = ("officer-1", "officer")


@pytest.fixture(scope="module")
def settings(make_settings: SettingsFactory) -> ApplicationsSettings:
    return make_settings(ApplicationsSettings, db_pool_size=5)


@pytest.fixture(scope="module")
async def database(settings: ApplicationsSettings) -> AsyncIterator[AppsDatabase]:
    await testing.ensure_topics(settings, partitions=3)
    async with fresh_apps_database(settings) as db:
        yield db
    await testing.delete_topics(settings)


async def move_clock(service: Service, to: datetime) -> None:
    answer = await service.client.put(
        "/v1/admin/clock", json={"now": to.isoformat()}, headers=service.as_(*OPS)
    )
    assert answer.status_code == 200, answer.text


async def test_deadline_reminders_fire_once_each_across_a_restart(
    database: AppsDatabase, settings: ApplicationsSettings
) -> None:
    clock = Clock.frozen(START)
    async with running_service(settings, clock) as first:
        event = await first.invite()
        await move_clock(first, event.deadline - timedelta(days=13))
        published = await first.events(event.invitation_id, 1)
        assert [e["data"]["days_before"] for e in published] == [14]
    # A new runtime (new process): the job runs at once on start; nothing in memory says what was sent.
    async with running_service(settings, Clock.frozen(event.deadline - timedelta(days=13))) as second:
        await move_clock(second, event.deadline - timedelta(days=12))
        await move_clock(second, event.deadline - timedelta(days=2))
        published = await second.events(event.invitation_id, 2)
        await move_clock(second, event.deadline - timedelta(days=1))
    async with running_service(settings, Clock.frozen(event.deadline - timedelta(hours=1))) as third:
        await move_clock(third, event.deadline + timedelta(seconds=1))
        # Expiry comes after any repeated reminder on the invitation's partition: wait for it.
        drained = await third.events(event.invitation_id, 3)
    assert types(drained) == [
        "InvitationDeadlineApproaching",
        "InvitationDeadlineApproaching",
        "InvitationExpired",
    ]
    assert [e["data"].get("days_before") for e in drained] == [14, 3, None] and drained[:2] == published


async def test_deadline_exactly_at_sixty_days_before_at_and_after(
    database: AppsDatabase, settings: ApplicationsSettings
) -> None:
    clock = Clock.frozen(START)
    async with running_service(settings, clock) as service:
        before, at, after = [await service.invite() for _ in range(3)]
        assert at.deadline - at.invited_at == timedelta(days=60)
        await move_clock(service, at.deadline - timedelta(seconds=1))
        assert (await _apply(service, before.invitation_id, before.owner)).status_code == 201
        await move_clock(service, at.deadline)
        assert (await _apply(service, at.invitation_id, at.owner)).status_code == 201
        await move_clock(service, at.deadline + timedelta(seconds=1))
        refused = await _apply(service, after.invitation_id, after.owner)
        assert refused.status_code == 409 and refused.headers["content-type"] == "application/problem+json"
        assert "expired" in refused.json()["detail"]
        assert types(await service.events(after.invitation_id, 1))[-1] == "InvitationExpired"
        assert "InvitationExpired" not in types(await service.events(at.invitation_id, 1))


async def test_copr_reminders_and_expiry_once_each(
    database: AppsDatabase, settings: ApplicationsSettings
) -> None:
    clock = Clock.frozen(START)
    async with running_service(settings, clock) as service:
        event = await service.invite(citizenship="GB")
        body = application_body(event.invitation_id, clock.today(), country="GB")
        body["passport"]["expiry"] = str(clock.today() + timedelta(days=100))  # the COPR expires with it
        headers = {**service.as_(event.owner, "candidate"), "If-Match": '"1"'}
        applied = await service.client.post("/v1/applications", json=body, headers=headers)
        path = f"/v1/applications/{applied.json()['application_id']}"
        decided = await service.client.post(
            f"{path}/decision",
            json={"decision": "approved"},
            headers={**service.as_(*OFFICER), "If-Match": '"3"'},
        )
        expires = clock.today() + timedelta(days=100)
        assert decided.json()["copr"]["expires_on"] == str(expires)
        expected = 3
        for days_before, more in ((59, 1), (13, 1), (13, 0), (0, 0), (-1, 1), (-2, 0)):
            await move_clock(service, START + timedelta(days=100 - days_before))
            expected += more
            published = await service.events(event.invitation_id, expected)
        current = await service.client.get(path, headers=service.as_(*OFFICER))
        late = await service.client.post(
            f"{path}/landing", headers={**service.as_(*OFFICER), "If-Match": current.headers["ETag"]}
        )
        published = await service.events(event.invitation_id, expected)
    assert types(published) == [
        "Applied",
        "Approved",
        "CoprIssued",
        "CoprExpiringSoon",
        "CoprExpiringSoon",
        "CoprExpired",
    ]
    assert [e["data"].get("days_before") for e in published[3:5]] == [60, 14]
    assert late.status_code == 409 and late.json()["state"] == "copr_expired"


async def _apply(service: Service, invitation_id: str, owner: str) -> httpx.Response:
    body = application_body(invitation_id, service.clock.today())
    headers = service.as_(owner, "candidate")
    for _ in range(5):  # the clock job may send a reminder (a new version) between the read and the write
        current = await service.client.get(f"/v1/invitations/{invitation_id}", headers=headers)
        answer = await service.client.post(
            "/v1/applications", json=body, headers={**headers, "If-Match": current.headers["ETag"]}
        )
        if answer.status_code != 412:
            break
    return answer


async def test_metrics_count_the_reminders_due_and_not_sent(
    database: AppsDatabase, settings: ApplicationsSettings
) -> None:
    async with running_service(settings, Clock.frozen(START + timedelta(days=400))) as service:
        event = await service.invite()  # later than the other tests' invitations: they expired by then
    # The service comes back 13 days before the deadline: until its clock job runs, one reminder is due.
    app = build_app(settings, clock=Clock.frozen(event.deadline - timedelta(days=13)))
    later = app.state.runtime  # not started: no clock job, only the routes
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://a") as client:
            scraped = (await client.get("/metrics")).text
    finally:
        await later.stop()
    due = [line for line in scraped.splitlines() if line.startswith("ee_applications_reminders_due{")]
    assert due == ['ee_applications_reminders_due{service="applications"} 1.0']
    async with running_service(settings, Clock.frozen(event.deadline - timedelta(days=13))) as service:
        await service.events(event.invitation_id, 1)  # the job ran at start and sent it
        scraped = (await service.client.get("/metrics")).text
    assert 'ee_applications_reminders_due{service="applications"} 0.0' in scraped.splitlines()
