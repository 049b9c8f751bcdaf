"""The bench's reads-under-load pieces: py-spy summaries, stall rows, a run's own ports and databases."""

from __future__ import annotations

import socket

from bench.profiling import summarise
from bench.run import RUN_DB_RE, budget_rows, free_port_base


def test_summary_shares_own_and_inclusive_time_without_the_loop_machinery() -> None:
    raw = [
        "<module> (uvicorn:8);BaseEventLoop._run_once (asyncio/base_events.py:1922);"
        "Handle._run (asyncio/events.py:80);RankingProjection.process (ranking_service/x.py:120);"
        "evaluate (ranking_service/domain/candidate.py:300) 30",
        "<module> (uvicorn:8);BaseEventLoop._run_once (asyncio/base_events.py:1922);"
        "EpollSelector.select (selectors.py:468) 70",
        "garbage",
    ]
    summary = summarise(raw)
    assert summary["samples"] == 100
    assert summary["top_self"][0] == ("EpollSelector.select (selectors.py)", 0.7)
    inclusive = dict(summary["top_inclusive"])
    assert inclusive["RankingProjection.process (ranking_service/x.py)"] == 0.3
    assert not any(name.startswith(("Handle._run", "BaseEventLoop.", "<module>")) for name in inclusive)
    assert sorted(summary["top_project"]) == [
        ("RankingProjection.process (ranking_service/x.py)", 0.3),
        ("evaluate (ranking_service/domain/candidate.py)", 0.3),
    ]


def test_the_stall_during_the_update_run_is_judged_against_the_loaded_read_target() -> None:
    figures = {
        "loop_stalls": {
            "ranking": {"phase": 0.004, "process": 0.2, "busy_phase": 0.003},
            "profile": {"phase": 0.03},
        },
        "update_load": [3.5, 2.0, 1.0],
    }
    rows = {row.what: row for row in budget_rows(figures)}
    ranking = rows["longest event-loop stall of ranking during the update run"]
    assert (ranking.value, ranking.meets) == (4.0, True)
    assert "load 3.5" in ranking.measured and "own CPU at most 3.0 ms" in ranking.measured
    assert rows["longest event-loop stall of profile during the update run"].meets is False


def test_the_stall_with_the_readers_beside_the_updates_is_a_row_of_its_own_with_the_same_target() -> None:
    figures = {
        "loop_stalls": {"ranking": {"phase": 0.004}},
        "loop_stalls_with_readers": {"ranking": {"phase": 0.025, "busy_phase": 0.02}},
        "update_load": [3.5, 2.0, 1.0],
    }
    rows = {row.what: row for row in budget_rows(figures)}
    alone = rows["longest event-loop stall of ranking during the update run"]
    beside = rows[
        "longest event-loop stall of ranking while the GET readers ran beside it (py-spy on ranking too)"
    ]
    assert (alone.value, alone.meets) == (4.0, True)
    assert (beside.value, beside.meets, beside.target) == (25.0, False, alone.target)
    assert "own CPU at most 20.0 ms" in beside.measured


def test_a_busy_port_moves_the_services_to_the_next_free_base() -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        base = free_port_base(port - 1, step=10)
        assert base != port - 1
        assert not base < port <= base + 4


def test_databases_of_a_run_carry_its_id() -> None:
    for name in ("profile_benchsuite1796406153", "ranking_benchsuite1796406153_bench",
                 "eebench_baseline1796406153"):  # fmt: skip
        match = RUN_DB_RE.match(name)
        assert match is not None and match.group(1) == "1796406153"
    assert RUN_DB_RE.match("profile_wrbench") is None and RUN_DB_RE.match("ranking_benchsuite") is None
