"""The live projection through real Kafka and PostgreSQL: rank order, ties, leaving and coming back,
the events it emits, a restart that resumes, a rebuild that matches, and a read replica."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from ranking_app import token
from ranking_factories import (
    DOB_394,
    DOB_416,
    DOB_432,
    DOB_INELIGIBLE,
    NOW,
    ProfileStream,
    declined,
    document,
    envelope,
    invited,
    pid,
)
from ranking_world import World, database, open_world, ranking_settings

from ranking_service.adapters.database import drop_database
from ranking_service.main import build_app
from ranking_service.rebuild import rebuild, rebuild_settings
from shared import testing
from shared.envelope import encode
from shared.events.catalogue import DRAWS_TOPIC, Event, Ranked, RemovedFromPool

pytestmark = pytest.mark.infra


@pytest.fixture
async def world() -> AsyncIterator[World]:
    async with open_world() as opened:
        yield opened


A, B, C, D, X = pid(1), pid(2), pid(3), pid(4), pid(9)


def submission(profile_id: str, dob: str, minutes: int) -> list[tuple[object, int]]:
    stream = ProfileStream(profile_id)
    at = NOW - timedelta(days=2) + timedelta(minutes=minutes)
    return [stream.created(document(dob), at=at), stream.submitted(document(dob), at=at)]


def four_profiles() -> list[tuple[object, int]]:
    # B and C tie at 416: C submitted first, so C ranks before B whatever their ids.
    return [
        *submission(A, DOB_394, 0),
        *submission(B, DOB_416, 30),
        *submission(C, DOB_416, 10),
        *submission(D, DOB_432, 50),
        *submission(X, DOB_INELIGIBLE, 5),  # eligible for no program: never enters
    ]


async def test_the_pool_ranks_by_crs_then_submission_and_says_so_on_kafka(world: World) -> None:
    await world.publish(*four_profiles())  # type: ignore[arg-type]
    async with world.service() as service:
        await service.wait(lambda view: len(view.pool) == 4, "four candidates in the pool")
        top = await service.get("/v1/pool/top", n=10)
        assert [(c["profile_id"], c["crs"]) for c in top["candidates"]] == [
            (D, 432),
            (C, 416),
            (B, 416),
            (A, 394),
        ]
        mine = await service.get(f"/v1/pool/candidates/{B}", role="partner", sub="partner-1")
        assert (mine["rank"], mine["pool_size"], mine["crs"]) == (3, 4, 416)
        other = await service.http.get(f"/v1/pool/candidates/{B}", headers=token("candidate", "mallory"))
        assert other.status_code == 404
        ranked = await world.ranking_events(at_least=4)
    assert sorted((e.profile_id, e.crs) for e in ranked if isinstance(e, Ranked)) == sorted(
        [(A, 394), (B, 416), (C, 416), (D, 432)]
    )
    assert len(ranked) == 4  # nothing for the ineligible profile
    event = next(e for e in ranked if e.key() == C)
    assert isinstance(event, Ranked)
    assert (event.programs, event.rules_version, event.owner) == (["fsw"], "2025-03-25", "partner-1")
    assert event.submitted_at == NOW - timedelta(days=2) + timedelta(minutes=10)
    assert sum(event.breakdown.values()) == 416


async def test_invited_leaves_and_declined_comes_back_with_its_place(world: World) -> None:
    await world.publish(*four_profiles())  # type: ignore[arg-type]
    async with world.service() as service:
        await service.wait(lambda view: len(view.pool) == 4, "four candidates in the pool")
        await world.publish(invited(C, "ita-1"))
        await service.wait(lambda view: C not in view.pool, "C invited, out of the pool")
        assert view_order(service) == [D, B, A]
        selection = (await service.post("/v1/pool/selection", {"size": 10})).json()
        assert [c["profile_id"] for c in selection["candidates"]] == [D, B, A]
        await world.publish(declined(C, "ita-1"))
        await service.wait(lambda view: C in view.pool, "C declined, back in the pool")
        assert view_order(service) == [D, C, B, A]  # the original submission instant still wins the tie
        events = await world.ranking_events(at_least=6)
    about_c = [type(e).__name__ for e in events if e.key() == C]
    assert about_c == ["Ranked", "RemovedFromPool", "Ranked"]
    removed = next(e for e in events if isinstance(e, RemovedFromPool))
    assert removed.reason == "invited"


async def test_a_restart_resumes_from_the_projection_and_a_rebuild_matches(world: World) -> None:
    stream_b = ProfileStream(B)
    await world.publish(*submission(A, DOB_394, 0), *submission(C, DOB_416, 10))  # type: ignore[arg-type]
    async with world.service() as service:
        await service.wait(lambda view: len(view.pool) == 2, "two candidates")
    # While the service is down: B arrives, A is invited, then declines; C is nominated.
    stream_b.created(document(DOB_432), at=NOW - timedelta(days=1))
    stream_b.submitted(document(DOB_432), at=NOW - timedelta(days=1))
    stream_c = ProfileStream(C, version=2)
    await world.publish(*stream_b.events, stream_c.nominated("BC"), invited(A, "ita-9"))
    async with world.service() as service:
        # Loaded from the table at once (A and C), then the new events from the stored positions.
        await service.wait(
            lambda view: len(view.pool) == 2 and B in view.pool and A not in view.pool, "B in, A invited"
        )
        assert service.view.pool.get(C).crs == 1016  # type: ignore[union-attr]
        await world.publish(declined(A, "ita-9"))
        await service.wait(lambda view: len(view.pool) == 3, "A back")
        live = await service.get("/v1/admin/pool/fingerprint")
        events = await world.ranking_events(at_least=6)
    # Each change said once, in order per profile: nothing re-emitted for what the first run ranked.
    assert per_profile(events) == {
        A: ["Ranked", "RemovedFromPool", "Ranked"],
        B: ["Ranked"],
        C: ["Ranked", "Ranked"],
    }

    report = await rebuild(world.settings, into=rebuild_settings(world.settings), clock=world.clock)
    try:
        assert report.pool_size == live["pool_size"] == 3
        assert report.fingerprint == live["fingerprint"] == report.live_fingerprint
        assert report.matches and report.events == 9
    finally:
        await drop_database(rebuild_settings(world.settings).database_url)


async def test_a_read_replica_holds_the_whole_pool_and_emits_nothing(world: World) -> None:
    await world.publish(*four_profiles())  # type: ignore[arg-type]
    replica_settings = ranking_settings("rankrep", topic_prefix=world.settings.topic_prefix, replica=True)
    async with database(replica_settings), world.service(replica_settings) as replica:
        await replica.wait(lambda view: len(view.pool) == 4, "the replica has the four candidates")
        async with world.service() as scorer:
            await scorer.wait(lambda view: len(view.pool) == 4, "the scorer has them too")
            assert scorer.view.pool.fingerprint() == replica.view.pool.fingerprint()
        events = await world.ranking_events(at_least=4)
    assert len(events) == 4  # the scorer's only


def view_order(service: object) -> list[str]:
    return [entry.profile_id for entry in service.view.pool]  # type: ignore[attr-defined]


def per_profile(events: list[Event]) -> dict[str, list[str]]:
    names: dict[str, list[str]] = {}
    for event in events:
        names.setdefault(event.key(), []).append(type(event).__name__)
    return names


async def test_updates_move_a_candidate_and_repeats_or_bad_ids_change_nothing(world: World) -> None:
    stream = ProfileStream(A)
    created = stream.created(document(DOB_416))
    submitted = stream.submitted(document(DOB_416))
    await world.publish(created, submitted)
    async with world.service() as service:
        await service.wait(lambda view: A in view.pool, "A in the pool")
        update = stream.updated(document(DOB_432))
        stale = (submitted[0], submitted[1])  # the submission again, new event id, old version
        value = encode(envelope(*update))
        topic = world.settings.topic(update[0].topic)
        await testing.produce(world.settings, topic, [value, value], key=A.encode())  # redelivered
        await world.publish(stale, invited("not-a-uuid", "ita-x", owner="partner-1"))
        await service.wait(lambda view: view.pool.get(A).crs == 432, "A moved up")  # type: ignore[union-attr]
        async with testing.KafkaReader(world.settings, world.settings.dlq_topic(DRAWS_TOPIC)) as dlq:
            dead = await dlq.read(1, timeout=30)
        assert dict(dead[0].headers)["reason"].decode().startswith("handler for ee.draws.Invited.v1 failed")
        assert service.view.pool.get(A).crs == 432  # type: ignore[union-attr]
        events = await world.ranking_events(at_least=2)
    assert [(type(e).__name__, getattr(e, "crs", None)) for e in events] == [("Ranked", 416), ("Ranked", 432)]


async def test_readyz_waits_for_the_pool_in_memory_and_the_projection_consumer(world: World) -> None:
    await world.publish(*four_profiles())  # type: ignore[arg-type]
    idle = build_app(world.settings, clock=world.clock)  # built, not started: nothing loaded yet
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=idle), base_url="http://r") as http:
        answer = await http.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["checks"]["projection"] == "down"
    assert "pool is not loaded" in answer.json()["detail"]
    async with world.service() as service:
        await service.wait(lambda view: len(view.pool) == 4, "four candidates in the pool")
        # Ready once the follower of the scored stream has also caught up (a moment after the start).
        answers: list[httpx.Response] = []

        async def ready() -> bool:
            answers.append(await service.http.get("/readyz"))
            return answers[-1].status_code == 200

        await testing.wait_until(ready, timeout=30, interval=0.1, message=lambda: answers[-1].text)
        checks = answers[-1].json()["checks"]
        assert checks == {"database": "up", "kafka": "up", "consumers": "up", "projection": "up"}


async def test_metrics_give_the_pool_size_the_scoring_count_and_the_projection_lag(world: World) -> None:
    await world.publish(*four_profiles())  # type: ignore[arg-type]
    async with world.service() as service:
        await service.wait(lambda view: len(view.pool) == 4, "four candidates in the pool")
        lines = (await service.http.get("/metrics")).text.splitlines()
    assert 'ee_ranking_pool_candidates{service="ranking"} 4.0' in lines
    (scored,) = [line for line in lines if line.startswith("ee_ranking_profiles_scored_total{")]
    assert float(scored.split()[-1]) >= 5  # the four and the ineligible one, at least once each
    lag = [
        line for line in lines if line.startswith("ee_consumer_lag_messages{") and 'consumer="ranking' in line
    ]
    assert lag and all(line.endswith(" 0.0") for line in lag)  # caught up on every partition it reads
    assert any(line.startswith('ee_consumer_events_applied_total{consumer="ranking') for line in lines)
