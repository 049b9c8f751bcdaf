"""The bench harness's pure helpers: percentiles, summaries, ratios, pacing, bins, the table's rows.

No timing is asserted anywhere: these check arithmetic on given numbers.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from bench.latency import (
    InFlight,
    UpdateRun,
    percentile,
    ratio,
    run_concurrent,
    run_sequential,
    send_offsets,
    summarize,
    toggled_sibling,
)
from bench.pg_baseline import bin_counts, distribution_sql, order_key
from bench.run import budget_rows, parse_args, selection_kinds

IRCC_BINS = (
    ("601-1200", 601, 1200),
    ("501-600", 501, 600),
    ("451-500", 451, 500),
    ("491-500", 491, 500),
    ("451-460", 451, 460),
    ("0-300", 0, 300),
)


# --- percentiles ------------------------------------------------------------------------------------


def test_percentile_interpolates_between_closest_ranks() -> None:
    samples = [1.0, 2.0, 3.0, 4.0]
    assert percentile(samples, 0) == 1.0
    assert percentile(samples, 50) == 2.5
    assert percentile(samples, 100) == 4.0
    assert percentile(samples, 25) == pytest.approx(1.75)


def test_percentile_of_one_sample_is_that_sample() -> None:
    assert percentile([7.5], 0) == percentile([7.5], 50) == percentile([7.5], 99) == 7.5


def test_p99_of_a_hundred_and_one_samples_is_the_hundredth() -> None:
    samples = [float(i) for i in range(101)]  # 0..100
    assert percentile(samples, 99) == 99.0
    assert percentile(samples, 50) == 50.0


@pytest.mark.parametrize("q", [-1, 100.5, float("nan")])
def test_percentile_refuses_what_is_not_a_percentile(q: float) -> None:
    with pytest.raises(ValueError):
        percentile([1.0, 2.0], q)


def test_percentile_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)


def test_summary_sorts_its_samples_and_counts_the_rate() -> None:
    summary = summarize([4.0, 1.0, 3.0, 2.0], seconds=2.0)
    assert (summary.count, summary.p50_ms, summary.max_ms, summary.mean_ms) == (4, 2.5, 4.0, 2.5)
    assert summary.per_second == 2.0
    assert summary.as_dict()["p99_ms"] == pytest.approx(3.97)


# --- ratios and pacing ------------------------------------------------------------------------------


def test_ratio_is_measured_over_reference_and_unknown_without_one() -> None:
    assert ratio(2.5, 5.0) == 0.5
    assert ratio(None, 5.0) is None
    assert ratio(1.0, None) is None
    assert ratio(1.0, 0) is None


def test_send_offsets_space_the_requests_evenly() -> None:
    offsets = send_offsets(200, 30)
    assert len(offsets) == 6_000
    assert offsets[0] == 0.0
    assert offsets[1] == pytest.approx(0.005)
    assert offsets[-1] == pytest.approx(29.995)
    assert send_offsets(0, 30) == [] and send_offsets(10, 0) == []


def test_toggled_sibling_changes_only_that_fact() -> None:
    document = {"sibling_in_canada": False, "age": 30}
    assert toggled_sibling(document) == {"sibling_in_canada": True, "age": 30}
    assert document["sibling_in_canada"] is False  # the original is left alone


# --- runners: bounded in count (no timing asserted) --------------------------------------------------


def test_runners_stop_at_their_count_and_count_errors() -> None:
    calls: list[int] = []

    async def call(index: int) -> bool:
        calls.append(index)
        return index % 3 != 0

    sequential = asyncio.run(run_sequential(call, 10, limit_s=60))
    assert calls == list(range(10))
    assert sequential.errors == 4 and not sequential.stopped_by_time
    assert sequential.summary is not None and sequential.summary.count == 10
    calls.clear()
    concurrent = asyncio.run(run_concurrent(call, 25, concurrency=4, limit_s=60))
    assert sorted(calls) == list(range(25))
    assert concurrent.summary is not None and concurrent.summary.count == 25


# --- bins and order ---------------------------------------------------------------------------------


def test_bin_counts_follow_inclusive_bounds_and_overlapping_subtotals() -> None:
    counts = bin_counts([0, 300, 451, 460, 495, 500, 501, 600, 601, 1200], IRCC_BINS)
    assert counts == {
        "601-1200": 2,
        "501-600": 2,
        "451-500": 4,  # the subtotal holds its 10-point bins
        "491-500": 2,
        "451-460": 2,
        "0-300": 2,
        "total": 10,
    }


def test_bin_counts_of_an_empty_pool_are_zero() -> None:
    assert bin_counts([], IRCC_BINS) == {**{label: 0 for label, _, _ in IRCC_BINS}, "total": 0}


def test_distribution_sql_has_one_filtered_count_per_bin() -> None:
    sql = distribution_sql(IRCC_BINS)
    assert sql.count("FILTER (WHERE crs BETWEEN") == len(IRCC_BINS)
    assert "BETWEEN 451 AND 500) AS b2" in sql
    assert sql.endswith("count(*) AS total FROM bench_pool")
    with pytest.raises(ValueError):
        distribution_sql(IRCC_BINS, table="pool; DROP TABLE x")


def test_pool_order_is_higher_score_then_earlier_submission_then_id() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [(480, at, "b"), (500, at + timedelta(days=1), "c"), (480, at, "a"), (480, at - timedelta(1), "z")]
    ordered = sorted(rows, key=lambda r: order_key(*r))
    assert ordered == [rows[1], rows[3], rows[2], rows[0]]


# --- the table --------------------------------------------------------------------------------------


def test_budget_rows_compare_with_targets_and_the_baseline() -> None:
    figures = {
        "services": {"pool_size": 100_000, "ranking_rss_mb_loaded": 90.0},
        "rebuild": {"events_per_second": 25_000, "events": 250_000, "replay_seconds": 10.0},
        "candidate": {
            "sequential": {"count": 10, "p50_ms": 1.0, "p99_ms": 2.0, "errors": 0},
        },
        "baseline": {"candidate": {"count": 10, "p50_ms": 4.0, "p99_ms": 10.0}},
        "rounds": [{"invitations": 10_000, "persisted_s": 1.0, "published_s": 7.5}],
    }
    rows = {row.what: row for row in budget_rows(figures)}
    pool = rows["pool size held by ranking"]
    assert pool.ratio_to_target == 0.1 and pool.meets is None  # a quick run was not asked for 1M
    rebuild = rows["projection rebuild from the log"]
    assert rebuild.ratio_to_target == 0.5 and rebuild.meets is False
    assert rebuild.measured == "25,000 events/s (250,000 events in 10.0 s)"
    scored = {"events_per_second": 25_000, "events": 250_000, "replay_seconds": 10.0}
    scored |= {"cpu_us_per_event": 70.1, "scored_reference_share": 0.0812}
    [row] = [r for r in budget_rows({"rebuild": scored}) if r.what == "projection rebuild from the log"]
    assert row.measured == (
        "25,000 events/s (250,000 events in 10.0 s, 70.1 µs CPU/event, "
        "8.1% of profiles scored the reference way)"
    )
    query = rows["GET /v1/pool/candidates/{id}, sequential"]
    assert query.ratio_to_target == 0.4 and query.meets is True
    assert query.vs_baseline == "p50 0.25× · p99 0.2×"
    held = rows["round of 10,000 invitations (#1)"]
    assert held.ratio_to_target == 1.5 and held.meets is False
    assert rows["profile update → new score visible (Ranked)"].measured == "not measured"


def test_budget_rows_judge_the_pool_and_the_updates_of_a_full_run() -> None:
    visible = {"count": 100, "p50_ms": 100.0, "p99_ms": 500.0}
    figures = {
        "services": {"pool_size": 1_000_000, "requested": 1_000_000},
        "update_visible": {
            "visible": visible,
            "put": {"p50_ms": 60.0, "p99_ms": 300.0},
            "after_put": {"p50_ms": 40.0, "p99_ms": 200.0},
            "achieved_rate_per_s": 199.5,
            "accepted": 5_985,
            "not_visible": 0,
            "skipped": 0,
        },
        "update_visible_probe": {"visible": visible, "rate_per_s": 20.0, "achieved_rate_per_s": 20.0,
                                 "accepted": 200, "not_visible": 0, "skipped": 0},
        "update_visible_with_readers": {"visible": {**visible, "p99_ms": 900.0}, "achieved_rate_per_s": 200.0,
                                        "accepted": 4_800, "not_visible": 0, "skipped": 0},
    }  # fmt: skip
    rows = budget_rows(figures)
    by_name = {row.what: row for row in rows}
    assert by_name["pool size held by ranking"].meets is True
    update = by_name["profile update → new score visible (Ranked)"]
    assert update.ratio_to_target == 2.0 and update.meets is False
    probe = by_name["profile update → visible at 20/s (unsaturated probe)"]
    assert probe.ratio_to_target is None and probe.meets is None  # not the budget's rate
    # The run beside the readers is shown, right after the budget's run, and judged by no target.
    beside = by_name["the same, then, while the GET readers below ran beside it (py-spy on ranking too)"]
    assert beside.value == 900.0 and beside.meets is None and beside.ratio_to_target is None
    names = [row.what for row in rows]
    at = names.index("profile update → new score visible (Ranked)")
    assert names[at + 1 : at + 4] == [
        "  of which PUT /v1/profiles/{id} answered",
        "  of which then Ranked read",
        beside.what,
    ]


def test_selection_kinds_take_the_most_common_category_of_the_pool() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [
        ("a", 500, at, ["fsw"], ["healthcare", "french"]),
        ("b", 480, at, ["cec"], ["french"]),
        ("c", 470, at, ["cec"], ["trades"]),
    ]
    assert selection_kinds(rows) == [
        ("general", None, None),
        ("program fsw", "fsw", None),
        ("category french", None, "french"),
    ]
    assert selection_kinds([]) == [("general", None, None), ("program fsw", "fsw", None)]


# --- the rows of the history and appends comparisons --------------------------------------------------


def test_history_row_judges_the_cpu_ratio_against_one_and_a_half() -> None:
    history = {
        "history": 1_000,
        "samples": 50,
        "ratio_p50": 1.2,
        "ratio_cpu": 1.6,
        "server_cpu_ms_per_put_long": 4.8,
        "server_cpu_ms_per_put_short": 3.0,
        "short": {"p50_ms": 5.0},
        "long": {"p50_ms": 6.0},
    }
    [row] = [r for r in budget_rows({"put_history": history}) if r.what.startswith("PUT on a profile")]
    assert row.value == 1.6 and row.meets is False and row.target == "≤ 1.5×"
    within = {**history, "ratio_cpu": 1.1}
    [row] = [r for r in budget_rows({"put_history": within}) if r.what.startswith("PUT on a profile")]
    assert row.meets is True


def test_append_rows_give_each_contender_and_the_event_stores_ratio_to_it() -> None:
    appends = {
        "clients": 8,
        "payload_bytes": 1350,
        "loadavg_before": [1.0, 1.0, 1.0],
        "event_store": {"appends_per_s": 600.0},
        "eventsourcing": {"appends_per_s": 300.0},
        "pgbench": {"error": "RuntimeError: pgbench not found"},
    }
    rows = [r for r in budget_rows({"appends": appends}) if "appends/s" in r.what or r.what.startswith("  ")]
    assert [r.value for r in rows] == [600.0, 300.0, None]
    assert rows[1].vs_baseline == "event store ÷ this = 2×" and rows[2].measured.startswith("failed")


def test_privacy_rebuild_figures_compare_sealed_with_plain_events() -> None:
    from bench.privacy import describe, measure_rebuild

    figures = measure_rebuild(50)
    assert figures["bytes_per_event_sealed"] > figures["bytes_per_event_plain"]
    assert figures["ranking_decode_plain_per_s"] > 0 and figures["profile_replay_sealed_per_s"] > 0
    put = {
        "without_personal_fields": {"p50_ms": 1.0},
        "with_personal_fields": {"p50_ms": 1.5},
        "p50_overhead_ms": 0.5,
        "p50_ratio": 1.5,
    }
    assert "sealed" in describe({"put": put, "rebuild": figures})[0]


def test_the_restart_row_gives_the_time_to_a_loaded_pool_and_its_size() -> None:
    figures = {"rebuild": {"events_per_second": 9_000, "restart_seconds": 4.31, "restart_pool_size": 100_000}}
    [row] = [r for r in budget_rows(figures) if r.what == "ranking restart → pool loaded"]
    assert row.measured == "4.3 s, pool of 100,000 loaded, nothing replayed" and row.value == 4.31
    assert [r for r in budget_rows({"rebuild": {}}) if r.what == "ranking restart → pool loaded"] == []


def test_an_entity_comes_back_once_its_command_is_accepted_and_seen_or_refused() -> None:
    @dataclass
    class Thing:
        name: str
        retired: bool = False

    a, b, c = Thing("a"), Thing("b"), Thing("c")
    pool: InFlight[Thing] = InFlight([a, b])
    assert pool.lend("1") is a and pool.lend("2") is b and pool.lend("3") is None
    pool.accepted("1")
    assert pool.lend("3") is None  # answered, not yet seen
    pool.seen("1")
    assert pool.lend("3") is a  # accepted and seen: back
    pool.seen("2")  # seen before its answer
    assert pool.lend("4") is None
    pool.accepted("2")
    assert pool.lend("4") is b
    pool.refused("3")  # refused: back at once
    assert pool.lend("5") is a and pool.lent == 2
    b.retired = True
    pool.accepted("4")
    pool.seen("4")
    assert pool.lend("6") is None and pool.lent == 1  # retired: not given back
    pool.seen("unknown")  # events of other commands change nothing
    pool.add([c])
    assert pool.lend("6") is c


def test_a_quick_run_steps_its_write_ladders_for_less_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BENCH_WRITE_STEP_S", raising=False)
    assert parse_args(["--pool-size", "100000"]).write_step_seconds == 6.0
    assert parse_args(["--pool-size", "1000000"]).write_step_seconds == 10.0
    assert parse_args(["--pool-size", "100000", "--write-step-seconds", "8"]).write_step_seconds == 8.0


def test_the_write_step_can_be_set_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BENCH_WRITE_STEP_S", "3")
    assert parse_args(["--pool-size", "100000"]).write_step_seconds == 3.0
    assert parse_args(["--pool-size", "1000000"]).write_step_seconds == 3.0


def test_the_rescore_row_shows_the_due_share_the_cost_per_profile_and_the_whole_pass() -> None:
    rebuild = {
        "pool_size": 100_000,
        "rescore_due_next_day": 100_000,
        "rescore_sample": 10_000,
        "rescore_cpu_us_per_profile": 261.0,
        "rescore_wall_us_per_profile": 303.1,
        "rescore_reference_share": 0.5336,
        "rescore_day_cpu_seconds": 26.1,
    }
    [row] = [r for r in budget_rows({"rebuild": rebuild}) if r.what == "next day's rescoring pass"]
    assert row.measured == (
        "100,000 of 100,000 profiles due after midnight UTC; 261.0 µs ranking CPU per profile "
        "(303.1 µs wall, 53% scored the reference way, sample of 10,000): "
        "about 26.1 s of ranking CPU for the pass"
    )
    assert (row.value, row.target, row.meets) == (261.0, "—", None)
    assert [r for r in budget_rows({"rebuild": {}}) if r.what == "next day's rescoring pass"] == []


def test_an_update_run_says_second_by_second_where_its_slowest_answers_were() -> None:
    run = UpdateRun(planned=5, accepted=4, send_seconds=2.0)
    run.timeline = [(0, 4.0, 40.0), (1, 650.0, 700.0), (0, 6.0, None), (1, 5.0, 55.5)]
    assert run.per_second() == [
        {"second": 0, "accepted": 2, "put_max_ms": 6.0, "visible_max_ms": 40.0},
        {"second": 1, "accepted": 2, "put_max_ms": 650.0, "visible_max_ms": 700.0},
    ]
    assert run.as_dict(200.0, 2.0)["per_second"] == run.per_second()
    assert "per_second" not in UpdateRun(planned=1).as_dict(200.0, 1.0)
