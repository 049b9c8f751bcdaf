"""Bounds of the integers a request may carry (pure constants, for the domain and the HTTP edge).

Every integer that reaches a query or a stored document is bounded where it enters: an integer
beyond PostgreSQL's `integer` (or a JSON encoder's 64 bits) would otherwise fail in the driver,
which the service cannot tell from an outage.
"""

from __future__ import annotations

from typing import Final

DB_INT_MAX: Final = 2**31 - 1
"""PostgreSQL `integer`: round numbers, ranks, page offsets and sizes."""

MAX_AMOUNT_CAD: Final = 10**12
"""Money in Canadian dollars (settlement funds, proof of funds): far above any real amount."""
