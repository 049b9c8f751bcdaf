"""The profile API against the real PostgreSQL and Kafka (the app runs in-process with its runtime)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from profile_harness import Service, example_document, running_service, settings_overrides

from profile_service.settings import ProfileSettings
from shared.testing import SettingsFactory

pytestmark = pytest.mark.infra


@pytest.fixture(scope="module")
async def service(make_settings: SettingsFactory) -> AsyncIterator[Service]:
    async with running_service(make_settings(ProfileSettings, **settings_overrides())) as running:
        yield running


def sub() -> str:
    return f"cand-{uuid.uuid4().hex[:8]}"


async def count_events(service: Service) -> int:
    async with service.runtime.engine.connect() as conn:
        return int((await conn.execute(sa.text("SELECT count(*) FROM event_store"))).scalar_one())


# --- create, read, list -------------------------------------------------------------------------------------


async def test_create_returns_a_draft_with_etag_and_location(service: Service) -> None:
    me = sub()
    response = await service.client.post("/v1/profiles", json=example_document(), headers=service.auth(me))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "draft" and body["version"] == 1 and body["owner"] == me
    assert body["submitted_at"] is None and body["expires_at"] is None
    assert body["eligible_programs"] == ["fsw"]
    assert response.headers["ETag"] == '"1"'
    assert response.headers["Location"] == f"/v1/profiles/{body['id']}"
    again = await service.client.get(response.headers["Location"], headers=service.auth(me))
    assert again.status_code == 200 and again.headers["ETag"] == '"1"'
    assert again.json()["document"]["citizenship"] == "IN"


async def test_list_is_the_callers_own_and_paginated(service: Service) -> None:
    me, other = sub(), sub()
    ids = [(await service.create(me))["id"] for _ in range(3)]
    await service.create(other)
    first = await service.client.get("/v1/profiles?limit=2", headers=service.auth(me))
    second = await service.client.get("/v1/profiles?limit=2&offset=2", headers=service.auth(me))
    assert first.status_code == 200 and second.status_code == 200
    assert first.json()["total"] == 3
    assert [p["id"] for p in first.json()["items"] + second.json()["items"]] == ids


async def test_partner_sees_only_the_profiles_it_created(service: Service) -> None:
    acme, globex = f"partner-{uuid.uuid4().hex[:6]}", f"partner-{uuid.uuid4().hex[:6]}"
    mine = await service.create(acme, role="partner")
    theirs = await service.create(globex, role="partner")
    listing = await service.client.get("/v1/profiles", headers=service.auth(acme, "partner"))
    assert [p["id"] for p in listing.json()["items"]] == [mine["id"]]
    hidden = await service.client.get(f"/v1/profiles/{theirs['id']}", headers=service.auth(acme, "partner"))
    assert hidden.status_code == 404


# --- validation ---------------------------------------------------------------------------------------------


async def test_a_bad_document_is_422_naming_each_field_and_nothing_is_stored(service: Service) -> None:
    before = await count_events(service)
    doc = example_document(family_size=0)
    doc["language_tests"][0]["reading"] = 9.25
    doc["work_experience"][0]["noc_code"] = "2123"
    response = await service.client.post("/v1/profiles", json=doc, headers=service.auth(sub()))
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    fields = {error["field"] for error in response.json()["errors"]}
    assert {"family_size", "language_tests.0.reading", "work_experience.0.noc_code"} <= fields
    assert await count_events(service) == before


async def test_dates_after_the_clocks_today_are_422_naming_the_fields(service: Service) -> None:
    before = await count_events(service)
    doc = example_document(date_of_birth="2030-01-01")
    doc["language_tests"][0]["taken_on"] = "2025-06-02"  # the day after the service's business today
    response = await service.client.post("/v1/profiles", json=doc, headers=service.auth(sub()))
    assert response.status_code == 422, response.text
    fields = {error["field"] for error in response.json()["errors"]}
    assert {"date_of_birth", "language_tests.0.taken_on"} <= fields
    assert await count_events(service) == before


async def test_a_bad_update_is_422_and_changes_nothing(service: Service) -> None:
    me = sub()
    created = await service.create(me)
    bad = example_document(marital_status="married")  # without a spouse
    response = await service.client.put(
        f"/v1/profiles/{created['id']}", json=bad, headers={**service.auth(me), "If-Match": '"1"'}
    )
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["spouse"]
    assert (await service.get(me, created["id"]))["version"] == 1


# --- idempotency --------------------------------------------------------------------------------------------


async def test_idempotency_key_replays_the_first_creation(service: Service) -> None:
    me, key = sub(), str(uuid.uuid4())
    first = await service.create(me, headers={"Idempotency-Key": key})
    replay = await service.client.post(
        "/v1/profiles", json=example_document(), headers={**service.auth(me), "Idempotency-Key": key}
    )
    assert replay.status_code == 201 and replay.json()["id"] == first["id"]
    assert replay.headers["Idempotent-Replayed"] == "true" and replay.headers["ETag"] == '"1"'
    other = await service.client.post(
        "/v1/profiles",
        json=example_document(family_size=2),
        headers={**service.auth(me), "Idempotency-Key": key},
    )
    assert other.status_code == 422
    listing = await service.client.get("/v1/profiles", headers=service.auth(me))
    assert listing.json()["total"] == 1


# --- optimistic concurrency ---------------------------------------------------------------------------------


async def test_put_without_if_match_is_428_and_stale_is_412(service: Service) -> None:
    me = sub()
    created = await service.create(me)
    url = f"/v1/profiles/{created['id']}"
    missing = await service.client.put(url, json=example_document(), headers=service.auth(me))
    assert missing.status_code == 428
    headers = {**service.auth(me), "If-Match": '"1"'}
    ok = await service.client.put(url, json=example_document(), headers=headers)
    assert ok.status_code == 200 and ok.headers["ETag"] == '"2"' and ok.json()["version"] == 2
    stale = await service.client.put(url, json=example_document(), headers=headers)
    assert stale.status_code == 412 and stale.headers["ETag"] == '"2"'


async def test_two_updates_with_the_same_if_match_one_wins_one_412(service: Service) -> None:
    me = sub()
    created = await service.create(me)
    url = f"/v1/profiles/{created['id']}"
    headers = {**service.auth(me), "If-Match": '"1"'}
    for _ in range(5):  # several rounds: the race must resolve the same way every time
        current = (await service.get(me, created["id"]))["version"]
        headers["If-Match"] = f'"{current}"'
        responses = await asyncio.gather(
            service.client.put(url, json=example_document(settlement_funds_cad=20_000), headers=headers),
            service.client.put(url, json=example_document(settlement_funds_cad=30_000), headers=headers),
        )
        assert sorted(r.status_code for r in responses) == [200, 412], [r.text for r in responses]
        assert (await service.get(me, created["id"]))["version"] == current + 1


# --- authorization ------------------------------------------------------------------------------------------


async def test_candidate_a_cannot_read_or_change_b(service: Service) -> None:
    alice, bob = sub(), sub()
    bobs = await service.create(bob)
    url = f"/v1/profiles/{bobs['id']}"
    auth = service.auth(alice)
    assert (await service.client.get(url, headers=auth)).status_code == 404
    assert (await service.client.get(f"{url}/eligibility", headers=auth)).status_code == 404
    put = await service.client.put(url, json=example_document(), headers={**auth, "If-Match": '"1"'})
    assert put.status_code == 404
    for action in ("submit", "withdraw"):
        answer = await service.client.post(f"{url}/{action}", headers={**auth, "If-Match": '"1"'})
        assert answer.status_code == 404
    assert (await service.get(bob, bobs["id"]))["status"] == "draft"


async def test_no_token_is_401_and_a_province_cannot_use_profile_routes(service: Service) -> None:
    assert (await service.client.get("/v1/profiles")).status_code == 401
    response = await service.client.get("/v1/profiles", headers=service.auth("on-1", "province", "ON"))
    assert response.status_code == 403


# --- eligibility, submit, withdraw --------------------------------------------------------------------------


async def test_eligibility_reports_each_program(service: Service) -> None:
    me = sub()
    created = await service.create(me)
    response = await service.client.get(f"/v1/profiles/{created['id']}/eligibility", headers=service.auth(me))
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"fsw", "cec", "fst"}
    assert body["fsw"] == {"eligible": True, "reasons": [], "points": 72}
    assert body["cec"]["eligible"] is False and body["cec"]["reasons"]


async def test_submit_enters_the_pool_once(service: Service) -> None:
    me = sub()
    created = await service.create(me)
    submitted = await service.submit(me, created["id"])
    assert submitted["status"] == "in_pool" and submitted["eligible_programs"] == ["fsw"]
    assert submitted["submitted_at"].startswith("2025-06-01")
    assert submitted["expires_at"].startswith("2026-06-01")
    again = await service.client.post(
        f"/v1/profiles/{created['id']}/submit", headers=await service.fresh(me, created["id"])
    )
    assert again.status_code == 409


async def test_submit_when_ineligible_is_422_with_the_reasons(service: Service) -> None:
    me = sub()
    created = await service.create(me, example_document(intends_to_reside_in_quebec=True))
    response = await service.client.post(
        f"/v1/profiles/{created['id']}/submit", headers=await service.fresh(me, created["id"])
    )
    assert response.status_code == 422
    body = response.json()
    assert body["reasons"] and any("Quebec" in reason for reason in body["reasons"])
    assert (await service.get(me, created["id"]))["status"] == "draft"


async def test_withdraw_then_submit_is_409(service: Service) -> None:
    me = sub()
    created = await service.create(me)
    await service.submit(me, created["id"])
    withdrawn = await service.client.post(
        f"/v1/profiles/{created['id']}/withdraw", headers=await service.fresh(me, created["id"])
    )
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "withdrawn"
    response = await service.client.post(
        f"/v1/profiles/{created['id']}/submit", headers=await service.fresh(me, created["id"])
    )
    assert response.status_code == 409
    assert "Create a new profile" in response.json()["detail"]


async def test_an_update_that_makes_an_in_pool_profile_ineligible_removes_it(service: Service) -> None:
    me = sub()
    created = await service.create(me)
    submitted = await service.submit(me, created["id"])
    response = await service.client.put(
        f"/v1/profiles/{created['id']}",
        json=example_document(intends_to_reside_in_quebec=True),
        headers={**service.auth(me), "If-Match": f'"{submitted["version"]}"'},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "removed_from_pool" and body["eligible_programs"] == []
    assert body["submitted_at"] == submitted["submitted_at"]


# --- nominations --------------------------------------------------------------------------------------------


async def test_province_on_cannot_nominate_as_bc(service: Service) -> None:
    """BC's nominations are someone else's resource for ON: 404, as everywhere (never 403)."""
    me = sub()
    created = await service.create(me)
    await service.submit(me, created["id"])
    on = service.auth("on-officer", "province", "ON")
    response = await service.client.post(
        "/v1/provinces/BC/nominations", json={"profile_id": created["id"]}, headers=on
    )
    assert response.status_code == 404, response.text
    listing = await service.client.get("/v1/provinces/BC/nominations", headers=on)
    assert listing.status_code == 404
    withdrawal = await service.client.delete(
        f"/v1/provinces/BC/nominations/{created['id']}", headers={**on, "If-Match": '"2"'}
    )
    assert withdrawal.status_code == 404


async def test_nominations_one_active_per_candidate_and_only_in_the_pool(service: Service) -> None:
    me = sub()
    created = await service.create(me)
    on, bc = service.auth("on-officer", "province", "ON"), service.auth("bc-officer", "province", "BC")
    body = {"profile_id": created["id"]}

    async def nominate(province: str, headers: dict[str, str]) -> int:
        url = f"/v1/provinces/{province}/nominations"
        return (await service.client.post(url, json=body, headers=headers)).status_code

    assert await nominate("ON", on) == 404  # a draft is not in the pool
    await service.submit(me, created["id"])
    issued = await service.client.post("/v1/provinces/ON/nominations", json=body, headers=on)
    assert issued.status_code == 201 and issued.json()["province"] == "ON"
    assert await nominate("BC", bc) == 409
    listing = await service.client.get("/v1/provinces/ON/nominations?limit=100", headers=on)
    assert created["id"] in [n["profile_id"] for n in listing.json()["items"]]
    url = f"/v1/provinces/BC/nominations/{created['id']}"
    assert (await service.client.delete(url, headers={**bc, "If-Match": '"3"'})).status_code == 404
    etag = issued.headers["ETag"]
    withdrawn = await service.client.delete(
        f"/v1/provinces/ON/nominations/{created['id']}", headers={**on, "If-Match": etag}
    )
    assert withdrawn.status_code == 204
    assert await nominate("BC", bc) == 201
    profile = await service.get(me, created["id"])
    assert profile["nomination"]["province"] == "BC"


async def test_offsets_beyond_the_database_range_are_422_at_the_edge(service: Service) -> None:
    """An OFFSET beyond PostgreSQL's bigint used to reach the database and come back as a 503."""
    for path, headers in (
        ("/v1/profiles", service.auth(sub())),
        ("/v1/provinces/ON/nominations", service.auth("on-officer", "province", "ON")),
    ):
        beyond = {"offset": 99_999_999_999_999_999_999}
        response = await service.client.get(path, params=beyond, headers=headers)
        assert response.status_code == 422, (path, response.text)
        assert response.json()["errors"][0]["field"] == "query.offset"


