"""The whole journey end to end (issue 7), against the four services as `make up` runs them.

A partner creates 200 profiles of varied facts and submits them; five provinces nominate one each;
ranking scores them (every score checked against the public calculator fed with the factors the
profile implies on the services' day); ops plans and holds a general round of 50 and a French round of
10; the invitations appear in the applications service; 3 decline (back in the pool, same tie-breaker),
1 lets the deadline pass (the clock moved on every service; it leaves the pool for good), the rest
apply; one application is withdrawn, an officer approves all the others but one; COPRs are issued and
PR visas for visa-required nationals; one lands, two COPRs expire; reminders fire once. A profile is
withdrawn, one made ineligible, a nomination withdrawn, and at last the clock moves a year on so the
pool expires. A partner subscribes to webhooks (signed, verified by a real receiver), and a receiver
that answers 410 gets its subscription disabled. Then the whole log is read: every catalogue event type
on its topic, a valid envelope, in order per aggregate, and each event a request caused carries that
request's correlation id.

The steps share one world and run in order; each later step needs the earlier ones.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import pytest
from e2e_documents import implied_calculator_body, ineligible, varied_documents
from e2e_harness import SERVICES, World, check_log, poll, read_log, report_figures, running_world
from notifications_harness import Receiver

from applications_service.domain.visa import VISA_REQUIRED_COUNTRIES
from shared.events.catalogue import CATALOGUE
from shared.rules.derive import derive_profile
from shared.rules.document import ProfileDocument
from shared.testing_privacy import kafka_segment_files, markers_in, pg_dump_text

pytestmark = pytest.mark.infra

T = TypeVar("T")
PARTNER = ("partner-e2e", "partner")
OPS = ("ops-e2e", "ops")
OFFICER = ("officer-e2e", "officer")
PROVINCES = ("ON", "BC", "AB", "MB", "NS")
PROFILES = 200
GENERAL_SIZE, CATEGORY_SIZE, CATEGORY = 50, 10, "french"
DAY = timedelta(days=1)


@dataclass
class Candidate:
    profile_id: str
    document: dict[str, Any]
    version: int = 1
    submitted_at: str | None = None
    nominated_by: str | None = None
    invitation_id: str | None = None
    application_id: str | None = None


@dataclass
class Journey:
    """What the steps learn and the later steps (and the log check) need."""

    today: date | None = None
    candidates: dict[str, Candidate] = field(default_factory=dict)
    rounds: dict[str, dict[str, Any]] = field(default_factory=dict)
    invited: list[str] = field(default_factory=list)  # profile ids, general round first, in rank order
    roles: dict[str, list[str]] = field(default_factory=dict)  # what each invited candidate does
    expected: list[tuple[str, str, str]] = field(default_factory=list)  # (correlation, event, subject)
    personal_markers: list[str] = field(default_factory=list)  # in every profile's identity (issue 16)
    timings: dict[str, float] = field(default_factory=dict)
    extra_profiles: list[str] = field(default_factory=list)  # besides the 200: rules, erasure, webhooks

    def expect(self, correlation: str | None, subject: str, *events: str) -> None:
        assert correlation is not None
        self.expected.extend((correlation, event, subject) for event in events)


@pytest.fixture(scope="module")
async def world() -> AsyncIterator[World]:
    async with running_world("journey") as running:
        yield running


@pytest.fixture(scope="module")
def journey(world: World) -> Journey:
    return Journey()


async def limited(aws: Iterable[Awaitable[T]], limit: int = 12) -> list[T]:
    """Await everything with at most `limit` in flight (the services share 2 cores with the test)."""
    gate = asyncio.Semaphore(limit)

    async def one(aw: Awaitable[T]) -> T:
        async with gate:
            return await aw

    return await asyncio.gather(*(one(aw) for aw in aws))


def correlation_of(response: Any) -> str:
    value: str = response.headers["X-Correlation-Id"]
    return value


def idempotency() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


def if_match(version: int) -> dict[str, str]:
    return {"If-Match": f'"{version}"'}


async def create_extra_profile(world: World, journey: Journey, document: dict[str, Any]) -> str:
    """A partner's profile besides the 200 (counted by the log check); its ProfileCreated is expected."""
    created = await world.call(
        "profile", "POST", "/v1/profiles", as_=PARTNER, json_body=document, headers=idempotency(),
        purpose="create",
    )  # fmt: skip
    assert created.status_code == 201, created.text
    profile_id: str = created.json()["id"]
    journey.extra_profiles.append(profile_id)
    journey.expect(correlation_of(created), profile_id, "ProfileCreated")
    return profile_id


