"""Rules activation and time-based rescoring, through real Kafka and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from ranking_app import token
from ranking_factories import (
    DOB_416,
    DOB_432,
    DOB_TURNS_30,
    NOW,
    SENIOR_MANAGER_OFFER,
    ProfileStream,
    document,
    pid,
)
from ranking_world import World, open_world
from sqlalchemy import text

from shared.db import create_engine
from shared.events.catalogue import Event, Ranked

pytestmark = pytest.mark.infra


@pytest.fixture
async def world() -> AsyncIterator[World]:
    async with open_world() as opened:
        yield opened


A, B = pid(1), pid(2)


def submitted(profile_id: str, doc: dict[str, object], minutes: int = 0) -> list[tuple[Event, int]]:
    stream = ProfileStream(profile_id)
    at = NOW - timedelta(days=1) + timedelta(minutes=minutes)
    return [stream.created(doc, at=at), stream.submitted(doc, at=at)]


async def test_activating_the_old_rules_rescores_the_pool_and_emits_what_changed(world: World) -> None:
    offer = document(DOB_416, job_offer=SENIOR_MANAGER_OFFER)
    await world.publish(*submitted(A, offer), *submitted(B, document(DOB_432), minutes=1))
    async with world.service() as service:
        await service.wait(lambda view: len(view.pool) == 2, "two candidates")
        assert service.view.pool.get(A).crs == 416  # type: ignore[union-attr]
        response = await service.post("/v1/admin/rules/2020-10-27/activate")
        assert response.status_code == 200, response.text
        # By default the pool is scored with the version in force on the day (2026: 2025-03-25).
        assert response.json() == {"rules_version": "2020-10-27", "previous": "in-force", "rescored": 2,
                                   "changed": 1}  # fmt: skip
        assert service.view.pool.get(A).crs == 616  # type: ignore[union-attr]
        assert (await service.get("/v1/admin/rules"))["active"] == "2020-10-27"
        unknown = await service.post("/v1/admin/rules/1999-01-01/activate")
        assert unknown.status_code == 404 and unknown.json()["title"] == "Unknown rules version"
        refused = await service.http.post("/v1/admin/rules/2025-03-25/activate", headers=token("officer"))
        assert refused.status_code == 403
        factors = {"age": 30, "education_level": "masters"}
        calculator = await service.http.post("/v1/crs/calculate", json=factors)
        assert calculator.json()["rules_version"] == "2020-10-27"
        events = await world.ranking_events(at_least=3)
    ranked = [(e.profile_id, e.crs, e.rules_version) for e in events if isinstance(e, Ranked)]
    assert sorted(ranked) == [(A, 416, "2025-03-25"), (A, 616, "2020-10-27"), (B, 432, "2025-03-25")]

    async with world.service() as restarted:  # the active version is part of the projection
        assert restarted.view.rules_version == "2020-10-27"
        assert restarted.view.pool.get(A).crs == 616  # type: ignore[union-attr]
        await restarted.wait_assigned()  # the activating instance rescores its own partitions' share
        back = await restarted.post("/v1/admin/rules/in-force/activate")
        assert back.status_code == 200, back.text
        assert (back.json()["rules_version"], back.json()["previous"]) == ("in-force", "2020-10-27")
        assert restarted.view.pool.get(A).crs == 416  # type: ignore[union-attr]


async def test_moving_the_clock_past_a_birthday_rescores_and_emits(world: World) -> None:
    await world.publish(*submitted(A, document(DOB_TURNS_30)), *submitted(B, document(DOB_432), minutes=1))
    async with world.service() as service:
        await service.wait(lambda view: len(view.pool) == 2, "two candidates")
        assert [e.crs for e in service.view.pool] == [432, 432]
        moved = await service.http.put(
            "/v1/admin/clock", json={"offset_seconds": 86_400}, headers=token("ops", "clock-mover")
        )
        assert moved.status_code == 200, moved.text
        await service.wait(lambda view: view.pool.get(A).crs == 427, "A turned 30")  # type: ignore[union-attr]
        assert [e.profile_id for e in service.view.pool] == [B, A]
        events = await world.ranking_events(at_least=3)
    about_a = [e.crs for e in events if isinstance(e, Ranked) and e.profile_id == A]
    about_b = [e.crs for e in events if isinstance(e, Ranked) and e.profile_id == B]
    assert about_a == [432, 427] and about_b == [432]  # B's score did not move: no event


async def test_an_activation_cut_short_by_a_crash_is_finished_after_the_restart(world: World) -> None:
    await world.publish(*submitted(A, document(DOB_416, job_offer=SENIOR_MANAGER_OFFER)))
    async with world.service() as service:
        await service.wait(lambda view: A in view.pool, "A in the pool")
    # The switch committed, then the process died before rescoring anyone.
    engine = create_engine(world.settings)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text("INSERT INTO ranking_rules (id, version, activated_at) VALUES (1, '2020-10-27', now())")
            )
    finally:
        await engine.dispose()
    async with world.service() as restarted:
        assert restarted.view.rules_version == "2020-10-27"
        await restarted.wait(lambda view: view.pool.get(A).crs == 616, "A rescored")  # type: ignore[union-attr]
        events = await world.ranking_events(at_least=2)
    assert [(e.crs, e.rules_version) for e in events if isinstance(e, Ranked)] == [
        (416, "2025-03-25"),
        (616, "2020-10-27"),
    ]
