"""CPU-bound loops run on the event loop in slices, so a long batch does not stall the requests.

A service applies batches of hundreds of events on the same loop that answers its queries. Handing the
work to a thread does not help: the thread holds the GIL for its whole switch interval at a time, and
every query waits for it. `in_slices` instead gives the loop back every `SLICE_SECONDS` of work.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from typing import Final, TypeVar

SLICE_SECONDS: Final = 0.002
"""CPU work done without yielding to the event loop, at most (about)."""

T = TypeVar("T")


async def in_slices(items: Iterable[T], slice_s: float = SLICE_SECONDS) -> AsyncIterator[T]:
    """Each of `items` in turn, yielding to the event loop whenever `slice_s` has passed since the
    last time it did (the caller's work on each item counts toward the slice)."""
    clock = time.perf_counter
    deadline = clock() + slice_s
    for item in items:
        if clock() >= deadline:
            await asyncio.sleep(0)
            deadline = clock() + slice_s
        yield item
