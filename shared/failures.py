"""Whose fault is a database error: the data's (dead-letter it, answer 4xx) or the infrastructure's?

PostgreSQL reports a value it cannot take (an integer out of range, a malformed number or date, a
string too long) as a *data exception*, SQLSTATE class 22; asyncpg raises the same class when it cannot
even encode a parameter (an `int` beyond int32/int64 for an integer column). Retrying such a statement
can never succeed, and the database is perfectly reachable: it is the message's (or the request's)
fault. SQLAlchemy wraps both in a plain `DBAPIError`, so the class alone says nothing; the SQLSTATE on
the driver's exception under it does.
"""

from __future__ import annotations

from typing import Final

DATA_EXCEPTION_CLASS: Final = "22"
"""SQLSTATE class of data exceptions (22003 numeric value out of range, 22P02 invalid text, ...)."""

_MAX_DEPTH: Final = 8


def sqlstate_of(exc: BaseException) -> str | None:
    """The first SQLSTATE found on `exc` or the driver exceptions it wraps (`orig`, `__cause__`)."""
    current: BaseException | None = exc
    for _ in range(_MAX_DEPTH):
        if current is None:
            return None
        state = getattr(current, "sqlstate", None) or getattr(current, "pgcode", None)
        if state:
            return str(state)
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) and orig is not current else current.__cause__
    return None


def rejected_data(exc: BaseException) -> str | None:
    """The database's own words when `exc` says a value was unacceptable (SQLSTATE class 22), else None.

    E.g. "integer out of range", or "invalid input for query argument $1: 3000000000 (value out of
    int32 range)".
    """
    state = sqlstate_of(exc)
    if state is None or not state.startswith(DATA_EXCEPTION_CLASS):
        return None
    current: BaseException | None = exc
    for _ in range(_MAX_DEPTH):  # the innermost driver message, without SQLAlchemy's [SQL: ...] suffix
        orig = getattr(current, "orig", None)
        if not isinstance(orig, BaseException) or orig is current:
            break
        current = orig
    message = str(current).split("\n", 1)[0].strip()
    return f"{message} (SQLSTATE {state})" if message else f"SQLSTATE {state}"


__all__ = ["DATA_EXCEPTION_CLASS", "rejected_data", "sqlstate_of"]
