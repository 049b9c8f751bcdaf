"""The one clock every service reads.

In production `Clock.now()` is the system's UTC time. Outside production an operator (or an end-to-end
test) can shift it with `PUT /v1/admin/clock`, e.g. 60 days ahead to let invitations expire; every
scheduler waits on `wait_for_change()` so it re-checks its deadlines as soon as the clock moves.

Business time (deadlines, expiry, `submitted_at`, event `time`) comes from here. Security time (JWT
`exp`) deliberately does not: moving the business clock must not expire everyone's tokens.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta


def system_now() -> datetime:
    """The machine's time, timezone-aware UTC."""
    return datetime.now(UTC)


class Clock:
    """System UTC time plus an adjustable offset.

    `source` is where "real" time comes from (the system clock unless a test passes its own); the
    offset is added on top. Every change to the offset bumps `generation` and wakes every coroutine
    blocked in `wait_for_change()`, whatever event loop or thread it runs on.
    """

    def __init__(self, *, source: Callable[[], datetime] = system_now, offset: timedelta = timedelta(0)):
        self._source = source
        self._offset = offset
        self._generation = 0
        self._lock = threading.Lock()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    @classmethod
    def frozen(cls, at: datetime) -> Clock:
        """A clock standing still at `at` (tests): `now()` moves only with `set_offset`/`advance`."""
        _require_aware(at, "at")
        instant = at.astimezone(UTC)
        return cls(source=lambda: instant)

    # -- reading --------------------------------------------------------------------------------

    def now(self) -> datetime:
        """Current business time, timezone-aware UTC."""
        return _as_utc(self._source()) + self._offset

    def today(self) -> date:
        """The UTC calendar date of `now()`."""
        return self.now().date()

    @property
    def offset(self) -> timedelta:
        """How far business time is ahead of (positive) or behind (negative) the source."""
        return self._offset

    @property
    def generation(self) -> int:
        """Bumped on every change; pass it to `wait_for_change(since=...)` to miss no change."""
        return self._generation

    # -- moving ---------------------------------------------------------------------------------

    def set_offset(self, offset: timedelta) -> None:
        """Set the offset from the source time and wake every waiter."""
        with self._lock:
            self._offset = offset
            self._generation += 1
            waiters = list(self._waiters)
        for loop, event in waiters:
            _wake(loop, event)

    def advance(self, delta: timedelta) -> None:
        """Move business time by `delta` (added to the current offset)."""
        self.set_offset(self._offset + delta)

    def set_now(self, instant: datetime) -> None:
        """Make `now()` read `instant` at this moment (time keeps flowing from there)."""
        _require_aware(instant, "instant")
        self.set_offset(instant.astimezone(UTC) - _as_utc(self._source()))

    def reset(self) -> None:
        """Back to the source's time."""
        self.set_offset(timedelta(0))

    # -- waiting --------------------------------------------------------------------------------

    async def wait_for_change(
        self,
        timeout: float | None = None,  # noqa: ASYNC109 - the contract: `await clock.wait_for_change(timeout)`
        *,
        since: int | None = None,
    ) -> bool:
        """Wait until the clock is moved or `timeout` seconds pass.

        Returns True when the clock moved, False on timeout. With `since` (a `generation` read
        earlier), returns True at once if the clock has moved since then, so a change that happened
        while the caller was busy is not lost.
        """
        loop = asyncio.get_running_loop()
        event = asyncio.Event()
        entry = (loop, event)
        with self._lock:
            if since is not None and since != self._generation:
                return True
            self._waiters.add(entry)
        try:
            if timeout is None:
                await event.wait()
                return True
            try:
                await asyncio.wait_for(event.wait(), timeout)
            except TimeoutError:
                return False
            return True
        finally:
            with self._lock:
                self._waiters.discard(entry)


def _wake(loop: asyncio.AbstractEventLoop, event: asyncio.Event) -> None:
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        event.set()
    elif not loop.is_closed():
        loop.call_soon_threadsafe(event.set)


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("clock source returned a naive datetime; it must be timezone-aware")
    return value.astimezone(UTC)


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (e.g. 2025-01-31T12:00:00Z), got {value!r}")
