"""The profile service with Kafka in the loop: its events read back from the topic, the lock driven by
the draws and applications services' events, and the scheduler driven by the admin clock.

Real PostgreSQL and Kafka; the app runs in-process with its real runtime (relay, consumer, scheduler).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from profile_harness import T0, Service, example_document, running_service, settings_overrides

from profile_service.adapters.uow import profile_uow
from profile_service.application.scheduler import review_due
from profile_service.settings import ProfileSettings
from shared.envelope import Envelope, decode, encode
from shared.events.catalogue import (
    DRAWS_TOPIC,
    PROFILE_TOPIC,
    Applied,
    InvitationDeclined,
    InvitationExpired,
    Invited,
)
from shared.messages import envelope_for
from shared.testing import KafkaReader, SettingsFactory, produce, wait_until

pytestmark = pytest.mark.infra


@pytest.fixture(scope="module")
async def service(make_settings: SettingsFactory) -> AsyncIterator[Service]:
    async with running_service(make_settings(ProfileSettings, **settings_overrides())) as running:
        yield running


def sub() -> str:
    return f"cand-{uuid.uuid4().hex[:8]}"


async def profile_events(service: Service, profile_id: str, at_least: int) -> list[tuple[str, Envelope]]:
    """(key, envelope) of every record about `profile_id` on the profile topic, once `at_least` arrived."""
    topic = service.settings.topic(PROFILE_TOPIC)
    async with KafkaReader(service.settings, topic) as reader:

        def found() -> list[tuple[str, Envelope]]:
            pairs = [((r.key or b"").decode(), decode(r.value or b"")) for r in reader.records]
            return [(key, env) for key, env in pairs if env.data.get("profile_id") == profile_id]

        deadline = time.monotonic() + 15
        while len(found()) < at_least:
            assert time.monotonic() < deadline, f"{topic}: {len(found())} events of {profile_id}"
            await reader.drain(0.2)
        await reader.drain(0.3)
        return found()


def invited(profile: dict[str, Any], invitation_id: str) -> Invited:
    return Invited(
        profile_id=profile["id"],
        owner=profile["owner"],
        invitation_id=invitation_id,
        round_id="r-1",
        round_number=300,
        program="fsw",
        crs=501,
        citizenship="IN",
        invited_at=T0,
        deadline=T0 + timedelta(days=60),
    )


async def put(service: Service, me: str, profile_id: str, version: int, **changes: Any) -> int:
    response = await service.client.put(
        f"/v1/profiles/{profile_id}",
        json=example_document(**changes),
        headers={**service.auth(me), "If-Match": f'"{version}"'},
    )
    return response.status_code


async def set_clock(service: Service, now: str) -> None:
    ops = service.auth("ops-1", "ops")
    response = await service.client.put("/v1/admin/clock", json={"now": now}, headers=ops)
    assert response.status_code == 200, response.text


# --- events on Kafka ----------------------------------------------------------------------------------------


async def test_events_reach_kafka_keyed_by_profile_with_owner_and_correlation(service: Service) -> None:
    partner = f"partner-{uuid.uuid4().hex[:6]}"
    auth = service.auth(partner, "partner")
    created = (
        await service.client.post(
            "/v1/profiles", json=example_document(), headers={**auth, "X-Correlation-Id": "corr-create"}
        )
    ).json()
    pid = created["id"]
    await service.client.put(
        f"/v1/profiles/{pid}",
        json=example_document(settlement_funds_cad=25_000),
        headers={**auth, "If-Match": '"1"', "X-Correlation-Id": "corr-update"},
    )
    submit = {**auth, "If-Match": '"2"', "X-Correlation-Id": "corr-submit"}
    await service.client.post(f"/v1/profiles/{pid}/submit", headers=submit)
    province = service.auth("on-1", "province", "ON")
    nominated = await service.client.post(
        "/v1/provinces/ON/nominations",
        json={"profile_id": pid},
        headers={**province, "X-Correlation-Id": "corr-nominate"},
    )
    assert nominated.status_code == 201

    events = await profile_events(service, pid, 4)
    assert [env.name for _, env in events] == [
        "ProfileCreated",
        "ProfileUpdated",
        "ProfileSubmitted",
        "NominationIssued",
    ]
    assert [env.correlationid for _, env in events] == [
        "corr-create",
        "corr-update",
        "corr-submit",
        "corr-nominate",
    ]
    for key, env in events:
        assert key == pid == env.subject == env.aggregateid
        assert env.data["owner"] == partner and env.source == "ee/profile"
        assert env.type.startswith("ee.profile.") and env.type.endswith(".v1")
    assert [env.aggregateversion for _, env in events] == [1, 2, 3, 4]
    update = events[1][1].data
    assert update["document"]["settlement_funds_cad"] == 25_000 and update["eligible_programs"] == ["fsw"]
    assert update["status"] == "draft"
    submitted = events[2][1].data
    assert submitted["submitted_at"].startswith("2025-06-01")
    assert submitted["expires_at"].startswith("2026-06-01")
    assert events[3][1].data["province"] == "ON"


# --- the lock -----------------------------------------------------------------------------------------------


async def test_an_invitation_locks_the_profile_and_declining_unlocks_it(service: Service) -> None:
    me = sub()
    profile = await service.create(me)
    await service.submit(me, profile["id"])
    await service.publish(invited(profile, "ita-lock"), source="ee/draws")
    await service.wait_for_status(me, profile["id"], "invited")
    version = (await service.get(me, profile["id"]))["version"]
    assert await put(service, me, profile["id"], version) == 409
    withdraw = await service.client.post(
        f"/v1/profiles/{profile['id']}/withdraw", headers=await service.fresh(me, profile["id"])
    )
    assert withdraw.status_code == 409

    declined = InvitationDeclined(
        profile_id=profile["id"], owner=me, invitation_id="ita-lock", declined_at=T0
    )
    await service.publish(declined, source="ee/applications")
    await service.wait_for_status(me, profile["id"], "in_pool")
    back = await service.get(me, profile["id"])
    assert back["submitted_at"].startswith("2025-06-01") and back["expires_at"].startswith("2026-06-01")
    assert await put(service, me, profile["id"], back["version"]) == 200

    events = await profile_events(service, profile["id"], 4)
    names = [env.name for _, env in events]
    # Invited and InvitationDeclined belong to their producers: stored in the stream, not republished.
    assert names == ["ProfileCreated", "ProfileSubmitted", "ProfileUpdated", "ProfileUpdated"]
    assert events[2][1].data["status"] == "in_pool"


async def test_an_expired_invitation_leaves_the_pool_for_good(service: Service) -> None:
    me = sub()
    profile = await service.create(me)
    await service.submit(me, profile["id"])
    await service.publish(invited(profile, "ita-exp"), source="ee/draws")
    await service.wait_for_status(me, profile["id"], "invited")
    expired = InvitationExpired(profile_id=profile["id"], owner=me, invitation_id="ita-exp", expired_at=T0)
    await service.publish(expired, source="ee/applications")
    await service.wait_for_status(me, profile["id"], "invitation_expired")
    response = await service.client.post(
        f"/v1/profiles/{profile['id']}/submit", headers=await service.fresh(me, profile["id"])
    )
    assert response.status_code == 409


async def test_applying_keeps_the_profile_locked(service: Service) -> None:
    me = sub()
    profile = await service.create(me)
    await service.submit(me, profile["id"])
    await service.publish(invited(profile, "ita-app"), source="ee/draws")
    await service.wait_for_status(me, profile["id"], "invited")
    applied = Applied(
        profile_id=profile["id"],
        owner=me,
        invitation_id="ita-app",
        application_id="app-1",
        program="fsw",
        applied_at=T0,
    )
    await service.publish(applied, source="ee/applications")
    await service.wait_for_status(me, profile["id"], "applied")
    version = (await service.get(me, profile["id"]))["version"]
    assert await put(service, me, profile["id"], version) == 409


async def test_redelivered_or_unknown_profile_invitations_change_nothing(service: Service) -> None:
    me = sub()
    profile = await service.create(me)
    await service.submit(me, profile["id"])
    stranger = invited({"id": str(uuid.uuid4()), "owner": "nobody"}, "ita-unknown")
    await service.publish(stranger, source="ee/draws")
    envelope = envelope_for(invited(profile, "ita-twice"), source="ee/draws", time=service.clock.now())
    topic = service.settings.topic(DRAWS_TOPIC)
    await produce(service.settings, topic, [encode(envelope)] * 2, key=profile["id"].encode())
    await service.wait_for_status(me, profile["id"], "invited")
    consumer = service.runtime.consumers[0]
    await wait_until(lambda: consumer.metrics.duplicates >= 1, message="the second delivery was not deduped")
    assert (await service.get(me, profile["id"]))["version"] == 3  # created, submitted, invited once


# --- the scheduler and the clock (these move business time: keep them last) ---------------------------------


async def test_a_language_test_running_out_removes_the_profile_from_the_pool(service: Service) -> None:
    me = sub()
    doc = example_document()
    doc["language_tests"][0]["taken_on"] = "2023-06-10"  # stops counting on 2025-06-10
    profile = await service.create(me, doc)
    await service.submit(me, profile["id"])
    try:
        await set_clock(service, "2025-06-09T12:00:00Z")
        await review_due(profile_uow(service.runtime.uow))
        assert (await service.get(me, profile["id"]))["status"] == "in_pool"
        await set_clock(service, "2025-06-10T00:00:01Z")
        await service.wait_for_status(me, profile["id"], "removed_from_pool")
    finally:
        await set_clock(service, T0.isoformat())
    events = await profile_events(service, profile["id"], 3)
    assert [env.name for _, env in events] == ["ProfileCreated", "ProfileSubmitted", "ProfileRemovedFromPool"]
    assert any("expired on 2025-06-10" in reason for reason in events[2][1].data["reasons"])
    assert events[2][1].data["owner"] == me


async def test_the_profile_expires_12_months_after_submission(service: Service) -> None:
    me = sub()
    profile = await service.create(me)
    submitted = await service.submit(me, profile["id"])
    assert submitted["expires_at"].startswith("2026-06-01")
    try:
        await set_clock(service, "2026-06-01T09:00:00Z")
        await review_due(profile_uow(service.runtime.uow))
        assert (await service.get(me, profile["id"]))["status"] == "in_pool"
        await set_clock(service, "2026-06-01T10:00:00Z")
        await service.wait_for_status(me, profile["id"], "expired")
        response = await service.client.post(
            f"/v1/profiles/{profile['id']}/submit", headers=await service.fresh(me, profile["id"])
        )
        assert response.status_code == 409
    finally:
        await set_clock(service, T0.isoformat())
    events = await profile_events(service, profile["id"], 3)
    assert [env.name for _, env in events][-1] == "ProfileExpired"
    expired = events[-1][1]
    assert expired.data["expired_at"].startswith("2026-06-01") and expired.subject == profile["id"]
