"""What the ranking view costs the cyclic garbage collector as updates come in.

    python -m bench.collector [--size 1000000] [--updates 400000] [--seed 1]

    from bench.collector import measure_collector
    figures = measure_collector(100_000, 40_000)     # a dict; prints nothing

The view is filled with `--size` synthetic candidates (`bench.ranking_pool`'s scores and codes), then
collected and frozen as the ranking service does after loading its pool (`gc.collect(); gc.freeze()`),
then given `--updates` changes (a new score, submission instant and details for a random candidate,
with a little cyclic garbage every 50, as a service makes). The collector runs with the thresholds the
services use (`shared.web.app.YOUNG_COLLECTION_THRESHOLD`), and with the young collections the ranking
service paces by the changes it applies (`shared.tracked.YoungCollections`; `--unpaced`: without them).
Figures:

- `frozen`: objects frozen after the load (what a pool held as objects would add per candidate);
- `collections`: automatic collections during the updates, and `longest_ms` the longest of them,
  by generation: a collection holds the event loop for its whole length;
- `full_collection_ms`: one full collection forced after the updates (what the next automatic one
  would walk), and `tracked_after`: objects still tracked then.

Wall times of this process: run it on a quiet machine. Nothing here asserts a budget.
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from bench.ranking_pool import synthetic_entries
from ranking_service.domain.pool import Pool, PoolEntry
from ranking_service.domain.view import CandidateInfo, MemoryChange, PoolView
from shared.tracked import YoungCollections
from shared.web.app import YOUNG_COLLECTION_THRESHOLD

OCCUPATIONS = tuple(f"{21200 + n}" for n in range(400))  # a few hundred NOC codes, as in a real pool


def _info(rng: random.Random, revision: int) -> CandidateInfo:
    breakdown = {"age": rng.randint(0, 110), "education": rng.randint(0, 150), "first_language": 100}
    nocs = rng.sample(OCCUPATIONS, rng.randint(1, 3))
    return CandidateInfo.of("partner-1", "IN", breakdown, sorted(nocs), {"en": rng.randint(4, 10)}, revision)


def measure_collector(size: int, updates: int, *, seed: int = 1, paced: bool = True) -> dict[str, Any]:
    rng = random.Random(seed)
    entries = list(synthetic_entries(size, rng))
    pool = Pool.from_rows(entry.to_row() for entry in entries)
    view = PoolView("in-force")
    view.replace(pool, {entry.profile_id: _info(rng, 1).record for entry in entries}, {}, datetime.now(UTC))
    ids = [entry.profile_id for entry in entries]
    del entries
    thresholds = gc.get_threshold()
    pauses: list[tuple[float, int]] = []
    started = [0.0]

    def timed(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            pauses.append(((time.perf_counter() - started[0]) * 1000, info["generation"]))

    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, thresholds[1], thresholds[2])
    gc.callbacks.append(timed)
    pacing = YoungCollections()
    try:
        updated_at = datetime.now(UTC)
        for revision in range(2, updates + 2):
            profile_id = ids[rng.randrange(size)]
            entry = PoolEntry(profile_id, rng.randint(300, 600), updated_at, frozenset({"fsw"}))
            view.apply_change(MemoryChange(profile_id, revision, entry, _info(rng, revision)))
            if paced and pacing.due(1):
                pacing.collect()
            if revision % 50 == 0:
                cycle: list[Any] = []
                cycle.append(cycle)
    finally:
        gc.callbacks.remove(timed)
        gc.set_threshold(*thresholds)
    started_full = time.perf_counter()
    gc.collect()
    full_ms = (time.perf_counter() - started_full) * 1000
    tracked_after = len(gc.get_objects())
    gc.unfreeze()
    longest = {
        str(generation): round(max((ms for ms, g in pauses if g == generation), default=0.0), 2)
        for generation in (0, 1, 2)
    }
    return {
        "pool_size": len(view.pool),
        "paced": paced,
        "updates": updates,
        "frozen": frozen,
        "collections": len(pauses),
        "longest_ms": longest,
        "full_collection_ms": round(full_ms, 2),
        "tracked_after": tracked_after,
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.collector", description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--updates", type=int, default=400_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--unpaced", action="store_true", help="without the service's paced collections")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    figures = measure_collector(args.size, args.updates, seed=args.seed, paced=not args.unpaced)
    print(orjson.dumps(figures, option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
