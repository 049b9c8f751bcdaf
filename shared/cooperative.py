"""CPU-bound loops run on the event loop in slices, so a long batch does not stall the requests.

A service applies batches of hundreds of events on the same loop that answers its queries. Handing the
work to a thread does not help: the thread holds the GIL for its whole switch interval at a time, and
every query waits for it. `in_slices` instead gives the loop back every `SLICE_SECONDS` of work.

A stretch of work between two round trips often has several steps (a batch's evaluation, then the
parameters of its write, then its events): `Slices` is one budget they share, so that the loop is given
back within about `SLICE_SECONDS` of the last time it had it, whichever step is running then, rather
than each step starting a budget of its own (the stretch was their sum).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from typing import Final, TypeVar

SLICE_SECONDS: Final = 0.001
"""CPU work done without yielding to the event loop, at most (about, plus one item's work)."""

T = TypeVar("T")


class Slices:
    """One budget of CPU work for a stretch without a yield: `pause()` between steps, `each()` in loops.

    `restart()` after an await that gave the loop back (a database round trip): the stretch starts
    again there."""

    __slots__ = ("deadline", "slice_s", "yields")

    def __init__(self, slice_s: float = SLICE_SECONDS) -> None:
        self.slice_s = slice_s
        self.yields = 0  # times it gave the loop back
        self.deadline = time.perf_counter() + slice_s

    def restart(self) -> None:
        self.deadline = time.perf_counter() + self.slice_s

    async def pause(self) -> None:
        """Give the loop back if the budget is spent (then a new one starts)."""
        if time.perf_counter() >= self.deadline:
            await self.give_back()

    async def give_back(self) -> None:
        """Give the loop back now, whatever is left of the budget (a new one starts): where the work
        just done cannot be counted (it ran inside a call, after an await resumed)."""
        await asyncio.sleep(0)
        self.yields += 1
        self.deadline = time.perf_counter() + self.slice_s

    async def each(self, items: Iterable[T]) -> AsyncIterator[T]:
        """Each of `items` in turn, pausing before each one (the caller's work on it counts)."""
        for item in items:
            await self.pause()
            yield item


def in_slices(items: Iterable[T], slice_s: float = SLICE_SECONDS) -> AsyncIterator[T]:
    """Each of `items` in turn, yielding to the event loop whenever `slice_s` has passed since the
    last time it did (the caller's work on each item counts toward the slice): a budget of its own."""
    return Slices(slice_s).each(items)
