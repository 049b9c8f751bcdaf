"""The webhook benchmark's pure parts: latencies from the receiver's log (first arrival of each
webhook-id), the table's rows and their verdict against issue 14's one second."""

from __future__ import annotations

import json
from pathlib import Path

from bench.notifications import Tail, latencies_ms
from bench.run import budget_rows


def test_latency_is_event_time_to_first_arrival_of_each_webhook_id() -> None:
    records = [
        {"webhook_id": "msg_a", "time": "2026-12-04T12:00:00Z", "received_at": 1796385600.25},
        {"webhook_id": "msg_a", "time": "2026-12-04T12:00:00Z", "received_at": 1796385609.0},  # resent
        {"webhook_id": "msg_b", "time": "2026-12-04T12:00:00.500000Z", "received_at": 1796385601.0},
    ]
    assert [round(x, 3) for x in latencies_ms(records)] == [250.0, 500.0]


def test_the_tail_reads_complete_lines_only(tmp_path: Path) -> None:
    path = tmp_path / "received.jsonl"
    line = json.dumps({"webhook_id": "msg_a", "received_at": 1.0, "time": "x"})
    path.write_text(line + "\n" + line[:10])
    tail = Tail(path)
    assert tail.poll() == 1
    with path.open("a") as handle:
        handle.write(line[10:].replace("msg_a", "msg_a") + "\n")
    assert tail.poll() == 1 and len(tail.records) == 2


def test_webhook_rows_judge_the_lone_ita_against_one_second() -> None:
    figures = {
        "webhooks": {
            "subscribers": 10,
            "probe": {"count": 500, "p50_ms": 80.0, "p99_ms": 350.0},
            "burst": {
                "invitations": 10_000, "deliveries": 100_000, "seconds": 400.0, "duplicates": 0,
                "deliveries_per_s": 250.0, "p50_ms": 200_000.0, "p99_ms": 395_000.0,
                "service_cpu_ms_per_delivery": 2.1, "loadavg_1m_before": 5.0, "loadavg_1m_after": 6.0,
            },
        }
    }  # fmt: skip
    rows = {row.what: row for row in budget_rows(figures)}
    lone = rows["webhook: lone ITA → delivered to each of 10 subscribers"]
    assert lone.meets is True and lone.ratio_to_target == 0.35
    burst = rows["webhooks: 10,000 ITAs × 10 subscribers (one burst)"]
    assert burst.measured.startswith("250 deliveries/s (100,000 in 400.0 s") and burst.meets is None
    missing = {row.what: row for row in budget_rows({})}
    assert missing["webhook: lone ITA → delivered to each subscriber"].measured == "not measured"
