"""The draws service over HTTP: the app as deployed (runtime, relay, consumer), real PostgreSQL and Kafka."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from draws_fixtures import *  # noqa: F403  (the fixtures)
from draws_fixtures import NOW, candidate
from draws_ranking_peer import RankingPeer
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from draws_service.application.handlers import DrawsService
from draws_service.main import build_app
from draws_service.settings import DrawsSettings
from shared import testing
from shared.auth import mint_token
from shared.clock import Clock
from shared.envelope import decode, encode
from shared.events.catalogue import APPLICATIONS_TOPIC, DRAWS_TOPIC, InvitationDeclined
from shared.messages import envelope_for

pytestmark = pytest.mark.infra

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
async def app(
    draws_settings: DrawsSettings,
    draws_topics: DrawsSettings,
    draws_database: str,
    ranking: tuple[RankingPeer, str],
) -> AsyncIterator[FastAPI]:
    settings = draws_settings.model_copy(update={"ranking_url": ranking[1]})
    app = build_app(settings, clock=Clock.frozen(NOW))
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def client(app: FastAPI, clean_db: None, pool: RankingPeer) -> AsyncIterator[httpx.AsyncClient]:
    app.state.draws.after_chunk = None
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://draws.test") as client:
        yield client


def auth(settings: DrawsSettings, role: str = "ops", sub: str = "alice") -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(settings.auth_secret, sub, role)}"}


def ops_key(settings: DrawsSettings, key: str) -> dict[str, str]:
    return {**auth(settings), "Idempotency-Key": key}


async def hold(client: httpx.AsyncClient, settings: DrawsSettings, key: str, **body: Any) -> httpx.Response:
    return await client.post("/v1/draws", json=body, headers=ops_key(settings, key))


async def test_plan_is_a_dry_run(
    client: httpx.AsyncClient, pool: RankingPeer, draws_settings: DrawsSettings
) -> None:
    pool.load([candidate(495 + i % 10, minutes=i) for i in range(30)] + [candidate(650)])
    response = await client.post(
        "/v1/draws/plan", json={"type": "general", "size": 11}, headers=auth(draws_settings)
    )
    assert response.status_code == 200, response.text
    plan = response.json()
    assert (plan["would_invite"], plan["cutoff_crs"], plan["eligible_count"], plan["pool_size"]) == (
        11,
        501,
        31,
        31,
    )
    # 650, then three each of 504, 503, 502, then the earliest-submitted 501 (i = 6)
    assert plan["tie_break_at"] == pool.entries[6]["submitted_at"].replace("+00:00", "Z")
    bins = {b["range"]: b["count"] for b in plan["distribution"]}
    assert (bins["601-1200"], bins["501-600"], sum(bins.values())) == (1, 10, 11)
    assert (await client.get("/v1/draws")).json()["items"] == []


async def test_ops_only_commands_need_an_ops_token(
    client: httpx.AsyncClient, draws_settings: DrawsSettings
) -> None:
    body = {"type": "general", "size": 5}
    anonymous = await client.post("/v1/draws/plan", json=body)
    assert anonymous.status_code == 401 and anonymous.headers["content-type"].startswith(PROBLEM)
    candidate_token = auth(draws_settings, role="candidate")
    forbidden = await client.post("/v1/draws", json=body, headers={**candidate_token, "Idempotency-Key": "k"})
    assert forbidden.status_code == 403
    assert "needs the role ops" in forbidden.json()["detail"]
    assert (await client.get("/v1/draws/1/invitations")).status_code == 401


async def test_holding_needs_an_idempotency_key(
    client: httpx.AsyncClient, draws_settings: DrawsSettings
) -> None:
    response = await client.post("/v1/draws", json={"type": "cec", "size": 5}, headers=auth(draws_settings))
    assert response.status_code == 428
    assert "Idempotency-Key" in response.json()["detail"]


async def test_bad_requests_say_what_to_change(
    client: httpx.AsyncClient, draws_settings: DrawsSettings
) -> None:
    unknown = await hold(client, draws_settings, "u", type="lottery", size=5)
    assert unknown.status_code == 422 and unknown.headers["content-type"].startswith(PROBLEM)
    assert "unknown round type 'lottery'; use one of: general, pnp, cec" in unknown.json()["detail"]
    zero = await hold(client, draws_settings, "z", type="cec", size=0)
    assert zero.status_code == 422
    assert [e["field"] for e in zero.json()["errors"]] == ["size"]
    retired = await hold(client, draws_settings, "a", type="agriculture", size=5)
    assert retired.status_code == 422 and "no version in force on 2026-09-15" in retired.json()["detail"]


async def test_hold_replay_and_key_reuse(
    client: httpx.AsyncClient, pool: RankingPeer, draws_settings: DrawsSettings
) -> None:
    pool.load([candidate(500 - i, minutes=i, programs=("cec",)) for i in range(8)])
    first = await hold(client, draws_settings, "round-1", type="cec", size=5)
    assert first.status_code == 201, first.text
    round_ = first.json()
    assert first.headers["location"] == f"/v1/draws/{round_['id']}"
    assert (round_["round_number"], round_["invitations"], round_["cutoff_crs"], round_["type"]) == (
        1,
        5,
        496,
        "cec",
    )
    assert round_["ircc"]["drawName"] == "Canadian Experience Class"

    again = await hold(client, draws_settings, "round-1", type="cec", size=5)
    assert again.status_code == 201 and again.json() == round_
    assert again.headers["idempotent-replayed"] == "true"

    reused = await hold(client, draws_settings, "round-1", type="cec", size=6)
    assert reused.status_code == 422 and "already held round 1" in reused.json()["detail"]
    listed = (await client.get("/v1/draws")).json()["items"]
    assert [r["round_number"] for r in listed] == [1]


async def test_published_rounds_are_public_and_carry_no_personal_data(
    client: httpx.AsyncClient, pool: RankingPeer, draws_settings: DrawsSettings
) -> None:
    pool.load([candidate(480 - i, minutes=i, categories=("french",)) for i in range(6)])
    held = (await hold(client, draws_settings, "fr", type="french", size=4)).json()
    await hold(client, draws_settings, "gen", type="general", size=1)
    by_id = await client.get(f"/v1/draws/{held['id']}")
    by_number = await client.get("/v1/draws/1")
    assert by_id.status_code == by_number.status_code == 200
    assert by_id.json() == by_number.json() == held
    assert held["name"] == "French-Language proficiency 2026" and held["category_version"] == "2026"
    assert held["tie_break_at"] == pool.entries[3]["submitted_at"].replace("+00:00", "Z")
    text_of_everything = (await client.get("/v1/draws")).text + by_id.text
    assert not any(entry["profile_id"] in text_of_everything for entry in pool.entries)
    page = (await client.get("/v1/draws", params={"limit": 1})).json()
    assert [r["round_number"] for r in page["items"]] == [2] and page["next_before"] == 2
    older = (await client.get("/v1/draws", params={"limit": 1, "before": 2})).json()
    assert [r["round_number"] for r in older["items"]] == [1] and older["next_before"] is None


async def test_unknown_round_is_a_404_problem(client: httpx.AsyncClient) -> None:
    for ref in ("999", "not-a-round", "7b7c0d0e-0000-4000-8000-000000000000"):
        response = await client.get(f"/v1/draws/{ref}")
        assert response.status_code == 404 and response.headers["content-type"].startswith(PROBLEM)
        assert "GET /v1/draws" in response.json()["detail"]


async def test_invitations_are_paged_for_ops(
    client: httpx.AsyncClient, pool: RankingPeer, draws_settings: DrawsSettings
) -> None:
    pool.load([candidate(400 + i, minutes=i) for i in range(7)])
    held = (await hold(client, draws_settings, "paged", type="general", size=7)).json()
    ranks: list[int] = []
    after = 0
    while True:
        response = await client.get(
            f"/v1/draws/{held['id']}/invitations",
            params={"limit": 3, "after": after},
            headers=auth(draws_settings),
        )
        assert response.status_code == 200
        page = response.json()
        ranks += [item["rank"] for item in page["items"]]
        if page["next_after"] is None:
            break
        after = page["next_after"]
    assert ranks == [1, 2, 3, 4, 5, 6, 7]
    first = (
        await client.get("/v1/draws/1/invitations", params={"limit": 1}, headers=auth(draws_settings))
    ).json()
    item = first["items"][0]
    assert (item["crs"], item["program"], item["status"], item["profile_id"]) == (
        406,
        "fsw",
        "open",
        pool.entries[6]["profile_id"],
    )


async def test_ranking_down_is_a_503_problem(
    app: FastAPI, client: httpx.AsyncClient, draws_settings: DrawsSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    service: DrawsService = app.state.draws
    monkeypatch.setattr(service.ranking, "_url", "http://127.0.0.1:9/v1/pool/selection")
    response = await hold(client, draws_settings, "down", type="general", size=3)
    assert response.status_code == 503 and response.headers["retry-after"] == "5"
    assert "EE_DRAWS_RANKING_URL" in response.json()["detail"]


async def test_two_rounds_at_once_over_http_never_share_a_candidate(
    client: httpx.AsyncClient, pool: RankingPeer, draws_settings: DrawsSettings, engine: AsyncEngine
) -> None:
    pool.load([candidate(600 - i, minutes=i) for i in range(40)])
    pool.delay_s = 0.2
    first, second = await asyncio.gather(
        hold(client, draws_settings, "p", type="general", size=25),
        hold(client, draws_settings, "q", type="general", size=25),
    )
    assert sorted([first.json()["invitations"], second.json()["invitations"]]) == [15, 25]
    async with engine.connect() as conn:
        counts = (
            await conn.execute(text("SELECT count(*), count(DISTINCT profile_id) FROM invitations"))
        ).one()
    assert tuple(counts) == (40, 40)


async def test_a_crash_mid_round_leaves_nothing_and_the_retry_completes(
    app: FastAPI,
    client: httpx.AsyncClient,
    pool: RankingPeer,
    draws_settings: DrawsSettings,
    engine: AsyncEngine,
) -> None:
    pool.load([candidate(300 + i % 400, minutes=i) for i in range(5000)])

    def crash(written: int) -> None:
        raise RuntimeError(f"simulated crash after {written} invitations")

    app.state.draws.after_chunk = crash
    failed = await hold(client, draws_settings, "crashy", type="general", size=5000)
    assert failed.status_code == 500 and failed.headers["content-type"].startswith(PROBLEM)
    async with engine.connect() as conn:
        left = (
            await conn.execute(
                text(
                    "SELECT (SELECT count(*) FROM rounds), (SELECT count(*) FROM invitations),"
                    " (SELECT count(*) FROM outbox)"
                )
            )
        ).one()
    assert tuple(left) == (0, 0, 0)

    app.state.draws.after_chunk = None
    retried = await hold(client, draws_settings, "crashy", type="general", size=5000)
    assert retried.status_code == 201 and retried.json()["invitations"] == 5000
    assert "idempotent-replayed" not in retried.headers


async def test_the_running_service_publishes_the_round_and_hears_declines(
    client: httpx.AsyncClient, pool: RankingPeer, draws_settings: DrawsSettings, draws_topics: DrawsSettings
) -> None:
    pool.load([candidate(700 - i, minutes=i) for i in range(3)])
    held = (await hold(client, draws_settings, "live", type="general", size=2)).json()
    async with testing.KafkaReader(draws_topics, draws_topics.topic(DRAWS_TOPIC)) as reader:
        mine = await _read_round(reader, held["id"], 3)
    keys = sorted(key for key, _ in mine if key != held["id"])
    assert keys == sorted(entry["profile_id"] for entry in pool.entries[:2])

    page = (await client.get(f"/v1/draws/{held['id']}/invitations", headers=auth(draws_settings))).json()
    top = page["items"][0]
    declined = InvitationDeclined(
        profile_id=top["profile_id"], owner=top["owner"], invitation_id=top["invitation_id"], declined_at=NOW
    )
    value = encode(envelope_for(declined, source="ee/applications", time=NOW))
    await testing.produce(
        draws_topics, draws_topics.topic(APPLICATIONS_TOPIC), [value], key=declined.key().encode()
    )

    async def status() -> str:
        items = (
            await client.get(f"/v1/draws/{held['id']}/invitations", headers=auth(draws_settings))
        ).json()["items"]
        return str(items[0]["status"])

    await testing.wait_until(lambda: _is(status(), "declined"), timeout=30, message="decline not applied")
    again = (await hold(client, draws_settings, "live-2", type="general", size=1)).json()
    assert again["cutoff_crs"] == 700  # the candidate who declined is back in contention


async def _is(value: Any, expected: str) -> bool:
    return bool(await value == expected)


async def _read_round(reader: testing.KafkaReader, round_id: str, expected: int) -> list[tuple[str, Any]]:
    """The (key, envelope) pairs of one round, read until `expected` of them arrived."""
    total = 0
    while True:
        records = await reader.read(total + 1, timeout=30)
        total = len(records)
        mine = [
            (r.key.decode(), decode(r.value))
            for r in records
            if r.key and r.value and _of_round(r.value, round_id)
        ]
        if len(mine) >= expected:
            return mine


def _of_round(value: bytes, round_id: str) -> bool:
    return decode(value).data.get("round_id") == round_id


async def test_a_round_ref_that_is_not_a_plain_number_or_id_is_a_404_not_a_500(
    client: httpx.AsyncClient, draws_settings: DrawsSettings
) -> None:
    """`"²".isdigit()` is true and `int("²")` fails: such a ref is not a round number."""
    for path in ("/v1/draws/²", "/v1/draws/99999999999", "/v1/draws/٣"):
        response = await client.get(path)
        assert response.status_code == 404 and response.headers["content-type"].startswith(PROBLEM), path
    for path in ("/v1/draws/²/invitations", "/v1/draws/99999999999/invitations"):
        response = await client.get(path, headers=auth(draws_settings))
        assert response.status_code == 404 and response.headers["content-type"].startswith(PROBLEM), path


async def test_integers_beyond_the_database_range_are_422_at_the_edge(
    client: httpx.AsyncClient, pool: RankingPeer, draws_settings: DrawsSettings
) -> None:
    pool.load([candidate(450)])
    held = (await hold(client, draws_settings, "bounds", type="general", size=1)).json()
    for path, params in (
        ("/v1/draws", {"before": 3_000_000_000}),
        (f"/v1/draws/{held['id']}/invitations", {"after": 3_000_000_000}),
    ):
        response = await client.get(path, params=params, headers=auth(draws_settings))
        assert response.status_code == 422, (path, response.text)
        assert response.json()["errors"][0]["field"] in ("query.before", "query.after")
