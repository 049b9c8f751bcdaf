"""Micro-benchmark of the in-memory pool: memory per candidate and the cost of each operation.

    python -m bench.ranking_pool [--size 1000000] [--seed 1] [--no-memory]

Scores follow IRCC's published distribution of 2026-08-03 (229,100 profiles), scaled to ``--size``;
submission instants spread over 12 months at microsecond precision; programs and categories are a
synthetic mix. Memory is the traced size of everything the pool keeps alive (entries, ids, instants,
keys, orderings, dict), measured with tracemalloc while the pool is built; timings run afterwards
without tracing. Figures only: nothing here asserts a budget.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from itertools import cycle

from ranking_service.domain.pool import Pool, PoolEntry

# (low, high, count) of the disjoint published bins, pool as of 2026-08-03.
PUBLISHED_BINS = (
    (601, 1200, 500),
    (501, 600, 19705),
    (491, 500, 12939),
    (481, 490, 12890),
    (471, 480, 16368),
    (461, 470, 16057),
    (451, 460, 14845),
    (441, 450, 13595),
    (431, 440, 13267),
    (421, 430, 11942),
    (411, 420, 11326),
    (401, 410, 10775),
    (351, 400, 50107),
    (301, 350, 17101),
    (0, 300, 7683),
)
CATEGORY_SHARES = {
    "french": 0.07,
    "healthcare": 0.10,
    "stem": 0.12,
    "trades": 0.06,
    "transport": 0.03,
    "education": 0.03,
    "agriculture": 0.02,
    "physicians": 0.003,
    "researchers": 0.005,
    "senior_managers": 0.01,
    "military": 0.002,
}
START = datetime(2025, 8, 1, tzinfo=UTC)
YEAR_US = 365 * 24 * 3600 * 1_000_000


def synthetic_entries(size: int, rng: random.Random) -> Iterator[PoolEntry]:
    bins = [(low, high) for low, high, _ in PUBLISHED_BINS]
    weights = [count for _, _, count in PUBLISHED_BINS]
    for (low, high), pid_bits, us in zip(
        rng.choices(bins, weights, k=size),
        (rng.getrandbits(128) for _ in range(size)),
        (rng.randrange(YEAR_US) for _ in range(size)),
        strict=True,
    ):
        yield _entry(str(uuid.UUID(int=pid_bits, version=4)), rng.randint(low, high), us, rng)


def _entry(profile_id: str, crs: int, us: int, rng: random.Random) -> PoolEntry:
    programs = {"fsw"} if rng.random() < 0.75 else set()
    if rng.random() < 0.35 or not programs:
        programs.add("cec")
    if rng.random() < 0.03:
        programs.add("fst")
    if crs > 600:
        programs.add("pnp")
    categories = frozenset(code for code, share in CATEGORY_SHARES.items() if rng.random() < share)
    return PoolEntry(profile_id, crs, START + timedelta(microseconds=us), frozenset(programs), categories)


def build(size: int, rng: random.Random) -> Pool:
    pool = Pool()
    for entry in synthetic_entries(size, rng):
        pool.upsert(entry)
    return pool


def per_op_us(op: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median and p99 of one call, in microseconds."""
    samples = []
    clock = time.perf_counter_ns
    for _ in range(repeat):
        started = clock()
        op()
        samples.append(clock() - started)
    samples.sort()
    return statistics.median(samples) / 1000, samples[int(len(samples) * 0.99)] / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-memory", action="store_true", help="skip tracemalloc (faster build)")
    args = parser.parse_args()
    size: int = args.size
    rng = random.Random(args.seed)
    print(f"pool of {size:,} candidates (seed {args.seed})")

    if not args.no_memory:
        tracemalloc.start()
        pool = build(size, random.Random(args.seed))
        gc.collect()
        held, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        del pool
        gc.collect()
        print(f"memory held: {held / 1e6:,.0f} MB = {held / size:,.0f} B/candidate (tracemalloc)")

    started = time.perf_counter()
    pool = build(size, rng)
    built = time.perf_counter() - started
    print(
        f"build by {size:,} upserts: {built:.1f} s, {built / size * 1e6:.1f} µs per entry incl. generating it"
    )

    ids = [e.profile_id for e in pool.top(size)]
    sample = rng.sample(ids, min(20_000, len(ids)))
    stem = [e.profile_id for e in pool.top(size, category="stem")]
    stem = rng.sample(stem, min(20_000, len(stem)))
    cec = [e.profile_id for e in pool.top(size, program="cec")]
    cec = rng.sample(cec, min(20_000, len(cec)))
    it = cycle(sample)

    def report(name: str, op: Callable[[], object], repeat: int) -> None:
        median, p99 = per_op_us(op, repeat)
        print(f"{name:<46} median {median:>10,.1f} µs   p99 {p99:>10,.1f} µs")

    def construct() -> PoolEntry:
        return PoolEntry(ids[0], 450, START, frozenset({"fsw", "cec"}), frozenset({"stem"}))

    report("PoolEntry(...) construction + validation", construct, 20_000)

    def move() -> None:
        current = pool.get(next(it))
        assert current is not None
        pool.upsert(
            PoolEntry(current.profile_id, rng.randint(300, 600), current.submitted_at, current.programs)
        )

    report("upsert, score changes", move, 10_000)
    it = cycle(sample)

    def same_place() -> None:
        current = pool.get(next(it))
        assert current is not None
        pool.upsert(PoolEntry(current.profile_id, current.crs, current.submitted_at, current.programs))

    report("upsert, same score (profile edit)", same_place, 10_000)
    removed: list[PoolEntry] = []
    it = cycle(sample[:10_000])

    def remove() -> None:
        entry = pool.remove(next(it))
        if entry is not None:
            removed.append(entry)

    report("remove", remove, 10_000)
    back = cycle(removed)
    report("upsert, new candidate", lambda: pool.upsert(next(back)), len(removed))

    it = cycle(sample)
    report("rank", lambda: pool.rank(next(it)), 20_000)
    it = cycle(cec)
    report("rank, program='cec'", lambda: pool.rank(next(it), program="cec"), 20_000)
    it = cycle(stem)
    report("rank, category='stem'", lambda: pool.rank(next(it), category="stem"), 20_000)
    report("count_at_or_above(481)", lambda: pool.count_at_or_above(481), 20_000)
    report("distribution()", pool.distribution, 2_000)
    report("top(10000)", lambda: pool.top(10_000), 50)
    report("top(10000, program='fsw')", lambda: pool.top(10_000, program="fsw"), 50)
    report("top(10000, category='french')", lambda: pool.top(10_000, category="french"), 50)
    invited = frozenset(ids[:500:2])
    report("top(10000, exclude=250 ids)", lambda: pool.top(10_000, exclude=invited), 50)

    started = time.perf_counter()
    rows = pool.snapshot_rows()
    snapshot = time.perf_counter() - started
    started = time.perf_counter()
    restored = Pool.from_rows(rows)
    restore = time.perf_counter() - started
    started = time.perf_counter()
    fingerprint = pool.fingerprint()
    fingerprinting = time.perf_counter() - started
    assert restored.fingerprint() == fingerprint
    print(
        f"snapshot_rows: {snapshot:.2f} s   from_rows: {restore:.2f} s   fingerprint: {fingerprinting:.2f} s"
    )


if __name__ == "__main__":
    main()
