"""What the ranking service's in-memory state costs the cyclic garbage collector.

Each collection walks every object of the generations it collects. The pool and its details are held
as plain tuples of atoms, which the collector stops tracking, in dicts it keeps tracked
(`shared.tracked.TrackedDict`); the scoring memos are kept the same way. So neither the size of the pool
nor the updates applied to it, nor the memos filling, add to what a collection walks.
"""

from __future__ import annotations

import contextlib
import gc
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

from bench.pool_generator import generate_documents
from ranking_service.domain.pool import Pool, PoolEntry
from ranking_service.domain.scoring import score_profile
from ranking_service.domain.view import CandidateInfo, MemoryChange, PoolView
from shared.rules.crs import rules_for_day

T0 = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
AS_OF = date(2026, 6, 1)
PROGRAMS = (frozenset({"fsw"}), frozenset({"fsw", "cec"}), frozenset({"cec", "pnp", "fsw"}))
CATEGORIES: tuple[frozenset[str], ...] = (
    frozenset(),
    frozenset({"stem"}),
    frozenset({"french", "healthcare"}),
)


def _ids(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(count)]


def _entry(profile_id: str, rng: random.Random) -> PoolEntry:
    return PoolEntry(
        profile_id,
        rng.randint(300, 700),
        T0 + timedelta(seconds=rng.randint(0, 10**6)),
        rng.choice(PROGRAMS),
        rng.choice(CATEGORIES),
    )


def _info(rng: random.Random, revision: int) -> CandidateInfo:
    breakdown = {"age": rng.randint(0, 110), "education": rng.randint(0, 150)}
    noc = f"{rng.randint(21200, 21250)}"  # a few dozen occupations, as in a real pool
    return CandidateInfo.of("partner-1", "IN", breakdown, (noc,), {"en": rng.randint(4, 10)}, revision)


def _view(profile_ids: list[str], seed: int) -> PoolView:
    rng = random.Random(seed)
    pool = Pool.from_rows(_entry(profile_id, rng).to_row() for profile_id in profile_ids)
    view = PoolView("in-force")
    view.replace(pool, {profile_id: _info(rng, 1).record for profile_id in profile_ids}, {}, T0)
    return view


def _updates(view: PoolView, profile_ids: list[str], seed: int) -> Iterator[MemoryChange]:
    rng = random.Random(seed)
    for revision, profile_id in enumerate(profile_ids, start=2):
        yield MemoryChange(profile_id, revision, _entry(profile_id, rng), _info(rng, revision))


def _tracked_after_a_full_collection() -> int:
    gc.collect()
    return len(gc.get_objects())


def test_a_bigger_pool_gives_the_collector_nothing_more_to_walk() -> None:
    small, big = _ids(500, seed=1), _ids(5_000, seed=2)
    kept = [_view(small, seed=3)]
    with_small = _tracked_after_a_full_collection()
    kept.append(_view(big, seed=4))
    with_both = _tracked_after_a_full_collection()
    # Held as objects, each candidate was two (its entry and its details): 10,000 more here. What
    # remains is per ordering (the sorted lists' few sublists), not per candidate.
    assert with_both - with_small < 250, with_both - with_small
    assert len(kept[1].pool) == 5_000


def test_updates_to_the_pool_leave_nothing_for_the_collector_to_walk() -> None:
    profile_ids = _ids(3_000, seed=5)
    view = _view(profile_ids, seed=6)
    before = _tracked_after_a_full_collection()
    view.apply(_updates(view, profile_ids, seed=7))
    after = _tracked_after_a_full_collection()
    assert after - before < 250, after - before
    held = view.pool.get(profile_ids[0])
    info = view.info(profile_ids[0])
    assert held is not None and info is not None and info.revision == 2


def _largest_young_object() -> int:
    """How many references the biggest object of the young generation holds (what a young collection
    walks for it)."""
    return max((len(gc.get_referents(thing)) for thing in gc.get_objects(generation=0)), default=0)


@contextlib.contextmanager
def _no_automatic_collection() -> Iterator[None]:
    """What the young generation holds is looked at before any collection moves it on."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _full_collections() -> None:
    # Twice: a tuple of tuples is untracked by the collection after the one that untracked its items.
    gc.collect()
    gc.collect()


def test_a_change_after_a_full_collection_does_not_put_the_views_maps_back_in_the_young_generation() -> None:
    profile_ids = _ids(3_000, seed=8)
    view = _view(profile_ids, seed=9)
    _full_collections()  # a dict of atoms alone is untracked here, and tracked again, as new, below
    with _no_automatic_collection():
        view.apply(_updates(view, profile_ids[:1], seed=10))
        # The pool's and the details' maps hold 3,000 candidates each: walked in every young
        # collection if they were young again.
        assert _largest_young_object() < 1_000


def _documents(count: int) -> list[dict[str, Any]]:
    generated = generate_documents(count, seed=11, as_of=AS_OF)
    return [orjson.loads(orjson.dumps(candidate.document)) for candidate in generated]


def test_scoring_memos_filling_after_a_full_collection_stay_out_of_the_young_generation() -> None:
    documents = _documents(1_010)
    rules = rules_for_day(None, AS_OF)
    for document in documents[:1_000]:  # the memos fill with a thousand profiles' facts
        score_profile(document, AS_OF, False, rules)
    _full_collections()
    with _no_automatic_collection():
        for document in documents[1_000:]:
            score_profile(document, AS_OF, False, rules)
        assert _largest_young_object() < 1_000
