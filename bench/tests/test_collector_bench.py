"""`bench.collector` at a small size: it runs, and what it counts is what the pool holds."""

from __future__ import annotations

from bench.collector import measure_collector


def test_the_collector_bench_counts_a_pool_that_holds_no_tracked_object_per_candidate() -> None:
    small = measure_collector(2_000, 1_000, seed=3)
    big = measure_collector(8_000, 1_000, seed=3)
    assert (small["pool_size"], big["pool_size"], big["updates"], big["paced"]) == (2_000, 8_000, 1_000, True)
    # 6,000 more candidates: held as objects they were 12,000 more frozen; held as tuples, what grows is
    # per occupation and per sorted sublist.
    assert big["frozen"] - small["frozen"] < 1_000, (small["frozen"], big["frozen"])
    assert big["collections"] >= 1_000 // 250  # the paced ones at least
    assert set(big["longest_ms"]) == {"0", "1", "2"}
