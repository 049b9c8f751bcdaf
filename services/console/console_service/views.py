"""What the console shows, computed from the services' answers: pure functions, no I/O."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from prometheus_client.parser import text_string_to_metric_families

POOL_DISTRIBUTION_CSV: Final = "ee_pool_distribution_current_bins.csv"


# -- the pool against IRCC's last published distribution -----------------------------------------------


@dataclass(frozen=True, slots=True)
class IrccDistribution:
    as_of: str
    counts: dict[str, int]  # "491-500" -> count, IRCC's bins (subtotals included)
    total: int
    source: str


def read_ircc_distribution(data_dir: Path) -> IrccDistribution | None:
    """The last row of IRCC's pool distribution CSV (bench's data), or None when it is not there."""
    path = data_dir / POOL_DISTRIBUTION_CSV
    if not path.is_file():
        return None
    return parse_ircc_distribution(path.read_text(), str(path))


def parse_ircc_distribution(text: str, source: str) -> IrccDistribution:
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows:
        raise ValueError(f"{source} has no rows")
    last = rows[-1]
    counts = {
        column.removeprefix("crs_").replace("_", "-"): int(value)
        for column, value in last.items()
        if column.startswith("crs_") and value not in (None, "")
    }
    return IrccDistribution(last["distribution_as_of"], counts, int(last["total"]), source)


def _bounds(label: str) -> tuple[int, int]:
    low, high = label.split("-", 1)
    return int(low), int(high)


def leaf_bins(labels: Sequence[str]) -> list[str]:
    """The bins that hold no other bin (IRCC publishes 451-500 and 401-450 as subtotals), high to low."""
    bounds = {label: _bounds(label) for label in labels}

    def holds_another(label: str) -> bool:
        low, high = bounds[label]
        return any(o != label and low <= bounds[o][0] and bounds[o][1] <= high for o in labels)

    leaves = [label for label in labels if not holds_another(label)]
    return sorted(leaves, key=lambda label: -bounds[label][0])


def _share(count: int, total: int) -> float:
    return round(100.0 * count / total, 2) if total else 0.0


def pool_view(distribution: Mapping[str, Any], ircc: IrccDistribution | None) -> dict[str, Any]:
    """The pool's bins beside IRCC's: counts and shares of each total, leaf bins only."""
    pool_counts = {str(b["range"]): int(b["count"]) for b in distribution.get("bins", [])}
    total = int(distribution.get("total") or sum(pool_counts[b] for b in leaf_bins(list(pool_counts))))
    labels = leaf_bins(list(dict.fromkeys([*pool_counts, *(ircc.counts if ircc else {})])))
    bins = []
    for label in labels:
        count = pool_counts.get(label, 0)
        row: dict[str, Any] = {"range": label, "pool": count, "pool_share": _share(count, total)}
        if ircc is not None:
            published = ircc.counts.get(label, 0)
            row.update(ircc=published, ircc_share=_share(published, ircc.total))
        bins.append(row)
    return {
        "as_of": distribution.get("as_of"),
        "rules_version": distribution.get("rules_version"),
        "total": total,
        "bins": bins,
        "ircc": None if ircc is None else {"as_of": ircc.as_of, "total": ircc.total, "source": ircc.source},
    }


# -- rounds ---------------------------------------------------------------------------------------------

IRCC_COLUMNS: Final = (
    ("drawNumber", "#"),
    ("drawDate", "Date"),
    ("drawName", "Round type"),
    ("drawSize", "Invitations issued"),
    ("drawCRS", "CRS score of lowest-ranked candidate invited"),
    ("drawCutOff", "Tie-breaking rule"),
)


def rounds_view(items: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The rounds as IRCC's table (newest first) and, oldest first, the series per round type."""
    rounds = list(items)
    table = [{key: str(r.get("ircc", {}).get(key, "")) for key, _ in IRCC_COLUMNS} for r in rounds]
    series: dict[str, list[dict[str, Any]]] = {}
    for r in sorted(rounds, key=lambda r: (str(r["held_at"]), int(r["round_number"]))):
        series.setdefault(str(r["type"]), []).append(
            {
                "x": str(r["held_at"]),
                "round": r["round_number"],
                "cutoff": r["cutoff_crs"],
                "size": r["invitations"],
            }
        )
    return {
        "columns": [{"key": key, "title": title} for key, title in IRCC_COLUMNS],
        "table": table,
        "series": series,
        "count": len(rounds),
    }


# -- system health from /readyz and /metrics ------------------------------------------------------------


# The families of shared/metrics.py an operator alerts on (counters by their name without `_total`).
LAG: Final = "ee_consumer_lag_messages"
DEAD_LETTERED: Final = "ee_consumer_dead_lettered"
OUTBOX_BACKLOG: Final = "ee_outbox_unpublished_messages"
OUTBOX_OLDEST: Final = "ee_outbox_oldest_unpublished_age_seconds"
HTTP_REQUESTS: Final = "ee_http_requests"
FIGURES: Final = {
    LAG: "consumer_lag", DEAD_LETTERED: "dead_lettered", OUTBOX_BACKLOG: "outbox_backlog",
    OUTBOX_OLDEST: "outbox_oldest_s",
}  # fmt: skip


def metrics_view(text: str | None) -> dict[str, Any]:
    """What an operator watches, from a service's Prometheus text: consumer lag (all groups and
    partitions), dead-lettered records, outbox backlog and the age of its oldest row, 5xx answers.
    A figure the service does not export is None (shown as "not exported", never as 0)."""
    view: dict[str, Any] = dict.fromkeys([*FIGURES.values(), "server_errors"])
    if text is None:
        return view
    for family in text_string_to_metric_families(text):
        samples = [s for s in family.samples if not s.name.endswith("_created") and math.isfinite(s.value)]
        if family.name in FIGURES:
            values = [s.value for s in samples]
            key = FIGURES[family.name]
            view[key] = max(values, default=0.0) if family.name == OUTBOX_OLDEST else sum(values)
        elif family.name == HTTP_REQUESTS:
            errors = sum(
                s.value for s in samples
                if s.name.endswith("_total") and str(s.labels.get("status", "")).startswith("5")
            )  # fmt: skip
            view["server_errors"] = (view["server_errors"] or 0.0) + errors
    return view


def health_row(
    service: str, ready_status: int | None, ready_body: Any, metrics_text: str | None
) -> dict[str, Any]:
    checks = ready_body.get("checks") if isinstance(ready_body, dict) else None
    return {
        "service": service,
        "ready": ready_status == 200,
        "status": ready_status,
        "checks": checks or {},
        "detail": None
        if ready_status == 200
        else (ready_body.get("detail") if isinstance(ready_body, dict) else "not answering"),
        **metrics_view(metrics_text),
    }
