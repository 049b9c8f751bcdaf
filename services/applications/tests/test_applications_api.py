"""The applications API end to end within the service: real PostgreSQL (fresh database, real migrations),
real Kafka (unique topic prefix): Invited consumed from the draws topic, commands over HTTP, our events
read back from `ee.applications.events`."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from applications_infra import AppsDatabase, fresh_apps_database
from applications_service_harness import Service, application_body, publish, running_service, types

from applications_service.adapters import queries
from applications_service.settings import ApplicationsSettings
from shared import testing
from shared.clock import Clock
from shared.events.catalogue import PersonalDataErased, ProfileUpdated
from shared.testing import SettingsFactory, wait_until

pytestmark = pytest.mark.infra

START = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
OFFICER = ("officer-1", "officer")
OPS = ("ops-1", "ops")


@pytest.fixture(scope="module")
def settings(make_settings: SettingsFactory) -> ApplicationsSettings:
    return make_settings(ApplicationsSettings, db_pool_size=5)


@pytest.fixture(scope="module")
async def database(settings: ApplicationsSettings) -> AsyncIterator[AppsDatabase]:
    await testing.ensure_topics(settings, partitions=3)
    async with fresh_apps_database(settings) as db:
        yield db
    await testing.delete_topics(settings)


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock.frozen(START)


@pytest.fixture(scope="module")
async def service(
    database: AppsDatabase, settings: ApplicationsSettings, clock: Clock
) -> AsyncIterator[Service]:
    async with running_service(settings, clock) as running:
        yield running


def owner_of(service: Service, sub: str) -> dict[str, str]:
    return service.as_(sub, "candidate")


async def apply(service: Service, invitation_id: str, sub: str, **body: object) -> dict[str, object]:
    answer = await service.client.post(
        "/v1/applications",
        json={**application_body(invitation_id, service.clock.today()), **body},
        headers={**owner_of(service, sub), "If-Match": '"1"'},
    )
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


# --- invitations ---------------------------------------------------------------------------------


async def test_invited_from_kafka_creates_the_invitation(service: Service) -> None:
    event = await service.invite()
    answer = await service.client.get(
        f"/v1/invitations/{event.invitation_id}", headers=owner_of(service, event.owner)
    )
    assert answer.status_code == 200 and answer.headers["ETag"] == '"1"'
    body = answer.json()
    assert body["state"] == "open" and body["program"] == "fsw" and body["profile_id"] == event.profile_id
    assert datetime.fromisoformat(body["deadline"]) - datetime.fromisoformat(body["invited_at"]) == timedelta(
        days=60
    )


async def test_a_candidate_sees_only_their_own_invitations_newest_first(service: Service) -> None:
    older = await service.invite()
    newer = await service.invite(
        profile_id=older.profile_id,
        owner=older.owner,
        invited_at=START + timedelta(hours=1),
        deadline=START + timedelta(days=60, hours=1),
    )
    path = f"/v1/candidates/{older.profile_id}/invitations"
    mine = await service.client.get(path, headers=owner_of(service, older.owner))
    assert [i["invitation_id"] for i in mine.json()] == [newer.invitation_id, older.invitation_id]
    officer = await service.client.get(path, headers=service.as_(*OFFICER))
    assert len(officer.json()) == 2
    stranger = await service.client.get(path, headers=owner_of(service, "someone-else"))
    # Someone else's resource is not revealed: 404, as in every service.
    assert stranger.status_code == 404 and stranger.headers["content-type"] == "application/problem+json"
    single = await service.client.get(
        f"/v1/invitations/{older.invitation_id}", headers=service.as_("someone-else", "partner")
    )
    assert single.status_code == 404
    missing = await service.client.get(
        f"/v1/invitations/{uuid.uuid4()}", headers=owner_of(service, older.owner)
    )
    assert missing.status_code == 404 and missing.json()["status"] == 404
    anonymous = await service.client.get(path)
    assert anonymous.status_code == 401


async def test_decline_needs_if_match_and_then_publishes_invitation_declined(service: Service) -> None:
    event = await service.invite()
    path = f"/v1/invitations/{event.invitation_id}/decline"
    headers = owner_of(service, event.owner)
    assert (await service.client.post(path, headers=headers)).status_code == 428
    stale = await service.client.post(path, headers={**headers, "If-Match": '"5"'})
    assert stale.status_code == 412 and stale.headers["ETag"] == '"1"'
    other = await service.client.post(path, headers={**owner_of(service, "intruder"), "If-Match": '"1"'})
    assert other.status_code == 404
    officer = await service.client.post(path, headers={**service.as_(*OFFICER), "If-Match": '"1"'})
    assert officer.status_code == 403
    declined = await service.client.post(
        path, headers={**headers, "If-Match": '"1"', "X-Correlation-Id": "decline-1"}
    )
    assert (
        declined.status_code == 200
        and declined.json()["state"] == "declined"
        and declined.headers["ETag"] == '"2"'
    )
    [published] = await service.events(event.invitation_id, 1)
    assert published["type"] == "InvitationDeclined" and published["subject"] == event.profile_id
    assert published["correlationid"] == "decline-1" and published["data"]["owner"] == event.owner
    again = await service.client.post(path, headers={**headers, "If-Match": '"2"'})
    assert again.status_code == 409 and "declined" in again.json()["detail"]
    late = await service.client.post(
        "/v1/applications",
        json=application_body(event.invitation_id, service.clock.today()),
        headers={**headers, "If-Match": '"2"'},
    )
    assert late.status_code == 409 and late.json()["state"] == "declined"


# --- applications ----------------------------------------------------------------------------------


async def test_apply_needs_the_invitations_if_match_like_every_command(service: Service) -> None:
    event = await service.invite()
    body = application_body(event.invitation_id, service.clock.today())
    headers = owner_of(service, event.owner)
    missing = await service.client.post("/v1/applications", json=body, headers=headers)
    assert missing.status_code == 428, missing.text
    stale = await service.client.post("/v1/applications", json=body, headers={**headers, "If-Match": '"4"'})
    assert stale.status_code == 412 and stale.headers["ETag"] == '"1"'
    intruder = await service.client.post(
        "/v1/applications", json=body, headers={**owner_of(service, "intruder"), "If-Match": '"1"'}
    )
    assert intruder.status_code == 404
    applied = await service.client.post("/v1/applications", json=body, headers={**headers, "If-Match": '"1"'})
    assert applied.status_code == 201, applied.text


async def test_incomplete_application_is_a_422_listing_what_is_missing(service: Service) -> None:
    event = await service.invite(program="fst")
    answer = await service.client.post(
        "/v1/applications",
        json={"invitation_id": event.invitation_id, "police_certificates": False},
        headers={**owner_of(service, event.owner), "If-Match": '"1"'},
    )
    assert answer.status_code == 422 and answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["missing"] == [
        "passport",
        "medical_exam_date",
        "police_certificates",
        "proof_of_funds_cad",
    ]
    assert {e["field"] for e in problem["errors"]} == set(problem["missing"])
    low = await service.client.post(
        "/v1/applications",
        json=application_body(event.invitation_id, service.clock.today(), funds=100),
        headers={**owner_of(service, event.owner), "If-Match": '"1"'},
    )
    assert low.status_code == 422 and "15263 CAD" in low.json()["detail"]


async def test_apply_approve_with_visa_then_land(service: Service) -> None:
    event = await service.invite()
    applied = await apply(service, event.invitation_id, event.owner)
    assert applied["state"] == "applied" and applied["minimum_funds_cad"] == 15_263
    path = f"/v1/applications/{applied['application_id']}"
    read = await service.client.get(path, headers=owner_of(service, event.owner))
    assert read.status_code == 200 and read.headers["ETag"] == '"3"'
    candidate = await service.client.post(
        f"{path}/decision",
        json={"decision": "approved"},
        headers={**owner_of(service, event.owner), "If-Match": '"3"'},
    )
    assert candidate.status_code == 403
    decided = await service.client.post(
        f"{path}/decision",
        json={"decision": "approved", "reasons": ["met"]},
        headers={**service.as_(*OFFICER), "If-Match": '"3"'},
    )
    assert decided.status_code == 200, decided.text
    body = decided.json()
    expires = service.clock.today() - timedelta(days=10) + timedelta(days=365)
    assert body["decision"] == "approved" and body["copr"]["expires_on"] == str(expires)
    assert body["permanent_resident_visa"] == {"country": "IN", "expires_on": str(expires)}
    twice = await service.client.post(
        f"{path}/decision",
        json={"decision": "refused", "reasons": ["x"]},
        headers={**service.as_(*OFFICER), "If-Match": decided.headers["ETag"]},
    )
    assert twice.status_code == 409
    landed = await service.client.post(
        f"{path}/landing", headers={**service.as_(*OFFICER), "If-Match": '"6"'}
    )
    assert landed.status_code == 200 and landed.json()["state"] == "landed"
    published = await service.events(event.invitation_id, 5)
    assert types(published) == ["Applied", "Approved", "CoprIssued", "PermanentResidentVisaIssued", "Landed"]
    assert [e["aggregateversion"] for e in published] == [3, 4, 5, 6, 7]


async def test_approval_of_a_visa_exempt_national_issues_no_visa(service: Service) -> None:
    event = await service.invite(citizenship="FR")
    applied = await apply(
        service,
        event.invitation_id,
        event.owner,
        passport={"number": "17FR12345", "country": "FR", "expiry": "2027-01-31"},
    )
    decided = await service.client.post(
        f"/v1/applications/{applied['application_id']}/decision",
        json={"decision": "approved"},
        headers={**service.as_(*OFFICER), "If-Match": '"3"'},
    )
    assert (
        decided.json()["permanent_resident_visa"] is None
        and decided.json()["copr"]["expires_on"] == "2027-01-31"
    )
    assert types(await service.events(event.invitation_id, 3)) == ["Applied", "Approved", "CoprIssued"]


async def test_refusal_needs_reasons_and_withdrawal_ends_before_a_decision(service: Service) -> None:
    event = await service.invite()
    applied = await apply(service, event.invitation_id, event.owner)
    path = f"/v1/applications/{applied['application_id']}"
    officer = {**service.as_(*OFFICER), "If-Match": '"3"'}
    no_reason = await service.client.post(f"{path}/decision", json={"decision": "refused"}, headers=officer)
    assert no_reason.status_code == 422
    withdrawn = await service.client.post(
        f"{path}/withdraw", headers={**owner_of(service, event.owner), "If-Match": '"3"'}
    )
    assert withdrawn.status_code == 200 and withdrawn.json()["withdrawn_at"] is not None
    late = await service.client.post(
        f"{path}/decision",
        json={"decision": "refused", "reasons": ["r"]},
        headers={**service.as_(*OFFICER), "If-Match": '"4"'},
    )
    assert late.status_code == 409 and "withdrawn" in late.json()["detail"]
    assert types(await service.events(event.invitation_id, 2)) == ["Applied", "ApplicationWithdrawn"]


async def test_a_copr_extension_is_always_refused(service: Service) -> None:
    event = await service.invite()
    applied = await apply(service, event.invitation_id, event.owner)
    path = f"/v1/applications/{applied['application_id']}"
    await service.client.post(
        f"{path}/decision",
        json={"decision": "approved"},
        headers={**service.as_(*OFFICER), "If-Match": '"3"'},
    )
    refused = await service.client.post(f"{path}/copr/extend", headers=owner_of(service, event.owner))
    assert refused.status_code == 409 and refused.headers["content-type"] == "application/problem+json"
    problem = refused.json()
    assert (
        problem["type"] == "urn:ee:problem:copr-cannot-be-extended"
        and "cannot be extended" in problem["detail"]
    )
    unknown = await service.client.post(
        f"/v1/applications/{uuid.uuid4()}/copr/extend", headers=service.as_(*OPS)
    )
    assert unknown.status_code == 404


async def test_idempotency_key_replays_the_first_answer(service: Service) -> None:
    event = await service.invite()
    headers = {**owner_of(service, event.owner), "Idempotency-Key": str(uuid.uuid4()), "If-Match": '"1"'}
    body = application_body(event.invitation_id, service.clock.today())
    first = await service.client.post("/v1/applications", json=body, headers=headers)
    second = await service.client.post("/v1/applications", json=body, headers=headers)
    assert first.status_code == second.status_code == 201 and second.json() == first.json()
    assert second.headers["Idempotent-Replayed"] == "true" and second.headers["ETag"] == first.headers["ETag"]
    reused = await service.client.post(
        "/v1/applications", json={**body, "proof_of_funds_cad": 99_999}, headers=headers
    )
    assert reused.status_code == 422
    assert types(await service.events(event.invitation_id, 1)) == ["Applied"]


async def test_profile_facts_from_kafka_waive_proof_of_funds(
    service: Service, database: AppsDatabase
) -> None:
    event = await service.invite()
    offer = {
        "noc_code": "21231",
        "teer": 1,
        "employer": "Acme",
        "full_time": True,
        "non_seasonal": True,
        "duration_months": None,
        "lmia_or_exempt": True,
        "canadian_armed_forces": False,
    }
    update = ProfileUpdated(
        profile_id=event.profile_id,
        owner=event.owner,
        status="invited",
        document={"family_size": 2, "authorized_to_work_in_canada": True, "job_offer": offer},
        eligible_programs=["fsw"],
        updated_at=START,
    )
    await publish(service.settings, update, "ee/profile")

    async def consumed() -> bool:
        async with database.sessions() as session:
            return await queries.get_profile_facts(session, event.profile_id) is not None

    await wait_until(consumed, timeout=30)
    applied = await apply(service, event.invitation_id, event.owner, proof_of_funds_cad=None)
    assert applied["minimum_funds_cad"] is None

    # docs/PRIVACY.md: on PersonalDataErased the person's facts go; the invitation (a decision) stays.
    erased = PersonalDataErased(profile_id=event.profile_id, owner=event.owner, reason="ops", erased_at=START)
    await publish(service.settings, erased, "ee/profile")

    async def forgotten() -> bool:
        async with database.sessions() as session:
            return await queries.get_profile_facts(session, event.profile_id) is None

    await wait_until(forgotten, timeout=30)
    kept = await service.client.get(
        f"/v1/invitations/{event.invitation_id}", headers=owner_of(service, event.owner)
    )
    assert kept.status_code == 200, kept.text


@pytest.mark.parametrize(
    ("method", "path", "body", "role"),
    [
        ("POST", "/v1/applications", {"invitation_id": "x", "proof_of_funds_cad": -5}, "candidate"),
        ("POST", "/v1/applications", {"invitation_id": "x", "proof_of_funds_cad": 10**20}, "candidate"),
        (
            "POST",
            "/v1/applications",
            {"invitation_id": "x", "passport": {"expiry": "31/01/2030"}},
            "candidate",
        ),
        ("POST", "/v1/applications", {"invitation_id": "x", "medical_exam_date": 20260101}, "candidate"),
        ("POST", "/v1/applications", {"invitation_id": "x", "passport": {"country": "India"}}, "candidate"),
        ("POST", "/v1/applications", {"invitation_id": "x", "surprise": True}, "candidate"),
        ("POST", "/v1/applications", "not json", "candidate"),
        ("POST", "/v1/applications", {"invitation_id": "no-such-invitation"}, "candidate"),
        ("POST", "/v1/applications/nope/decision", {"decision": "maybe"}, "officer"),
        ("POST", "/v1/applications/nope/decision", {"decision": "approved"}, "officer"),
        ("POST", "/v1/applications/nope/landing", None, "officer"),
        ("POST", "/v1/applications/nope/withdraw", None, "partner"),
        ("GET", "/v1/applications/nope", None, "ops"),
        ("DELETE", "/v1/applications/nope", None, "ops"),
    ],
)
async def test_bad_input_is_a_4xx_problem_never_a_5xx(
    service: Service, method: str, path: str, body: object, role: str
) -> None:
    headers = {**service.as_("someone", role), "If-Match": '"1"'}
    if isinstance(body, str):
        answer = await service.client.request(
            method, path, content=body, headers={**headers, "Content-Type": "application/json"}
        )
    else:
        answer = await service.client.request(method, path, json=body, headers=headers)
    assert 400 <= answer.status_code < 500, answer.text
    assert answer.headers["content-type"] == "application/problem+json" and answer.json()["detail"]


# --- the clock ------------------------------------------------------------------------------------


async def test_stats_and_at_risk_queue(service: Service) -> None:
    stats = await service.client.get("/v1/applications/stats", headers=service.as_(*OPS))
    assert stats.status_code == 200
    body = stats.json()
    assert body["counts_by_state"]["landed"] >= 1 and body["decided"] >= 3
    assert body["median_days_to_decision"] == 0.0 and body["share_within_standard"] == 1.0
    assert (
        await service.client.get("/v1/applications/stats", headers=service.as_(*OFFICER))
    ).status_code == 403
    queue = await service.client.get("/v1/applications/at-risk", headers=service.as_(*OFFICER))
    assert queue.status_code == 200 and queue.json() == []
    watched = await service.client.get("/v1/applications/at-risk", headers=service.as_(*OPS))  # the console
    assert watched.status_code == 200 and watched.json() == []
    assert (
        await service.client.get("/v1/applications/at-risk", headers=service.as_("p-1", "partner"))
    ).status_code == 403


async def test_moving_the_clock_expires_invitations_and_flags_old_applications(service: Service) -> None:
    """Last in the module: it moves the shared clock five months ahead (29 days before the standard)."""
    open_one = await service.invite()
    waiting = await service.invite()
    applied = await apply(service, waiting.invitation_id, waiting.owner)
    moved = await service.client.put(
        "/v1/admin/clock", json={"now": (START + timedelta(days=155)).isoformat()}, headers=service.as_(*OPS)
    )
    assert moved.status_code == 200, moved.text
    # Straight past the deadline: the reminders are moot, the invitation just expires.
    assert types(await service.events(open_one.invitation_id, 1)) == ["InvitationExpired"]
    late = await service.client.post(
        "/v1/applications",
        json=application_body(open_one.invitation_id, service.clock.today()),
        headers={**owner_of(service, open_one.owner), "If-Match": '"2"'},
    )
    assert late.status_code == 409 and late.json()["type"] == "urn:ee:problem:transition-not-allowed"
    queue = await service.client.get("/v1/applications/at-risk", headers=service.as_(*OFFICER))
    assert applied["application_id"] in [item["application_id"] for item in queue.json()]
