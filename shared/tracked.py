"""`TrackedDict`: a dict the garbage collector never stops tracking, for big long-lived maps of atoms.

A plain dict whose keys and values are all atoms (strings, numbers, dates, tuples of them) is untracked
by a full collection, and tracked again, as a new object, when a fresh tuple is next put in it. From
then on every young and middle collection walks all its entries, until it has grown old again. Two
kinds of dicts live like that in the ranking service: memos of tuples (scoring facts, interned
breakdowns), and the view's maps of a million candidates, held as plain tuples so that the collector
skips them (`ranking_service.domain.pool`). With the memos as plain dicts, the service's young
collections took 2-5 ms and its middle ones 18-32 ms while they filled after a load
(`bench.loop_stretches`, 100,000 candidates, 200 updates/s); a map of a million candidates walked in a
young collection would take tens of milliseconds each time.

A dict subclass is never untracked, so a `TrackedDict` stays in the generation it reached, and is
frozen with everything else at startup (`gc.freeze()`): filling it costs the collector only its new
entries, each walked once (a tuple of atoms is untracked by the first collection that sees it).
Lookups cost about 15 ns more than on a plain dict.
"""

from __future__ import annotations

import gc
from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


class TrackedDict(dict[K, V]):
    """A dict that stays tracked by the garbage collector (see the module docstring)."""

    __slots__ = ()


class YoungCollections:
    """Young (and middle) collections paced by the entries a long-lived structure replaces.

    Replacing an entry of a big structure makes new objects and frees old ones, so the count of
    allocations that starts a young collection barely moves while the young generation fills with the
    new entries: the collection, when it comes, walks all of them at once. Counting the replacements
    and collecting every `every` of them keeps each collection to about that many entries; every
    `middle_every`-th one collects the middle generation too, which the allocation count would
    otherwise rarely reach either. 400,000 updates to a pool of 1,000,000 at the services' threshold
    (`bench.collector`, two runs back to back): unpaced, 19 collections, the longest young one
    95.24 ms and middle one 68.1 ms; paced (every 250, the middle one every other time), 1,600
    collections, the longest 1.34 ms and 2.12 ms. In the ranking service at 200 updates/s just after
    a load (`bench.loop_stretches`, 100,000 candidates), the longest stretch of loop work went from
    16-32 ms (a middle collection, memos filling) to 4.6 ms.
    """

    __slots__ = ("every", "middle_every", "pending", "young_runs")

    def __init__(self, every: int = 250, middle_every: int = 2) -> None:
        self.every = every
        self.middle_every = middle_every
        self.pending = 0
        self.young_runs = 0

    def due(self, replaced: int) -> bool:
        """Note `replaced` entries replaced; True when a collection is due (`collect` it)."""
        self.pending += replaced
        return self.pending >= self.every

    def collect(self) -> None:
        self.pending = 0
        self.young_runs += 1
        gc.collect(1 if self.young_runs % self.middle_every == 0 else 0)
