"""Calendar arithmetic the rules need (dates are `datetime.date`, instants are aware UTC datetimes)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from shared.rules.document import add_months

__all__ = ["add_months", "start_of_day", "utc_date"]


def utc_date(instant: datetime) -> date:
    """The UTC calendar day of an aware instant."""
    return instant.astimezone(UTC).date()


def start_of_day(day: date) -> datetime:
    """Midnight UTC at the start of `day`."""
    return datetime.combine(day, time.min, tzinfo=UTC)
