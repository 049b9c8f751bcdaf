"""Holding rounds end to end inside the service: real PostgreSQL, the ranking contract over real HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from typing import Any

import pytest
from draws_fixtures import *  # noqa: F403  (the fixtures)
from draws_fixtures import NOW, candidate
from draws_ranking_peer import RankingPeer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from draws_service.adapters.uow import DrawsUnitOfWork
from draws_service.application.errors import IdempotencyKeyReused, RankingUnavailable, RoundRejected
from draws_service.application.handlers import DrawsService, RoundRequest
from draws_service.application.invitations import close_invitation
from shared.events.catalogue import InvitationDeclined

pytestmark = pytest.mark.infra

UowFactory = Callable[[], AbstractAsyncContextManager[DrawsUnitOfWork]]


async def scalar(engine: AsyncEngine, sql: str, **params: Any) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar()


async def rows(engine: AsyncEngine, sql: str, **params: Any) -> list[Any]:
    async with engine.connect() as conn:
        return list(await conn.execute(text(sql), params))


async def test_a_round_records_itself_its_itas_and_its_events_in_one_go(
    service: DrawsService, pool: RankingPeer, engine: AsyncEngine
) -> None:
    pool.load([candidate(500 - i, minutes=i, programs=("fsw", "cec")) for i in range(10)])
    outcome = await service.hold(RoundRequest("general", 4), "key-1")
    record = outcome.stored.record
    assert (record.round_number, record.invitations_count, record.cutoff_crs) == (1, 4, 497)
    assert not outcome.replayed
    itas = await rows(
        engine, "SELECT program, crs, deadline, invited_at, status FROM invitations ORDER BY rank"
    )
    assert [r.crs for r in itas] == [500, 499, 498, 497]
    assert {r.program for r in itas} == {"cec"}
    assert all(
        r.deadline == NOW + timedelta(days=60) and r.invited_at == NOW and r.status == "open" for r in itas
    )
    outbox = await rows(engine, "SELECT topic, key FROM outbox ORDER BY id")
    assert len(outbox) == 5
    assert outbox[0].key == record.round_id
    assert [o.key for o in outbox[1:]] == [pool.entries[i]["profile_id"] for i in range(4)]
    assert all(o.topic.endswith("ee.draws.events") for o in outbox)


async def test_ties_at_the_cutoff_are_broken_by_submission_time(
    service: DrawsService, pool: RankingPeer, engine: AsyncEngine
) -> None:
    late, early, middle = candidate(480, minutes=300), candidate(480, minutes=5), candidate(480, minutes=60)
    pool.load([candidate(600), late, early, middle, candidate(470)])
    record = (await service.hold(RoundRequest("general", 3), "tie")).stored.record
    invited = {r.profile_id for r in await rows(engine, "SELECT profile_id FROM invitations")}
    assert early["profile_id"] in invited and middle["profile_id"] in invited
    assert late["profile_id"] not in invited
    assert record.cutoff_crs == 480
    assert record.tie_break_at is not None and record.tie_break_at.isoformat() == middle["submitted_at"]


async def test_program_round_invites_only_that_program(
    service: DrawsService, pool: RankingPeer, engine: AsyncEngine
) -> None:
    pool.load(
        [
            candidate(700, programs=("fsw",)),
            candidate(450, programs=("cec",)),
            candidate(440, programs=("cec", "fsw")),
        ]
    )
    await service.hold(RoundRequest("cec", 10), "cec")
    invited = await rows(engine, "SELECT program, crs FROM invitations ORDER BY rank")
    assert [(r.program, r.crs) for r in invited] == [("cec", 450), ("cec", 440)]
    assert pool.requests[-1]["program"] == "cec" and pool.requests[-1]["category"] is None


async def test_category_round_invites_only_that_category_and_records_its_version(
    service: DrawsService, pool: RankingPeer, engine: AsyncEngine
) -> None:
    nurse = candidate(430, categories=("healthcare",), programs=("fst", "fsw"))
    pool.load([candidate(800, categories=("stem",)), nurse, candidate(420, categories=("french",))])
    record = (await service.hold(RoundRequest("healthcare", 100), "hc")).stored.record
    invited = await rows(engine, "SELECT profile_id, program FROM invitations")
    assert [(r.profile_id, r.program) for r in invited] == [(nurse["profile_id"], "fsw")]
    assert record.category_version == "2026"
    assert record.name == "Healthcare and Social Services Occupations, 2026"
    assert pool.requests[-1]["category"] == "healthcare"


async def test_a_category_without_a_version_in_force_is_refused(
    service: DrawsService, pool: RankingPeer
) -> None:
    with pytest.raises(RoundRejected, match="'agriculture' has no version in force on 2026-09-15"):
        await service.hold(RoundRequest("agriculture", 10), "t")
    assert pool.requests == []


async def test_a_round_larger_than_the_eligible_pool_invites_everyone_eligible(
    service: DrawsService, pool: RankingPeer, engine: AsyncEngine
) -> None:
    pool.load([candidate(400 + i, programs=("pnp", "fsw") if i % 3 == 0 else ("fsw",)) for i in range(30)])
    record = (await service.hold(RoundRequest("pnp", 5000), "big")).stored.record
    assert (record.size, record.invitations_count, record.cutoff_crs) == (5000, 10, 400)
    assert await scalar(engine, "SELECT count(*) FROM invitations WHERE program = 'pnp'") == 10


async def test_same_key_same_request_returns_the_same_round_and_holds_nothing_more(
    service: DrawsService, pool: RankingPeer, engine: AsyncEngine
) -> None:
    pool.load([candidate(500 - i) for i in range(20)])
    first = await service.hold(RoundRequest("general", 5), "same")
    again = await service.hold(RoundRequest("GENERAL", 5), "same")
    assert again.replayed and again.stored.record == first.stored.record
    assert await scalar(engine, "SELECT count(*) FROM rounds") == 1
    assert await scalar(engine, "SELECT count(*) FROM invitations") == 5
    assert await scalar(engine, "SELECT count(*) FROM outbox") == 6
    assert len(pool.requests) == 1


async def test_same_key_with_another_request_is_refused(service: DrawsService, pool: RankingPeer) -> None:
    pool.load([candidate(500 - i) for i in range(20)])
    await service.hold(RoundRequest("general", 5), "k")
    with pytest.raises(IdempotencyKeyReused, match="already held round 1 with a different request"):
        await service.hold(RoundRequest("general", 6), "k")


async def test_a_candidate_with_an_open_invitation_is_excluded_even_if_ranking_still_lists_them(
    service: DrawsService, pool: RankingPeer, engine: AsyncEngine
) -> None:
    pool.load([candidate(500 - i) for i in range(6)])
    await service.hold(RoundRequest("general", 3), "r1")
    second = await service.hold(RoundRequest("general", 3), "r2")
    assert second.stored.record.cutoff_crs == 495
    assert len(pool.requests[-1]["exclude"]) == 3
    assert await scalar(engine, "SELECT count(DISTINCT profile_id) FROM invitations") == 6


async def test_two_rounds_at_once_never_invite_the_same_candidate(
    service: DrawsService, pool: RankingPeer, engine: AsyncEngine
) -> None:
    pool.load([candidate(600 - i, minutes=i) for i in range(50)])
    pool.delay_s = 0.2  # both requests are in flight together; the lock must still order them
    first, second = await asyncio.gather(
        service.hold(RoundRequest("general", 30), "a"), service.hold(RoundRequest("general", 30), "b")
    )
    counts = sorted([first.stored.record.invitations_count, second.stored.record.invitations_count])
    assert counts == [20, 30]
    assert await scalar(engine, "SELECT count(*) FROM invitations") == 50
    assert await scalar(engine, "SELECT count(DISTINCT profile_id) FROM invitations") == 50
    assert {first.stored.record.round_number, second.stored.record.round_number} == {1, 2}


async def test_a_declined_invitation_lets_the_candidate_be_invited_again(
    service: DrawsService, pool: RankingPeer, engine: AsyncEngine, uow_factory: UowFactory
) -> None:
    star = candidate(900)
    pool.load([star, candidate(400)])
    await service.hold(RoundRequest("general", 1), "first")
    invitation_id = await scalar(engine, "SELECT invitation_id::text FROM invitations")
    declined = InvitationDeclined(
        profile_id=star["profile_id"], owner="partner-7", invitation_id=invitation_id, declined_at=NOW
    )
    async with uow_factory() as uow:
        assert await close_invitation(uow.rounds, declined)
        assert not await close_invitation(uow.rounds, declined)  # already closed: a no-op
        await uow.commit()
    await service.hold(RoundRequest("general", 1), "second")
    statuses = await rows(engine, "SELECT profile_id, status FROM invitations ORDER BY invited_at, status")
    assert sorted((r.profile_id, r.status) for r in statuses) == sorted(
        [(star["profile_id"], "declined"), (star["profile_id"], "open")]
    )


class Crash(RuntimeError):
    pass


async def test_a_crash_in_the_middle_leaves_nothing_and_the_same_key_completes_it(
    service: DrawsService, pool: RankingPeer, engine: AsyncEngine
) -> None:
    pool.load([candidate(300 + i % 500, minutes=i) for i in range(4500)])
    written: list[int] = []

    def crash_after_first_chunk(count: int) -> None:
        written.append(count)
        raise Crash(f"power cut after {count} invitations")

    service.after_chunk = crash_after_first_chunk
    with pytest.raises(Crash):
        await service.hold(RoundRequest("general", 4500), "crash")
    assert written == [2000]
    for table in ("rounds", "invitations", "outbox"):
        assert await scalar(engine, f"SELECT count(*) FROM {table}") == 0, table

    service.after_chunk = None
    outcome = await service.hold(RoundRequest("general", 4500), "crash")
    assert not outcome.replayed and outcome.stored.record.invitations_count == 4500
    assert await scalar(engine, "SELECT count(*) FROM invitations") == 4500
    assert await scalar(engine, "SELECT count(*) FROM outbox") == 4501


async def test_ranking_down_is_reported_and_nothing_is_written(
    service: DrawsService, pool: RankingPeer, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service.ranking, "_url", "http://127.0.0.1:9/v1/pool/selection")
    with pytest.raises(RankingUnavailable, match="did not answer"):
        await service.hold(RoundRequest("general", 5), "down")
    assert await scalar(engine, "SELECT count(*) FROM rounds") == 0


async def test_plan_writes_nothing_and_matches_the_round_held_next(
    service: DrawsService, pool: RankingPeer, engine: AsyncEngine
) -> None:
    pool.load([candidate(495 + i % 20, minutes=i) for i in range(40)])
    plan = await service.plan(RoundRequest("general", 25))
    assert await scalar(engine, "SELECT count(*) FROM rounds") == 0
    assert await scalar(engine, "SELECT count(*) FROM outbox") == 0
    held = (await service.hold(RoundRequest("general", 25), "after-plan")).stored.record
    assert (plan.selection.count, plan.selection.cutoff_crs, plan.selection.tie_break_at) == (
        held.invitations_count,
        held.cutoff_crs,
        held.tie_break_at,
    )
    assert sum(n for _, n in plan.selection.distribution()) == 25


async def test_a_ranking_still_loading_its_pool_is_reported_with_its_reason(
    service: DrawsService, pool: RankingPeer, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pool.app.state.ranking.view, "loaded", False)
    with pytest.raises(RankingUnavailable, match=r"answered 503 .*still being loaded"):
        await service.plan(RoundRequest("general", 5))
    assert await scalar(engine, "SELECT count(*) FROM rounds") == 0