async def test_money_beyond_any_plausible_amount_is_422_not_a_server_error(service: Service) -> None:
    document = example_document()
    document["settlement_funds_cad"] = 10**20
    response = await service.client.post("/v1/profiles", json=document, headers=service.auth(sub()))
    assert response.status_code == 422, response.text


async def test_submit_and_withdraw_need_if_match_like_every_command(service: Service) -> None:
    me = sub()
    created = await service.create(me)
    for action in ("submit", "withdraw"):
        url = f"/v1/profiles/{created['id']}/{action}"
        response = await service.client.post(url, headers=service.auth(me))
        assert response.status_code == 428, (action, response.text)
    stale = await service.client.post(
        f"/v1/profiles/{created['id']}/submit", headers={**service.auth(me), "If-Match": '"7"'}
    )
    assert stale.status_code == 412 and stale.headers["ETag"] == '"1"'
    assert (await service.get(me, created["id"]))["status"] == "draft"


async def test_a_retried_nomination_with_the_same_key_gets_the_same_answer(service: Service) -> None:
    me = sub()
    created = await service.create(me)
    await service.submit(me, created["id"])
    headers = {**service.auth("on-officer", "province", "ON"), "Idempotency-Key": str(uuid.uuid4())}
    body = {"profile_id": created["id"]}
    first = await service.client.post("/v1/provinces/ON/nominations", json=body, headers=headers)
    again = await service.client.post("/v1/provinces/ON/nominations", json=body, headers=headers)
    assert first.status_code == again.status_code == 201, again.text
    assert again.json() == first.json() and again.headers["Location"] == first.headers["Location"]
    assert again.headers["Idempotent-Replayed"] == "true"
    without_key = await service.client.post(
        "/v1/provinces/ON/nominations", json=body, headers=service.auth("on-officer", "province", "ON")
    )
    assert without_key.status_code == 409


