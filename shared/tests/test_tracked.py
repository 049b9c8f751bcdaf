"""`TrackedDict` stays tracked by the garbage collector where a plain dict of atoms is dropped from it,
and taken back as a new object at its next insertion (the premise of `shared.tracked`)."""

from __future__ import annotations

import gc

from shared.tracked import TrackedDict, YoungCollections


def _fresh_pair(n: int) -> tuple[int, int]:
    return (n, n + 1)  # built at run time: a new tuple, tracked until a collection sees it


def test_a_plain_dict_of_atoms_leaves_the_collector_and_comes_back_young() -> None:
    plain = {_fresh_pair(n): n for n in range(100)}
    gc.collect()
    gc.collect()
    assert not gc.is_tracked(plain)
    plain[_fresh_pair(1_000)] = 1
    assert gc.is_tracked(plain)
    assert any(thing is plain for thing in gc.get_objects(generation=0))


def test_a_tracked_dict_stays_where_it_was() -> None:
    kept: TrackedDict[tuple[int, int], int] = TrackedDict((_fresh_pair(n), n) for n in range(100))
    gc.collect()
    gc.collect()
    assert gc.is_tracked(kept)
    kept[_fresh_pair(1_000)] = 1
    assert not any(thing is kept for thing in gc.get_objects(generation=0))
    assert kept[(1_000, 1_001)] == 1 and len(kept) == 101


def test_young_collections_are_due_every_so_many_replacements_and_collect_the_middle_generation_too() -> None:
    pacing = YoungCollections(every=100, middle_every=3)
    assert not pacing.due(60)
    assert pacing.due(40)
    collected: list[int] = []

    def seen(phase: str, info: dict[str, int]) -> None:
        if phase == "stop":
            collected.append(info["generation"])

    gc.callbacks.append(seen)
    try:
        for _ in range(3):
            pacing.collect()
    finally:
        gc.callbacks.remove(seen)
    assert collected[-3:] == [0, 0, 1]
    assert not pacing.due(99) and pacing.due(1)
