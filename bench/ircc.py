"""IRCC's published figures the synthetic pool is shaped by, and the comparison with them.

- the CRS distribution of the pool in IRCC's published bins: the last row of
  ``ee_pool_distribution_current_bins.csv`` (451-500 and 401-450 are subtotals of the 10-point bins);
- Express Entry admissions by citizenship (``ee_admissions_by_citizenship_year.csv``), for the mix of
  citizenships.

The files live in ``bench/data/`` (copies of IRCC's published figures; ``bench/data/README.md`` gives
their source).
"""

from __future__ import annotations

import csv
import functools
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Final

from rich.table import Table

from bench.pool_data import COUNTRY_CODES, NO_COUNTRY_CODE

__all__ = [
    "DATA_DIR",
    "NOMINATED_BIN",
    "BinComparison",
    "IrccBin",
    "IrccDistribution",
    "bin_label",
    "citizenship_weights",
    "compare_rows",
    "compare_to_ircc",
    "ircc_distribution",
]

DATA_DIR: Final = Path(__file__).resolve().parent / "data"
POOL_DISTRIBUTION_CSV: Final = "ee_pool_distribution_current_bins.csv"
ADMISSIONS_CSV: Final = "ee_admissions_by_citizenship_year.csv"
NOMINATED_BIN: Final = "601-1200"  # the provincial nominees' share (+600)
_SUPPRESSED_WEIGHT: Final = 2.0  # IRCC suppresses counts of 0 to 5 admissions

# ============================================================================================
# IRCC's published figures
# ============================================================================================


@dataclass(frozen=True, slots=True)
class IrccBin:
    label: str  # "491-500"
    low: int
    high: int
    count: int
    subtotal: bool  # 451-500 and 401-450 add up the 10-point bins after them


@dataclass(frozen=True, slots=True)
class IrccDistribution:
    as_of: date
    bins: tuple[IrccBin, ...]  # in IRCC's published order, subtotals included
    total: int

    @property
    def leaves(self) -> tuple[IrccBin, ...]:
        """The bins that do not overlap (subtotals left out); they cover 0 to 1200."""
        return tuple(b for b in self.bins if not b.subtotal)

    def share(self, label: str) -> float:
        return next(b.count for b in self.bins if b.label == label) / self.total


_SUBTOTALS: Final = frozenset({"451-500", "401-450"})


@functools.cache
def ircc_distribution(data_dir: Path = DATA_DIR) -> IrccDistribution:
    """IRCC's latest published pool distribution: the last row of the pool distribution CSV."""
    with (data_dir / POOL_DISTRIBUTION_CSV).open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise ValueError(f"{data_dir / POOL_DISTRIBUTION_CSV} has no rows")
    last = rows[-1]
    bins = []
    for column, value in last.items():
        if column.startswith("crs_"):
            low, high = (int(part) for part in column.removeprefix("crs_").split("_"))
            label = f"{low}-{high}"
            bins.append(IrccBin(label, low, high, int(value), label in _SUBTOTALS))
    distribution = IrccDistribution(
        date.fromisoformat(last["distribution_as_of"]), tuple(bins), int(last["total"])
    )
    if sum(b.count for b in distribution.leaves) != distribution.total:
        raise ValueError(f"the bins of {distribution.as_of} do not add up to its total {distribution.total}")
    return distribution


def bin_label(score: int, distribution: IrccDistribution | None = None) -> str:
    """The IRCC leaf bin (not a subtotal) a score falls in."""
    for b in (distribution or ircc_distribution()).leaves:
        if b.low <= score <= b.high:
            return b.label
    raise ValueError(f"CRS {score} is outside 0..1200")


@functools.cache
def citizenship_weights(data_dir: Path = DATA_DIR) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """ISO codes and weights: Express Entry admissions by citizenship in the latest full year."""
    with (data_dir / ADMISSIONS_CSV).open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    year = max(row["year"] for row in rows if row["year_coverage"] == "full year")
    weights: dict[str, float] = {}
    for row in rows:
        name = row["country_of_citizenship"]
        if row["year"] != year or name in NO_COUNTRY_CODE:
            continue
        if name not in COUNTRY_CODES:
            raise ValueError(f"no ISO code for the citizenship {name!r} of {ADMISSIONS_CSV}")
        admitted, suppressed = row["admissions_rounded"], row["flag"].startswith("suppressed")
        weight = float(admitted) if admitted else (_SUPPRESSED_WEIGHT if suppressed else 0.0)
        code = COUNTRY_CODES[name]
        weights[code] = weights.get(code, 0.0) + weight
    codes = tuple(code for code, weight in sorted(weights.items()) if weight > 0)
    return codes, tuple(weights[code] for code in codes)


# ============================================================================================
# Against IRCC's figures
# ============================================================================================


@dataclass(frozen=True, slots=True)
class BinComparison:
    label: str
    subtotal: bool
    generated: int
    generated_share: float
    ircc: int
    ircc_share: float

    @property
    def difference_points(self) -> float:
        """Generated minus IRCC share, in percentage points."""
        return 100 * (self.generated_share - self.ircc_share)


def compare_rows(scores: Iterable[int], distribution: IrccDistribution | None = None) -> list[BinComparison]:
    distribution = distribution or ircc_distribution()
    counts = Counter(bin_label(score, distribution) for score in scores)
    total = sum(counts.values())
    rows = []
    for b in distribution.bins:
        generated = sum(
            counts[leaf.label] for leaf in distribution.leaves if b.low <= leaf.low and leaf.high <= b.high
        )
        rows.append(
            BinComparison(
                b.label,
                b.subtotal,
                generated,
                generated / total if total else 0.0,
                b.count,
                b.count / distribution.total,
            )
        )
    return rows


def compare_to_ircc(scores: Iterable[int], distribution: IrccDistribution | None = None) -> Table:
    """The generated distribution beside IRCC's, per published bin (subtotals in italics)."""
    distribution = distribution or ircc_distribution()
    rows = compare_rows(scores, distribution)
    total = sum(row.generated for row in rows if not row.subtotal)
    ircc = f"IRCC's pool of {distribution.as_of} ({distribution.total:,})"
    table = Table(title=f"CRS distribution: {total:,} generated vs {ircc}")
    for name in ("CRS", "generated", "share", "IRCC", "IRCC share", "diff (pp)"):
        table.add_column(name, justify="left" if name == "CRS" else "right")
    for row in rows:
        style = "italic dim" if row.subtotal else None
        table.add_row(
            row.label,
            f"{row.generated:,}",
            f"{100 * row.generated_share:.2f}%",
            f"{row.ircc:,}",
            f"{100 * row.ircc_share:.2f}%",
            f"{row.difference_points:+.2f}",
            style=style,
        )
    table.add_row("total", f"{total:,}", "100.00%", f"{distribution.total:,}", "100.00%", "", style="bold")
    return table
