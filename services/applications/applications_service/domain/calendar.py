"""Calendar arithmetic the rules need (dates are `datetime.date`, instants are aware UTC datetimes)."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, time


def add_months(day: date, months: int) -> date:
    """The same day `months` later; a day the target month lacks falls back to its last day."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def utc_date(instant: datetime) -> date:
    """The UTC calendar day of an aware instant."""
    return instant.astimezone(UTC).date()


def start_of_day(day: date) -> datetime:
    """Midnight UTC at the start of `day`."""
    return datetime.combine(day, time.min, tzinfo=UTC)
