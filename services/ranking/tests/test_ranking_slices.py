"""A long batch is applied in slices, and the service's queries run between them.

Every query of the ranking service shares the event loop with the projection, so a batch is locked,
evaluated and written `SLICE_PROFILES` profiles at a time (ascending ids: one lock order), yielding to
the loop between slices. The view changes once, after the commit: a read between two slices sees the
pool as of the last commit. The real projection and unit of work over a real PostgreSQL session (the
outbox); the ranking row store is a stand-in with nobody in it yet, which records what it was asked,
except in the last test, where the real store reads its locked rows from a fresh ranking database.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any, ClassVar

import pytest
from ranking_world import database, ranking_settings

from ranking_service.adapters import repository
from ranking_service.adapters.repository import SqlProjectionStore
from ranking_service.application import projection as projection_module
from ranking_service.application.projection import SLICE_PROFILES, RankingProjection
from ranking_service.domain.candidate import CandidateRow, ProfileFacts
from ranking_service.domain.view import PoolView
from ranking_service.settings import RankingSettings
from shared import cooperative
from shared.clock import Clock
from shared.consumer import Delivery
from shared.db import create_engine, session_factory
from shared.envelope import Envelope
from shared.events.catalogue import PROFILE_TOPIC, ProfileSubmitted
from shared.messages import envelope_for
from shared.rules.crs import CURRENT_RULES
from shared.rules.document import PROFILE_DOCUMENT_EXAMPLE
from shared.testing import LoopTurns, PlatformDatabase
from shared.uow import UnitOfWork

pytestmark = pytest.mark.infra

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


class RecordingRows:
    """Nobody in the table yet; records each lock and save (the ids, in order)."""

    locked: ClassVar[list[list[str]]] = []
    saved: ClassVar[list[list[str]]] = []

    def __init__(self, session: Any) -> None:
        self.session = session

    async def lock(self, profile_ids: Sequence[str]) -> dict[str, CandidateRow]:
        RecordingRows.locked.append(list(profile_ids))
        return {}

    async def save(self, rows: Sequence[CandidateRow], now: datetime) -> None:
        RecordingRows.saved.append([row.facts.profile_id for row in rows])

    async def scoring_rules(self) -> str | None:
        return None


def submitted(profile_id: str, offset: int) -> Delivery:
    event = ProfileSubmitted(
        profile_id=profile_id, owner="partner-1", document=PROFILE_DOCUMENT_EXAMPLE,
        eligible_programs=["fsw"], submitted_at=NOW, expires_at=NOW.replace(year=2027),
    )  # fmt: skip
    envelope: Envelope = envelope_for(
        event, source="ee/profile", time=NOW, aggregate_id=profile_id, aggregate_version=2
    )
    return Delivery(envelope, event, "t." + PROFILE_TOPIC, 0, offset)


async def test_a_long_batch_goes_in_slices_and_a_read_between_them_sees_the_last_commit(
    platform_db: PlatformDatabase,
) -> None:
    RecordingRows.locked, RecordingRows.saved = [], []
    settings = RankingSettings(env="test", topic_prefix="t.")
    clock = Clock.frozen(NOW)
    view = PoolView(CURRENT_RULES.name)
    projection = RankingProjection(view, RecordingRows, clock, emit=True)
    count = 2 * SLICE_PROFILES + 10
    ids = [str(uuid.uuid4()) for _ in range(count)]
    deliveries = [submitted(profile_id, offset) for offset, profile_id in enumerate(ids)]

    seen: list[tuple[int, dict[str, int]]] = []  # (pool size, positions) at each turn of the reader
    applying = True

    async def reader() -> None:
        while applying:
            seen.append((len(view.pool), dict(view.positions)))
            await asyncio.sleep(0)

    reading = asyncio.create_task(reader())
    await asyncio.sleep(0)
    async with UnitOfWork(platform_db.sessions, settings, clock) as uow:
        await projection.apply(uow, deliveries)
        await uow.commit()
    applying = False
    await reading

    # Three slices, in ascending id order, each locked then saved; every profile once.
    assert [len(chunk) for chunk in RecordingRows.locked] == [SLICE_PROFILES, SLICE_PROFILES, 10]
    flat = [profile_id for chunk in RecordingRows.locked for profile_id in chunk]
    assert flat == sorted(ids)
    assert sorted(p for chunk in RecordingRows.saved for p in chunk) == sorted(ids)
    # The reader ran while the batch was applied (more than its first turn), and always saw the pool
    # and positions as of before the batch: nothing half applied.
    assert len(seen) > 3
    assert set(seen[i][0] for i in range(len(seen))) == {0}
    assert all(positions == {} for _, positions in seen)
    # After the commit: the whole batch, and the position it reflects, at once.
    assert len(view.pool) == count
    assert view.positions == {f"t.{PROFILE_TOPIC}:0": count}


async def _apply_watched(
    platform_db: PlatformDatabase, slice_s: float, count: int, monkeypatch: pytest.MonkeyPatch
) -> tuple[list[tuple[int, int, int, int]], PoolView, list[str]]:
    """Apply a batch of `count` new profiles (one chunk) with a budget of `slice_s`, a reader taking a
    turn whenever the loop is given back; each turn sees (locks, evaluations, saves, pool size)."""
    RecordingRows.locked, RecordingRows.saved = [], []
    settings = RankingSettings(env="test", topic_prefix="t.")
    view = PoolView(CURRENT_RULES.name)
    projection = RankingProjection(view, RecordingRows, Clock.frozen(NOW), emit=True)
    projection.slice_s = slice_s
    evaluations = 0
    evaluate_one = projection_module._evaluate_one

    def counted(*args: Any) -> Any:
        nonlocal evaluations
        evaluations += 1
        return evaluate_one(*args)

    monkeypatch.setattr(projection_module, "_evaluate_one", counted)
    ids = [str(uuid.uuid4()) for _ in range(count)]
    turns: list[tuple[int, int, int, int]] = []
    applying, committing = True, False

    async def reader() -> None:
        while applying:
            if not committing:  # the commit moves the view in slices of its own (apply_to_view)
                saved = len(RecordingRows.saved)
                turns.append((len(RecordingRows.locked), evaluations, saved, len(view.pool)))
            await asyncio.sleep(0)

    reading = asyncio.create_task(reader())
    await asyncio.sleep(0)
    async with UnitOfWork(platform_db.sessions, settings, Clock.frozen(NOW)) as uow:
        await projection.apply(uow, [submitted(profile_id, offset) for offset, profile_id in enumerate(ids)])
        published = [row["key"] for row in uow._outbox_rows]
        committing = True
        await uow.commit()
    applying = False
    await reading
    assert published == sorted(ids)  # one Ranked each, in the batch's (ascending id) order
    return turns, view, ids


async def test_within_one_chunk_the_loop_is_given_back_between_evaluations_and_steps(
    platform_db: PlatformDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    count = 5
    turns, view, ids = await _apply_watched(platform_db, 0.0, count, monkeypatch)  # a budget always spent
    assert [len(chunk) for chunk in RecordingRows.locked] == [count]
    # After the lock, before any evaluation (the locked rows' reading is not counted: a turn anyway);
    # between every two evaluations; after the last one, before the save.
    during = {(locks, evaluated, saves) for locks, evaluated, saves, _ in turns}
    assert {(1, n, 0) for n in range(count + 1)} <= during
    # After the save, between the events published (the view's changes built with them).
    after_save = [turn for turn in turns if turn[:3] == (1, count, 1)]
    assert len(after_save) >= count
    # The view did not move before the commit, then took the whole batch.
    assert {pool for *_, pool in turns} == {0}
    assert len(view.pool) == count and all(profile_id in view.pool for profile_id in ids)


async def test_with_budget_left_a_chunk_is_evaluated_and_published_without_a_turn_between(
    platform_db: PlatformDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    count = 5
    turns, view, _ = await _apply_watched(platform_db, 60.0, count, monkeypatch)
    evaluated_seen = {evaluated for locks, evaluated, saves, _ in turns if locks == 1}
    assert evaluated_seen <= {0, count}  # the one turn after the lock, none inside the evaluation
    assert len(view.pool) == count


async def test_the_table_s_locked_rows_are_read_with_turns_between_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The real row store: reading a chunk of locked rows (each a document and its details to decode,
    tens of µs) gives the loop back between rows once the budget is spent, rather than holding it for
    the whole chunk right after the round trip. A budget always spent here: a turn before every row."""
    settings = ranking_settings("lockslices")
    ids = sorted(str(uuid.uuid4()) for _ in range(8))
    async with database(settings):
        engine = create_engine(settings)
        try:
            sessions = session_factory(engine)
            rows = [
                CandidateRow(ProfileFacts(profile_id, "partner-1", 2, dict(PROFILE_DOCUMENT_EXAMPLE)))
                for profile_id in ids
            ]
            async with UnitOfWork(sessions, settings, Clock.frozen(NOW)) as uow:
                await SqlProjectionStore(uow.tx).save(rows, NOW)
                await uow.commit()

            turns = LoopTurns()
            turns_at_row: list[int] = []
            read_row = repository._candidate

            def counted(row: Any) -> CandidateRow:
                turns_at_row.append(turns.count)
                return read_row(row)

            monkeypatch.setattr(repository, "_candidate", counted)
            monkeypatch.setattr(
                repository, "in_slices", partial(cooperative.in_slices, slice_s=0.0), raising=False
            )
            async with turns, UnitOfWork(sessions, settings, Clock.frozen(NOW)) as uow:
                locked = await SqlProjectionStore(uow.tx).lock(ids)
        finally:
            await engine.dispose()
    assert sorted(locked) == ids
    assert all(locked[profile_id].facts.document == PROFILE_DOCUMENT_EXAMPLE for profile_id in ids)
    assert len(turns_at_row) == len(ids)
    assert all(later > earlier for earlier, later in itertools.pairwise(turns_at_row))