async def pool_top(world: World, n: int = 1000) -> dict[str, Any]:
    response = await world.call("ranking", "GET", "/v1/pool/top", as_=OPS, params={"n": n}, purpose="top")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def standing(world: World, profile_id: str) -> dict[str, Any] | None:
    """The candidate in ranking's pool, or None when not in it."""
    response = await world.call(
        "ranking", "GET", f"/v1/pool/candidates/{profile_id}", as_=OPS, purpose="rank"
    )
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def profile_view(world: World, profile_id: str) -> dict[str, Any]:
    response = await world.call("profile", "GET", f"/v1/profiles/{profile_id}", as_=PARTNER, purpose="read")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def invitation(world: World, invitation_id: str) -> dict[str, Any]:
    response = await world.call(
        "applications", "GET", f"/v1/invitations/{invitation_id}", as_=PARTNER, purpose="read"
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def application(world: World, application_id: str) -> dict[str, Any]:
    response = await world.call(
        "applications", "GET", f"/v1/applications/{application_id}", as_=OFFICER, purpose="read"
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# --- 1. profiles ------------------------------------------------------------------------------------


async def test_a_partner_creates_and_submits_200_profiles_and_provinces_nominate_5(
    world: World, journey: Journey
) -> None:
    started = time.monotonic()
    journey.today = await world.today("profile")
    documents = varied_documents(PROFILES, journey.today)

    async def create_and_submit(document: dict[str, Any]) -> Candidate:
        marker = "Who" + uuid.uuid4().hex[:12]  # personal data: must never reach a log (issue 16)
        journey.personal_markers.append(marker)
        document = {**document, "identity": {"family_name": marker, "email": f"{marker}@example.org"}}
        created = await world.call(
            "profile", "POST", "/v1/profiles", as_=PARTNER, json_body=document, headers=idempotency(),
            purpose="create",
        )  # fmt: skip
        assert created.status_code == 201, created.text
        candidate = Candidate(created.json()["id"], document)
        journey.expect(correlation_of(created), candidate.profile_id, "ProfileCreated")
        submitted = await world.call(
            "profile", "POST", f"/v1/profiles/{candidate.profile_id}/submit", as_=PARTNER,
            headers=if_match(1), purpose="submit", subject=candidate.profile_id,
        )  # fmt: skip
        assert submitted.status_code == 200, submitted.text
        body = submitted.json()
        assert body["status"] == "in_pool" and body["eligible_programs"], body
        candidate.version, candidate.submitted_at = body["version"], body["submitted_at"]
        journey.expect(correlation_of(submitted), candidate.profile_id, "ProfileSubmitted", "Ranked")
        return candidate

    for candidate in await limited(create_and_submit(d) for d in documents):
        journey.candidates[candidate.profile_id] = candidate
    journey.timings["create_and_submit_s"] = round(time.monotonic() - started, 2)

    # Ranking has everyone before the nominations, so each nomination moves a scored candidate.
    async def everyone_ranked() -> bool:
        return (await pool_top(world, 1))["pool_size"] == PROFILES

    await poll(everyone_ranked, 60, f"ranking's pool to hold all {PROFILES} profiles")
    journey.timings["ranked_s"] = round(time.monotonic() - started, 2)

    # Each province nominates one of the lower-scored candidates (the nomination is what invites them).
    ordered = (await pool_top(world))["candidates"]
    chosen = [c["profile_id"] for c in ordered[-len(PROVINCES) :]]
    for province, profile_id in zip(PROVINCES, chosen, strict=True):
        response = await world.call(
            "profile", "POST", f"/v1/provinces/{province}/nominations",
            as_=(f"pnp-{province.lower()}", "province", province), json_body={"profile_id": profile_id},
            purpose="nominate", subject=profile_id,
        )  # fmt: skip
        assert response.status_code == 201, response.text
        journey.candidates[profile_id].nominated_by = province
        journey.expect(correlation_of(response), profile_id, "NominationIssued", "Ranked")


# --- 2. scores ----------------------------------------------------------------------------------------


async def test_ranking_scores_every_profile_as_the_calculator_does_from_its_facts(
    world: World, journey: Journey
) -> None:
    nominated = {c.profile_id for c in journey.candidates.values() if c.nominated_by}

    async def nominations_scored() -> bool:
        top = await pool_top(world)
        in_pnp = {c["profile_id"] for c in top["candidates"] if "pnp" in c["programs"]}
        return top["pool_size"] == PROFILES and in_pnp == nominated

    await poll(nominations_scored, 30, "the nominations to be scored")
    as_of = await world.today("ranking")
    top = await pool_top(world)

    async def check(entry: dict[str, Any]) -> list[str]:
        candidate = journey.candidates[entry["profile_id"]]
        is_nominated = candidate.nominated_by is not None
        body = implied_calculator_body(candidate.document, as_of, is_nominated)
        calculated = await world.call("ranking", "POST", "/v1/crs/calculate", json_body=body, purpose="calc")
        assert calculated.status_code == 200, calculated.text
        held = await standing(world, candidate.profile_id)
        assert held is not None
        derived = derive_profile(ProfileDocument.model_validate(candidate.document), as_of, is_nominated)
        programs = sorted({*derived.programs, *(["pnp"] if is_nominated else [])})
        problems = []
        if calculated.json()["total"] != entry["crs"] or calculated.json()["breakdown"] != held["breakdown"]:
            problems.append(f"{candidate.profile_id}: ranking {entry['crs']} {held['breakdown']}, "
                            f"calculator {calculated.json()}")  # fmt: skip
        if sorted(entry["programs"]) != programs or sorted(entry["categories"]) != sorted(derived.categories):
            problems.append(f"{candidate.profile_id}: {entry['programs']} {entry['categories']} "
                            f"vs {programs} {derived.categories}")  # fmt: skip
        if held["submitted_at"] != entry["submitted_at"] or _instant(held["submitted_at"]) != _instant(
            candidate.submitted_at
        ):
            problems.append(
                f"{candidate.profile_id}: submitted_at {held['submitted_at']} vs {candidate.submitted_at}"
            )
        return problems

    problems = [p for found in await limited(check(e) for e in top["candidates"]) for p in found]
    assert await world.today("ranking") == as_of, "the day changed during the check; run it again"
    assert not problems, problems[:5]
    assert len(top["candidates"]) == PROFILES
    world.record("profiles_scored_and_checked", len(top["candidates"]))


def _instant(value: str | None) -> datetime:
    assert value is not None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# --- 3. rounds ----------------------------------------------------------------------------------------


async def hold(world: World, journey: Journey, round_type: str, size: int) -> dict[str, Any]:
    plan = await world.call(
        "draws",
        "POST",
        "/v1/draws/plan",
        as_=OPS,
        json_body={"type": round_type, "size": size},
        purpose="plan",
    )
    assert plan.status_code == 200, plan.text
    assert plan.json()["would_invite"] == size, plan.json()
    held = await world.call(
        "draws", "POST", "/v1/draws", as_=OPS, json_body={"type": round_type, "size": size},
        headers=idempotency(), purpose="hold",
    )  # fmt: skip
    assert held.status_code == 201, held.text
    record: dict[str, Any] = held.json()
    assert record["invitations"] == size and record["cutoff_crs"] == plan.json()["cutoff_crs"], record
    assert _instant(record["tie_break_at"]) == _instant(plan.json()["tie_break_at"])
    page = await world.call(
        "draws",
        "GET",
        f"/v1/draws/{record['id']}/invitations",
        as_=OPS,
        params={"limit": 1000},
        purpose="read",
    )
    assert page.status_code == 200, page.text
    items = page.json()["items"]
    assert len(items) == size
    correlation = correlation_of(held)
    journey.expect(correlation, record["id"], "RoundOfInvitationsHeld")
    for item in items:
        candidate = journey.candidates[item["profile_id"]]
        candidate.invitation_id = item["invitation_id"]
        journey.invited.append(candidate.profile_id)
        journey.expect(correlation, candidate.profile_id, "Invited", "RemovedFromPool")
    journey.rounds[round_type] = {**record, "items": items}
    return record


async def test_ops_hold_a_general_round_of_50_and_a_french_round_of_10_and_invitations_appear(
    world: World, journey: Journey
) -> None:
    before = (await pool_top(world))["candidates"]
    general = await hold(world, journey, "general", GENERAL_SIZE)
    # The general round invites the top 50 of the pool, in pool order, and publishes the 50th's score.
    expected = [c["profile_id"] for c in before[:GENERAL_SIZE]]
    assert journey.invited == expected
    assert general["cutoff_crs"] == before[GENERAL_SIZE - 1]["crs"]
    assert all(journey.candidates[c].invitation_id for c in expected)
    assert {c.profile_id for c in journey.candidates.values() if c.nominated_by} <= set(expected)

    await poll(
        lambda: _pool_size_is(world, PROFILES - GENERAL_SIZE), 30, "the invited to leave ranking's pool"
    )
    french = await hold(world, journey, CATEGORY, CATEGORY_SIZE)
    invited_french = journey.invited[GENERAL_SIZE:]
    remaining = [c for c in before if c["profile_id"] not in expected and CATEGORY in c["categories"]]
    assert invited_french == [c["profile_id"] for c in remaining[:CATEGORY_SIZE]]
    assert french["category_version"] is not None

    started = time.monotonic()

    async def every_invitation_open() -> bool:
        async def state(profile_id: str) -> str | None:
            response = await world.call(
                "applications", "GET", f"/v1/candidates/{profile_id}/invitations", as_=OFFICER, purpose="read"
            )
            assert response.status_code == 200, response.text
            items = response.json()
            return items[0]["state"] if items else None

        states = await limited(state(p) for p in journey.invited)
        return all(s == "open" for s in states)

    await poll(every_invitation_open, 30, "the 60 invitations to appear in the applications service")
    world.record("invitations_visible_s", round(time.monotonic() - started, 2))
    await poll(lambda: _pool_size_is(world, PROFILES - len(journey.invited)), 30, "ranking's pool to shrink")

    async def all_locked() -> bool:
        views = await limited(profile_view(world, p) for p in journey.invited)
        return {v["status"] for v in views} == {"invited"}

    await poll(all_locked, 30, "the profile service to lock the invited profiles")


async def _pool_size_is(world: World, size: int) -> bool:
    return (await pool_top(world, 1))["pool_size"] == size


# --- 4. answers and decisions -------------------------------------------------------------------------


def assign_roles(journey: Journey) -> None:
    """Who declines, lets the deadline pass, withdraws, is refused, lands, holds a short COPR."""
    general = journey.invited[:GENERAL_SIZE]
    nominated = [p for p in general if journey.candidates[p].nominated_by]
    others = [p for p in journey.invited if p not in nominated]
    roles: dict[str, list[str]] = {
        "decline": [nominated[0], others[0], others[1]],
        "lapse": [others[2]],
        "withdraw_application": [others[3]],
        "refuse": [others[4]],
        "land": [others[5]],
        "short_copr": [others[6], others[7]],
    }
    special = {p for group in roles.values() for p in group}
    roles["apply"] = [p for p in journey.invited if p not in roles["decline"] + roles["lapse"]]
    roles["approve"] = [p for p in roles["apply"] if p not in roles["withdraw_application"] + roles["refuse"]]
    assert len(special) == 9 and len(roles["apply"]) == 56 and len(roles["approve"]) == 54
    journey.roles = roles


def documents_for(candidate: Candidate, today: date, short_passport: bool) -> dict[str, Any]:
    citizenship = candidate.document["citizenship"]
    expiry = today + (64 * DAY if short_passport else 5 * 365 * DAY)
    return {
        "invitation_id": candidate.invitation_id,
        "passport": {"number": f"P{candidate.profile_id[:8].upper()}", "country": citizenship,
                     "expiry": expiry.isoformat()},
        "medical_exam_date": (today - 20 * DAY).isoformat(),
        "police_certificates": True,
        "proof_of_funds_cad": 60_000,
    }  # fmt: skip


async def test_three_decline_one_waits_the_rest_apply_and_an_officer_decides(
    world: World, journey: Journey
) -> None:
    assign_roles(journey)
    roles = journey.roles
    today = await world.today("applications")

    # Declines: back in ranking's pool with the very same submission instant (the tie-breaker).
    for profile_id in roles["decline"]:
        candidate = journey.candidates[profile_id]
        assert candidate.invitation_id is not None
        current = await invitation(world, candidate.invitation_id)
        response = await world.call(
            "applications", "POST", f"/v1/invitations/{candidate.invitation_id}/decline", as_=PARTNER,
            headers={**if_match(current["version"]), **idempotency()}, purpose="decline", subject=profile_id,
        )  # fmt: skip
        assert response.status_code == 200, response.text
        assert response.json()["state"] == "declined"
        journey.expect(correlation_of(response), profile_id, "InvitationDeclined", "ProfileUpdated", "Ranked")

    for profile_id in roles["decline"]:
        back = await poll(partial(standing, world, profile_id), 30, f"declined {profile_id} back in the pool")
        assert _instant(back["submitted_at"]) == _instant(journey.candidates[profile_id].submitted_at)
        await poll(partial(_profile_status_is, world, profile_id, "in_pool"), 30, f"{profile_id} unlocked")

    # The nominated decliner's province withdraws its nomination: the score drops by 600.
    withdrawn_from = roles["decline"][0]
    before = await standing(world, withdrawn_from)
    assert before is not None
    province = journey.candidates[withdrawn_from].nominated_by
    assert province is not None
    nomination = f"/v1/provinces/{province}/nominations/{withdrawn_from}"
    officer = (f"pnp-{province.lower()}", "province", province)
    read = await world.call("profile", "GET", nomination, as_=officer, purpose="read")
    assert read.status_code == 200, read.text
    response = await world.call(
        "profile", "DELETE", nomination, as_=officer, purpose="unnominate", subject=withdrawn_from,
        headers={"If-Match": read.headers["ETag"]},
    )  # fmt: skip
    assert response.status_code == 204, response.text
    journey.expect(correlation_of(response), withdrawn_from, "NominationWithdrawn", "Ranked")

    async def lost_nomination() -> bool:
        now = await standing(world, withdrawn_from)
        return now is not None and now["crs"] == before["crs"] - 600 and "pnp" not in now["programs"]

    await poll(lost_nomination, 30, "the withdrawn nomination to cost 600 points")

    # Applications.
    async def apply(profile_id: str) -> None:
        candidate = journey.candidates[profile_id]
        body = documents_for(candidate, today, profile_id in roles["short_copr"])
        assert candidate.invitation_id is not None
        current = await invitation(world, candidate.invitation_id)
        response = await world.call(
            "applications", "POST", "/v1/applications", as_=PARTNER, json_body=body,
            headers={**if_match(current["version"]), **idempotency()}, purpose="apply", subject=profile_id,
        )  # fmt: skip
        assert response.status_code == 201, response.text
        candidate.application_id = response.json()["application_id"]
        journey.expect(correlation_of(response), profile_id, "Applied")

    await limited(apply(p) for p in roles["apply"])

    (leaver,) = roles["withdraw_application"]
    app_id = journey.candidates[leaver].application_id
    assert app_id is not None
    current = await application(world, app_id)
    response = await world.call(
        "applications", "POST", f"/v1/applications/{app_id}/withdraw", as_=PARTNER,
        headers={**if_match(current["version"]), **idempotency()}, purpose="withdraw-app", subject=leaver,
    )  # fmt: skip
    assert response.status_code == 200, response.text
    journey.expect(correlation_of(response), leaver, "ApplicationWithdrawn")

    async def decide(profile_id: str) -> dict[str, Any]:
        candidate = journey.candidates[profile_id]
        assert candidate.application_id is not None
        current = await application(world, candidate.application_id)
        refused = profile_id in roles["refuse"]
        decision = {"decision": "refused", "reasons": ["Work experience not shown."]} if refused else {
            "decision": "approved", "reasons": []}  # fmt: skip
        response = await world.call(
            "applications", "POST", f"/v1/applications/{candidate.application_id}/decision", as_=OFFICER,
            json_body=decision, headers={**if_match(current["version"]), **idempotency()}, purpose="decide",
            subject=profile_id,
        )  # fmt: skip
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        correlation = correlation_of(response)
        if refused:
            journey.expect(correlation, profile_id, "Refused")
        else:
            journey.expect(correlation, profile_id, "Approved", "CoprIssued")
            if candidate.document["citizenship"] in VISA_REQUIRED_COUNTRIES:
                journey.expect(correlation, profile_id, "PermanentResidentVisaIssued")
        return body

    decided = await limited(decide(p) for p in roles["approve"] + roles["refuse"])
    approved = [d for d in decided if d["decision"] == "approved"]
    assert len(approved) == len(roles["approve"]) and all(d["copr"] for d in approved)
    for body in approved:
        needs_visa = journey.candidates[body["profile_id"]].document["citizenship"] in VISA_REQUIRED_COUNTRIES
        assert (body["permanent_resident_visa"] is not None) == needs_visa, body
        if body["profile_id"] in roles["short_copr"]:
            assert body["copr"]["expires_on"] == (today + 64 * DAY).isoformat(), body["copr"]
    world.record("visas_issued", sum(1 for d in approved if d["permanent_resident_visa"]))

    (lander,) = roles["land"]
    app_id = journey.candidates[lander].application_id
    assert app_id is not None
    current = await application(world, app_id)
    response = await world.call(
        "applications", "POST", f"/v1/applications/{app_id}/landing", as_=OFFICER,
        headers={**if_match(current["version"]), **idempotency()}, purpose="land", subject=lander,
    )  # fmt: skip
    assert response.status_code == 200, response.text
    assert response.json()["landed_at"] is not None
    journey.expect(correlation_of(response), lander, "Landed")


async def test_a_profile_is_withdrawn_and_another_made_ineligible(world: World, journey: Journey) -> None:
    untouched = [p for p in journey.candidates if p not in journey.invited]
    quitter, changed = untouched[0], untouched[1]
    response = await world.call(
        "profile",
        "POST",
        f"/v1/profiles/{quitter}/withdraw",
        as_=PARTNER,
        headers=if_match((await profile_view(world, quitter))["version"]),
        purpose="withdraw",
        subject=quitter,
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "withdrawn"
    journey.expect(correlation_of(response), quitter, "ProfileWithdrawn", "RemovedFromPool")

    current = await profile_view(world, changed)
    document = ineligible(journey.candidates[changed].document)
    response = await world.call(
        "profile", "PUT", f"/v1/profiles/{changed}", as_=PARTNER, json_body=document,
        headers=if_match(current["version"]), purpose="update", subject=changed,
    )  # fmt: skip
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "removed_from_pool"
    journey.expect(
        correlation_of(response), changed, "ProfileUpdated", "ProfileRemovedFromPool", "RemovedFromPool"
    )
    for gone in (quitter, changed):
        await poll(partial(_not_in_pool, world, gone), 30, f"{gone} to leave ranking's pool")
    journey.roles["left"] = [quitter, changed]


async def test_ops_erase_a_never_invited_profile_and_no_trace_of_the_person_is_left(
    world: World, journey: Journey
) -> None:
    """Issue 16 (docs/PRIVACY.md): markers written into a profile's identity, passport number and
    employer are, once ops erased it, in no database dump, no Kafka log segment (DLQs included) and no
    service's log; the other services dropped what they held of the person."""
    assert journey.today is not None
    tag = "MK" + uuid.uuid4().hex[:12].upper()
    markers = [f"Family{tag}", f"Given{tag}", f"mail{tag}", f"PP{tag}"[:20], f"Employer{tag}"]
    document = varied_documents(1, journey.today, seed=16)[0]
    document["identity"] = {
        "family_name": markers[0],
        "given_names": markers[1],
        "email": f"{markers[2]}@example.org",
        "uci": "1234567890",
        "passport_number": markers[3],
    }
    offer = document.get("job_offer") or {
        "noc_code": "21231",
        "teer": 1,
        "full_time": True,
        "non_seasonal": True,
        "duration_months": None,
        "lmia_or_exempt": True,
        "canadian_armed_forces": False,
    }
    document["job_offer"] = {**offer, "employer": markers[4]}
    profile_id = await create_extra_profile(world, journey, document)
    submitted = await world.call(
        "profile", "POST", f"/v1/profiles/{profile_id}/submit", as_=PARTNER, headers=if_match(1),
        purpose="submit", subject=profile_id,
    )  # fmt: skip
    assert submitted.status_code == 200, submitted.text
    journey.expect(correlation_of(submitted), profile_id, "ProfileSubmitted", "Ranked")

    facts_query = "SELECT 1 FROM profile_facts WHERE profile_id = $1"

    async def ranked_and_known() -> bool:
        facts = await world.fetch("applications", facts_query, profile_id)
        return await standing(world, profile_id) is not None and bool(facts)

    await poll(ranked_and_known, 30, "the marked profile to be ranked and known to applications")
    # Positive control: the stored response of the idempotent create holds the markers in plain text.
    assert markers_in(await pg_dump_text(world.dsn("profile")), markers)

    staff = await world.call("profile", "GET", f"/v1/admin/profiles/{profile_id}", as_=OPS, purpose="read")
    assert staff.status_code == 200, staff.text
    erased = await world.call(
        "profile", "POST", f"/v1/admin/profiles/{profile_id}/erase", as_=OPS, purpose="erase",
        subject=profile_id, headers={"If-Match": staff.headers["ETag"]},
    )  # fmt: skip
    assert erased.status_code == 200, erased.text
    journey.expect(
        correlation_of(erased), profile_id, "ProfileWithdrawn", "PersonalDataErased", "RemovedFromPool"
    )
    gone = await world.call("profile", "GET", f"/v1/profiles/{profile_id}", as_=PARTNER, purpose="read")
    assert gone.status_code == 404

    async def forgotten() -> bool:
        facts = await world.fetch("applications", facts_query, profile_id)
        document = await world.fetch(
            "ranking", "SELECT document FROM ranking_profiles WHERE profile_id = $1", profile_id
        )
        unpublished = sum((await world.unpublished()).values())
        return not facts and bool(document) and document[0]["document"] is None and unpublished == 0

    await poll(forgotten, 30, "ranking and applications to drop what they held of the erased person")
    await poll(partial(_not_in_pool, world, profile_id), 30, "the erased profile to leave the pool")

    for service in SERVICES:
        dump = await pg_dump_text(world.dsn(service))
        assert markers_in(dump, markers) == [], f"{service}'s database still holds the person"
    segments = kafka_segment_files(world.prefix)
    assert any(".dlq-" in path.parent.name for path in segments), "the DLQs' segments are searched too"
    on_disk = b"".join(path.read_bytes() for path in segments)
    assert profile_id.encode() in on_disk  # the segments are read, uncompressed: the id is there
    assert markers_in(on_disk, markers) == [], "a Kafka log segment still holds the person"
    for service in SERVICES:
        log = world.log_path(service)
        assert markers_in(log.read_bytes() if log.exists() else b"", markers) == [], f"{service}'s log"


async def _not_in_pool(world: World, profile_id: str) -> bool:
    return await standing(world, profile_id) is None


# --- 5. the clock -------------------------------------------------------------------------------------


async def test_the_clock_moves_reminders_fire_once_the_deadline_passes_and_coprs_expire(
    world: World, journey: Journey
) -> None:
    roles = journey.roles
    (lapser,) = roles["lapse"]
    lapse_invitation = journey.candidates[lapser].invitation_id
    assert lapse_invitation is not None
    short = [journey.candidates[p].application_id for p in roles["short_copr"]]

    async def copr_reminders(expected: list[int]) -> bool:
        found = [sorted((await application(world, a))["copr"]["reminders_sent"]) for a in short if a]
        return all(r == sorted(expected) for r in found)

    async def deadline_reminders(expected: list[int]) -> bool:
        return sorted((await invitation(world, lapse_invitation))["reminders_sent"]) == sorted(expected)

    started = time.monotonic()
    await world.set_clock(5 * DAY)
    await poll(lambda: copr_reminders([60]), 30, "the 60-day COPR reminders")
    await world.set_clock(47 * DAY)
    await poll(lambda: deadline_reminders([14]), 30, "the 14-day deadline reminder")
    await world.set_clock(51 * DAY)
    await poll(lambda: copr_reminders([60, 14]), 30, "the 14-day COPR reminders")
    await world.set_clock(58 * DAY)
    await poll(lambda: deadline_reminders([14, 3]), 30, "the 3-day deadline reminder")

    # 61 days on: the invitation has expired and the profile has left the pool for good.
    await world.set_clock(61 * DAY)

    async def lapsed() -> bool:
        return (await invitation(world, lapse_invitation))["state"] == "expired"

    await poll(lapsed, 30, "the unanswered invitation to expire")
    await poll(
        lambda: _profile_status_is(world, lapser, "invitation_expired"),
        30,
        "the profile to record the expiry",
    )
    assert await standing(world, lapser) is None

    await world.set_clock(66 * DAY)

    async def coprs_expired() -> bool:
        states = [(await application(world, a))["state"] for a in short if a]
        return states == ["copr_expired"] * len(short)

    await poll(coprs_expired, 30, "the short COPRs to expire")
    # Moving to the same instant again, and a moment later, sends nothing twice.
    await world.set_clock(66 * DAY + timedelta(minutes=1))
    await asyncio.sleep(1.0)
    assert await deadline_reminders([14, 3]) and await copr_reminders([60, 14])

    # A year on: every profile still in the pool has expired.
    await world.set_clock(367 * DAY)
    survivors = [p for p in journey.candidates if p not in journey.invited and p not in roles["left"]]
    survivors += roles["decline"]

    async def pool_expired() -> bool:
        statuses = await limited(profile_view(world, p) for p in survivors[:20] + roles["decline"])
        return all(s["status"] == "expired" for s in statuses) and await _pool_size_is(world, 0)

    await poll(pool_expired, 60, "the pool to expire after 12 months")
    world.record("clock_steps_s", round(time.monotonic() - started, 2))


async def test_no_service_log_carries_the_identity_of_any_candidate(world: World, journey: Journey) -> None:
    """Issue 16: every profile of the journey carries an identity with a unique marker; no service's
    log holds one of them (logs never carry personal data)."""
    assert len(journey.personal_markers) == PROFILES
    logs = {service: world.log_path(service) for service in SERVICES}
    assert all(path.exists() and path.stat().st_size > 0 for path in logs.values()), logs
    logs.update({path.stem: path for path in world.log_path("profile").parent.glob("*.log")})
    for service, path in logs.items():
        text = path.read_bytes()
        found = [m for m in journey.personal_markers if m.encode() in text]
        assert found == [], f"{service}'s log carries personal data: {found[:3]}"


async def _profile_status_is(world: World, profile_id: str, status: str) -> bool:
    return (await profile_view(world, profile_id))["status"] == status


# --- 5b. rules ---------------------------------------------------------------------------------------


async def test_ops_activate_the_old_rules_and_back_and_the_pool_follows(
    world: World, journey: Journey
) -> None:
    """RulesActivated on the ranking topic; a candidate without a job offer keeps the score under the
    2020-10-27 rules but not the rules version (PoolDetailsChanged); `in-force` again afterwards."""
    (document,) = varied_documents(1, await world.today("profile"), seed=1111)
    document["job_offer"] = None
    profile_id = await create_extra_profile(world, journey, document)
    submitted = await world.call(
        "profile", "POST", f"/v1/profiles/{profile_id}/submit", as_=PARTNER, headers=if_match(1),
        purpose="submit", subject=profile_id,
    )  # fmt: skip
    assert submitted.status_code == 200, submitted.text
    before = await poll(lambda: standing(world, profile_id), 60, "the new profile ranked")
    for version in ("2020-10-27", "in-force"):
        rules = await world.call("ranking", "GET", "/v1/admin/rules", as_=OPS, purpose="rules")
        assert rules.status_code == 200, rules.text
        path = f"/v1/admin/rules/{version}/activate"
        headers = {"If-Match": rules.headers["ETag"], "Idempotency-Key": str(uuid.uuid4())}
        response = await world.call("ranking", "POST", path, as_=OPS, purpose="rules", headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["rules_version"] == version
        # A retry (its If-Match now stale) gets the first answer; nothing is activated twice.
        retried = await world.call("ranking", "POST", path, as_=OPS, purpose="rules", headers=headers)
        assert retried.status_code == 200 and retried.json() == response.json(), retried.text
        assert retried.headers["Idempotent-Replayed"] == "true"
        after = await standing(world, profile_id)
        assert after is not None and after["crs"] == before["crs"], (before, after)


# --- 6. webhooks ------------------------------------------------------------------------------------


async def test_a_partner_hears_of_its_profiles_by_signed_webhook_and_a_410_disables_a_subscription(
    world: World, journey: Journey, tmp_path: Path
) -> None:
    """Every subscription change is an event: created, updated, secret rotated, deleted, and disabled
    when the receiver answers 410 Gone. The receivers are real processes verifying each signature with
    the `standardwebhooks` package (a request that does not verify is not counted as received)."""
    partner_hooks = Receiver(tmp_path, {})
    created = await subscribe(world, PARTNER, partner_hooks.url("/hooks/partner"), ["ee.profile.*"])
    partner_hooks.routes = {"/hooks/partner": created["secret"]}
    gone_hooks = Receiver(tmp_path, {}, status=410)
    gone = await subscribe(world, OPS, gone_hooks.url("/hooks/gone"), ["ee.profile.ProfileCreated"])
    gone_hooks.routes = {"/hooks/gone": gone["secret"]}
    await partner_hooks.start()
    await gone_hooks.start()
    try:
        document = next(iter(journey.candidates.values())).document
        profile_id = await create_extra_profile(world, journey, document)

        async def heard(receiver: Receiver, path: str) -> list[dict[str, Any]] | None:
            mine = [r for r in receiver.accepted(path) if r["body"]["data"].get("profile_id") == profile_id]
            return mine or None

        [delivered] = await poll(partial(heard, partner_hooks, "/hooks/partner"), 30, "the partner's webhook")
        assert delivered["body"]["type"].startswith("ee.profile.ProfileCreated")
        await poll(partial(heard, gone_hooks, "/hooks/gone"), 30, "the 410 receiver's webhook")

        async def disabled() -> bool:
            path = f"/v1/webhooks/subscriptions/{gone['id']}"
            found = await world.call("notifications", "GET", path, as_=OPS)
            return found.status_code == 200 and found.json()["enabled"] is False

        await poll(disabled, 30, "the subscription whose receiver answered 410 to be disabled")
    finally:
        await partner_hooks.stop()
        await gone_hooks.stop()

    path = f"/v1/webhooks/subscriptions/{created['id']}"
    changed = await world.call(
        "notifications", "PATCH", path, as_=PARTNER, json_body={"description": "renamed"},
        headers={"If-Match": created["etag"]},
    )  # fmt: skip
    assert changed.status_code == 200, changed.text
    rotated = await world.call(
        "notifications", "POST", f"{path}/secret/rotate", as_=PARTNER, json_body={"overlap_seconds": 60},
        headers={"If-Match": changed.headers["ETag"]},
    )  # fmt: skip
    assert rotated.status_code == 200 and rotated.json()["secret"] != created["secret"], rotated.text
    deleted = await world.call(
        "notifications", "DELETE", path, as_=PARTNER, headers={"If-Match": rotated.headers["ETag"]}
    )
    assert deleted.status_code == 204, deleted.text


async def subscribe(world: World, who: tuple[str, str], url: str, event_types: list[str]) -> dict[str, Any]:
    response = await world.call(
        "notifications", "POST", "/v1/webhooks/subscriptions", as_=who,
        json_body={"url": url, "event_types": event_types, "description": "e2e journey"},
    )  # fmt: skip
    assert response.status_code == 201, response.text
    return {**response.json(), "etag": response.headers["ETag"]}


# --- 7. the log ---------------------------------------------------------------------------------------


async def test_every_catalogue_event_is_on_its_topic_valid_in_order_with_its_correlation_id(
    world: World, journey: Journey, pytestconfig: pytest.Config
) -> None:
    await asyncio.sleep(1.0)  # the relays publish within milliseconds; leave them a moment
    report = check_log(await read_log(world), world.prefix)
    figures = {
        "records": report.records,
        "valid_events": len(report.events),
        "duplicates": report.duplicates,
        "by_type": dict(sorted(report.by_type.items())),
        "requests_sent": len(world.sent),
        **journey.timings,
        **world.figures,
    }
    report_figures(pytestconfig, "journey", figures)
    assert not report.problems(), report.problems()
    assert report.duplicates == 0
    missing = sorted({event.event_name() for event in CATALOGUE} - set(report.by_type))
    assert not missing, f"catalogue events never published: {missing}"

    found: set[tuple[str, str, str]] = set()
    for event in report.events:
        found.add((event.envelope.correlationid or "", event.name, event.key or ""))
    absent = [e for e in journey.expected if e not in found]
    assert not absent, (
        f"{len(absent)} of {len(journey.expected)} caused events lack their request's "
        f"correlation id, e.g. {absent[:5]}"
    )

    # Reminders once: one event per invitation and threshold.
    for name in ("InvitationDeadlineApproaching", "CoprExpiringSoon"):
        keys = [(e.data["invitation_id"], e.data["days_before"]) for e in report.of(name)]
        assert len(keys) == len(set(keys)), f"{name} sent twice: {keys}"
    # One outcome per invitation.
    for name in ("Invited", "InvitationDeclined", "InvitationExpired", "Applied", "Approved", "CoprIssued"):
        ids = [e.data["invitation_id"] for e in report.of(name)]
        assert len(ids) == len(set(ids)), f"{name} twice for one invitation"
    assert len(report.of("Invited")) == GENERAL_SIZE + CATEGORY_SIZE
    assert len(report.of("InvitationDeclined")) == 3 and len(report.of("InvitationExpired")) == 1
    assert len(report.of("Applied")) == 56 and len(report.of("Approved")) == 54
    assert len(report.of("Refused")) == 1 and len(report.of("Landed")) == 1
    assert len(report.of("ProfileCreated")) == PROFILES + len(journey.extra_profiles)
