"""What an attempt's outcome means and when the next one is due (pure).

- 2xx: delivered.
- 410 Gone: the receiver asks us to stop: the subscription is disabled.
- 5xx, 408, 429, a timeout or a connection error: retried on the schedule (default 5 s, 5 min,
  30 min, 2 h, 5 h, 10 h, 10 h), each wait ±jitter, and never sooner than a `Retry-After` asks;
  after the last retry the delivery has failed (the log keeps it; it can be retried or replayed).
- any other status (including redirects, which are never followed): failed at once.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import StrEnum

RETRYABLE_STATUS = frozenset({408, 429})
MAX_RETRY_AFTER_S = 24 * 3600.0


class Verdict(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    FAILED = "failed"
    GONE = "gone"


@dataclass(frozen=True)
class Attempt:
    """One HTTP attempt as the sender saw it."""

    status_code: int | None  # None: no answer (timeout, connection refused, ...)
    error: str | None
    latency_ms: float
    retry_after_s: float | None = None


def verdict_of(attempt: Attempt) -> Verdict:
    code = attempt.status_code
    if code is None:
        return Verdict.RETRY
    if 200 <= code < 300:
        return Verdict.DELIVERED
    if code == 410:
        return Verdict.GONE
    if code >= 500 or code in RETRYABLE_STATUS:
        return Verdict.RETRY
    return Verdict.FAILED


def next_delay_s(
    attempts_made: int,
    schedule: Sequence[float],
    jitter: float,
    retry_after_s: float | None = None,
    rng: random.Random | None = None,
) -> float | None:
    """Seconds until the next attempt after `attempts_made` failed ones, or None when exhausted."""
    if attempts_made < 1 or attempts_made > len(schedule):
        return None
    base = schedule[attempts_made - 1]
    spread = (rng or random).uniform(-jitter, jitter) if jitter else 0.0
    delay = base * (1.0 + spread)
    if retry_after_s is not None:
        delay = max(delay, min(retry_after_s, MAX_RETRY_AFTER_S))
    return delay


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """`Retry-After` as seconds from now: delta-seconds or an HTTP date; None when absent or garbage."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def due_at(now: datetime, delay_s: float) -> datetime:
    return now + timedelta(seconds=delay_s)
