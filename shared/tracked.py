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

from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


class TrackedDict(dict[K, V]):
    """A dict that stays tracked by the garbage collector (see the module docstring)."""

    __slots__ = ()
