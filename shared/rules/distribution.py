"""The CRS score range and the bins IRCC publishes the pool distribution in (crs-rules.md §1.1, §4.1)."""

from __future__ import annotations

from typing import Final

MAX_CRS: Final = 1200
"""The grand total of the CRS grid (§1.1): every score is in 0..MAX_CRS."""

PUBLISHED_BINS: Final[tuple[tuple[str, int, int], ...]] = (
    ("601-1200", 601, MAX_CRS),
    ("501-600", 501, 600),
    ("451-500", 451, 500),
    ("491-500", 491, 500),
    ("481-490", 481, 490),
    ("471-480", 471, 480),
    ("461-470", 461, 470),
    ("451-460", 451, 460),
    ("401-450", 401, 450),
    ("441-450", 441, 450),
    ("431-440", 431, 440),
    ("421-430", 421, 430),
    ("411-420", 411, 420),
    ("401-410", 401, 410),
    ("351-400", 351, 400),
    ("301-350", 301, 350),
    ("0-300", 0, 300),
)
"""IRCC's published CRS bins (label, lowest, highest), in the published order (the feed's dd1..dd17);
451-500 and 401-450 are subtotals of the 10-point bins that follow them."""

SUBTOTAL_BINS: Final = frozenset({"451-500", "401-450"})

SCORE_BINS: Final[tuple[tuple[int, int], ...]] = tuple(
    (low, high) for label, low, high in PUBLISHED_BINS if label not in SUBTOTAL_BINS
)
"""The published bins without the subtotals, highest first: they partition 0..MAX_CRS."""
