"""Rules activation and time-based rescoring, through real Kafka and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
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
from shared.events.catalogue import Event, Ranked, RulesActivated

pytestmark = pytest.mark.infra


@pytest.fixture
async def world() -> AsyncIterator[World]:
    async with open_world() as opened:
        yield opened


A, B = pid(1), pid(2)
IF_MATCH_0 = {"If-Match": '"0"'}  # the active-rules state before any activation


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
        response = await service.post("/v1/admin/rules/2020-10-27/activate", headers=IF_MATCH_0)
        assert response.status_code == 200, response.text
        # By default the pool is scored with the version in force on the day (2026: 2025-03-25).
        assert response.json() == {"rules_version": "2020-10-27", "previous": "in-force", "revision": 1,
                                   "rescored": 2, "changed": 1}  # fmt: skip
        assert response.headers["ETag"] == '"1"'
        assert service.view.pool.get(A).crs == 616  # type: ignore[union-attr]
        assert (await service.get("/v1/admin/rules"))["active"] == "2020-10-27"
        unknown = await service.post("/v1/admin/rules/1999-01-01/activate", headers={"If-Match": '"1"'})
        assert unknown.status_code == 404 and unknown.json()["title"] == "Unknown rules version"
        refused = await service.http.post(
            "/v1/admin/rules/2025-03-25/activate", headers={**token("officer"), "If-Match": '"1"'}
        )
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
        back = await restarted.post("/v1/admin/rules/in-force/activate", headers={"If-Match": '"1"'})
        assert back.status_code == 200, back.text
        assert (back.json()["rules_version"], back.json()["previous"]) == ("in-force", "2020-10-27")
        assert restarted.view.pool.get(A).crs == 416  # type: ignore[union-attr]


async def test_an_activation_wants_the_rules_etag_and_a_retried_key_gets_the_first_answer(
    world: World,
) -> None:
    """The rule of every command: If-Match (428 without, 400 malformed, 412 stale: nothing switched)
    and Idempotency-Key (same key and request: the first answer, even with its now stale If-Match;
    same key, other request: 422). Two activations racing on one ETag: one wins, the other is 412."""
    await world.publish(*submitted(A, document(DOB_416, job_offer=SENIOR_MANAGER_OFFER)))
    async with world.service() as service:
        await service.wait(lambda view: A in view.pool, "A in the pool")
        read = await service.http.get("/v1/admin/rules", headers=token("ops"))
        assert read.status_code == 200, read.text
        assert read.headers["ETag"] == '"0"' and read.json()["revision"] == 0
        url = "/v1/admin/rules/2020-10-27/activate"
        missing = await service.post(url)
        assert missing.status_code == 428, missing.text
        malformed = await service.post(url, headers={"If-Match": "0"})
        assert malformed.status_code == 400, malformed.text
        stale = await service.post(url, headers={"If-Match": '"3"'})
        assert stale.status_code == 412, stale.text
        assert stale.json()["current_version"] == 0
        assert service.view.rules_version == "in-force"  # none of them switched anything

        key = {"Idempotency-Key": "activate-2020-10-27"}
        first = await service.post(url, headers={**IF_MATCH_0, **key})
        assert first.status_code == 200, first.text
        assert first.headers["ETag"] == '"1"' and first.json()["rescored"] == 1
        again = await service.post(url, headers={**IF_MATCH_0, **key})
        assert again.status_code == 200, again.text
        assert again.json() == first.json()  # the counts of the rescoring pass too
        assert again.headers["Idempotent-Replayed"] == "true" and again.headers["ETag"] == '"1"'
        other = await service.post("/v1/admin/rules/in-force/activate", headers={"If-Match": '"1"', **key})
        assert other.status_code == 422, other.text
        assert other.json()["title"] == "Idempotency-Key reused"
        without_key = await service.post(url, headers=IF_MATCH_0)
        assert without_key.status_code == 412, without_key.text
        after = await service.http.get("/v1/admin/rules", headers=token("ops"))
        assert after.headers["ETag"] == '"1"' and after.json()["active"] == "2020-10-27"

        racing = await asyncio.gather(
            service.post("/v1/admin/rules/in-force/activate", headers={"If-Match": '"1"'}),
            service.post("/v1/admin/rules/2025-03-25/activate", headers={"If-Match": '"1"'}),
        )
        assert sorted(r.status_code for r in racing) == [200, 412], [r.text for r in racing]
        assert (await service.get("/v1/admin/rules"))["revision"] == 2
        events = await world.ranking_events(at_least=5)
    activations = [e.rules_version for e in events if isinstance(e, RulesActivated)]
    assert activations[0] == "2020-10-27" and len(activations) == 2, activations


async def test_the_key_is_recorded_with_the_switch_so_a_retry_after_a_crash_is_no_second_activation(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The switch committed with its key, then the rescoring pass died: the retry with the same key
    gets the switch's answer (its counts null: that pass never finished), not a 412 nor a second
    activation; the periodic job finishes the rescoring."""
    await world.publish(*submitted(A, document(DOB_416, job_offer=SENIOR_MANAGER_OFFER)))
    async with world.service() as service:
        await service.wait(lambda view: A in view.pool, "A in the pool")
        jobs = service.app.state.ranking.jobs

        async def die(*_: object) -> None:
            raise RuntimeError("the process died before rescoring")

        monkeypatch.setattr(jobs, "rescore_other_rules", die)
        headers = {**IF_MATCH_0, "Idempotency-Key": "activate-then-die"}
        with contextlib.suppress(RuntimeError):  # the ASGI transport re-raises what the app did not catch
            died = await service.post("/v1/admin/rules/2020-10-27/activate", headers=headers)
            assert died.status_code == 500
        monkeypatch.undo()
        retried = await service.post("/v1/admin/rules/2020-10-27/activate", headers=headers)
        assert retried.status_code == 200, retried.text
        assert retried.json() == {"rules_version": "2020-10-27", "previous": "in-force", "revision": 1,
                                  "rescored": None, "changed": None}  # fmt: skip
        assert retried.headers["Idempotent-Replayed"] == "true" and retried.headers["ETag"] == '"1"'
        assert (await service.get("/v1/admin/rules"))["revision"] == 1
        await service.wait(lambda view: view.pool.get(A).crs == 616, "A rescored by the job")  # type: ignore[union-attr]


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
                text(
                    "INSERT INTO ranking_rules (id, version, activated_at, revision) "
                    "VALUES (1, '2020-10-27', now(), 1)"
                )
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
