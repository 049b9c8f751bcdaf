"""The scored-stream follower skips what the view already holds.

An instance applies its own scorings to its view right after their commit; the follower then reads the
same `Ranked` from the ranking topic. Its `aggregateversion` is the row's revision, so when the view
holds that revision (or a later one) there is nothing to read from the table: no query on the event
loop for the common case. Anything else (another instance's scoring, a candidate not held) is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import TopicPartition

from ranking_service.adapters.follower import ScoredStreamFollower
from ranking_service.domain.pool import PoolEntry
from ranking_service.domain.view import CandidateInfo, MemoryChange, PoolView
from ranking_service.settings import RankingSettings
from shared.envelope import encode
from shared.events.catalogue import Ranked
from shared.messages import envelope_for
from shared.rules.crs import CURRENT_RULES

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
HELD, OTHER = "00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002"


@dataclass
class Record:
    offset: int
    value: bytes


def ranked(profile_id: str, revision: int | None, offset: int) -> Record:
    event = Ranked(
        profile_id=profile_id, owner="partner-1", crs=450, breakdown={"age": 100}, rules_version="x",
        programs=["fsw"], categories=[], submitted_at=NOW, ranked_at=NOW,
    )  # fmt: skip
    envelope = envelope_for(event, source="ee/ranking", time=NOW, aggregate_id=profile_id,
                            aggregate_version=revision)  # fmt: skip
    return Record(offset, encode(envelope))


class Follower(ScoredStreamFollower):
    """The follower with its table read recorded instead of run."""

    def __init__(self, view: PoolView) -> None:
        settings = RankingSettings(env="test", topic_prefix="t.")
        super().__init__(settings, None, view, None, None)  # type: ignore[arg-type]
        self.asked: list[list[str]] = []

    async def _standings(self, profile_ids: list[str]) -> list[Any]:
        self.asked.append(profile_ids)
        return []


def view_holding(revision: int) -> PoolView:
    view = PoolView(CURRENT_RULES.name)
    entry = PoolEntry(HELD, 450, NOW, frozenset({"fsw"}))
    info = CandidateInfo.of("partner-1", "IN", {"age": 100}, (), {}, revision)
    view.apply([MemoryChange(HELD, revision, entry, info)])
    return view


async def test_a_scoring_the_view_holds_is_not_read_again_and_the_offsets_still_move() -> None:
    follower = Follower(view_holding(3))
    tp = TopicPartition(follower.topic, 0)
    await follower._apply({tp: [ranked(HELD, 2, 10), ranked(HELD, 3, 11)]})
    assert follower.asked == []
    assert follower.next_offsets[tp] == 12


async def test_a_newer_scoring_another_candidate_or_no_revision_is_read() -> None:
    follower = Follower(view_holding(3))
    tp = TopicPartition(follower.topic, 0)
    await follower._apply({tp: [ranked(HELD, 4, 0), ranked(OTHER, 1, 1)]})
    assert follower.asked == [[HELD, OTHER]]
    follower.asked.clear()
    await follower._apply({tp: [ranked(HELD, None, 2)]})
    assert follower.asked == [[HELD]]


def test_the_view_skips_a_change_of_the_revision_it_holds() -> None:
    view = view_holding(3)
    moved = PoolEntry(HELD, 500, NOW, frozenset({"fsw"}))
    info = CandidateInfo.of("partner-1", "IN", {"age": 150}, (), {}, 3)
    view.apply([MemoryChange(HELD, 3, moved, info)])
    entry = view.pool.get(HELD)
    assert entry is not None and entry.crs == 450  # the same revision is the same row: kept as held
    view.apply([MemoryChange(HELD, 4, moved, CandidateInfo.of("partner-1", "IN", {}, (), {}, 4))])
    entry = view.pool.get(HELD)
    assert entry is not None and entry.crs == 500


def test_a_new_score_with_the_same_occupations_keeps_the_occupation_index() -> None:
    view = PoolView(CURRENT_RULES.name)
    entry = PoolEntry(HELD, 450, NOW, frozenset({"fsw"}))
    view.apply([MemoryChange(HELD, 1, entry, CandidateInfo.of("p", "IN", {}, ("21231",), {}, 1))])
    moved = PoolEntry(HELD, 470, NOW, frozenset({"fsw"}))
    view.apply([MemoryChange(HELD, 2, moved, CandidateInfo.of("p", "IN", {}, ("21231",), {}, 2))])
    assert view.by_noc == {"21231": {HELD}} and view.pool.rank(HELD) == 1
    view.apply([MemoryChange(HELD, 3, moved, CandidateInfo.of("p", "IN", {}, ("72010",), {}, 3))])
    assert view.by_noc == {"72010": {HELD}}
    view.apply([MemoryChange(HELD, 4, None, None)])
    assert view.by_noc == {} and HELD not in view.pool