async def test_a_retried_nomination_withdrawal_with_the_same_key_is_204_again(service: Service) -> None:
    me = sub()
    created = await service.create(me)
    await service.submit(me, created["id"])
    on = service.auth("on-officer", "province", "ON")
    body = {"profile_id": created["id"]}
    issued = await service.client.post("/v1/provinces/ON/nominations", json=body, headers=on)
    assert issued.status_code == 201
    url = f"/v1/provinces/ON/nominations/{created['id']}"
    keyed = {**on, "Idempotency-Key": str(uuid.uuid4()), "If-Match": issued.headers["ETag"]}
    first, again = [await service.client.delete(url, headers=keyed) for _ in range(2)]
    assert first.status_code == again.status_code == 204 and again.headers["Idempotent-Replayed"] == "true"
    without_key = {**on, "If-Match": issued.headers["ETag"]}
    assert (await service.client.delete(url, headers=without_key)).status_code == 404  # gone


async def test_a_nomination_withdrawal_needs_the_nominations_etag(service: Service) -> None:
    """The nomination's ETag is the nominated profile's version (on the nominating answer, the list
    and GET of the nomination): 428 without If-Match, 412 once the profile changed since."""
    me = sub()
    created = await service.create(me)
    submitted = await service.submit(me, created["id"])
    on = service.auth("on-officer", "province", "ON")
    issued = await service.client.post("/v1/provinces/ON/nominations", json={"profile_id": created["id"]},
                                       headers=on)  # fmt: skip
    assert issued.status_code == 201, issued.text
    assert issued.headers["ETag"] == f'"{submitted["version"] + 1}"'
    url = f"/v1/provinces/ON/nominations/{created['id']}"
    read = await service.client.get(url, headers=on)
    assert read.status_code == 200 and read.headers["ETag"] == issued.headers["ETag"]
    assert read.json()["version"] == issued.json()["version"]
    elsewhere = await service.client.get(f"/v1/provinces/BC/nominations/{created['id']}",
                                         headers=service.auth("bc-officer", "province", "BC"))  # fmt: skip
    assert elsewhere.status_code == 404

    missing = await service.client.delete(url, headers=on)
    assert missing.status_code == 428, missing.text
    stale = await service.client.delete(url, headers={**on, "If-Match": f'"{submitted["version"]}"'})
    assert stale.status_code == 412, stale.text
    assert (await service.client.get(url, headers=on)).status_code == 200  # still nominated
    withdrawn = await service.client.delete(url, headers={**on, "If-Match": read.headers["ETag"]})
    assert withdrawn.status_code == 204, withdrawn.text
    assert (await service.client.get(url, headers=on)).status_code == 404


async def test_nominating_an_unknown_profile_is_404(service: Service) -> None:
    response = await service.client.post(
        "/v1/provinces/ON/nominations",
        json={"profile_id": str(uuid.uuid4())},
        headers=service.auth("on-officer", "province", "ON"),
    )
    assert response.status_code == 404


async def test_openapi_publishes_the_document_with_examples(service: Service) -> None:
    schema = (await service.client.get("/openapi.json")).json()
    document = schema["components"]["schemas"]["ProfileDocument"]
    assert document["examples"][0]["citizenship"] == "IN"
    assert "/v1/provinces/{code}/nominations/{profile_id}" in schema["paths"]
