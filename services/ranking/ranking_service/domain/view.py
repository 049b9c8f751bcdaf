"""The in-memory read model every query answers from: the pool, a few details per candidate, and the
projection position it reflects (pure: no I/O).

Only candidates in the pool are held here. Their details are kept small for a pool of a million:
repeated values (owners, citizenships, NOC code lists, CLB pairs, breakdown items) are interned, and a
breakdown is a tuple of `(name, points)` pairs rather than a dict. Like the pool's entries
(`domain.pool`), each candidate's details are held as a plain tuple of atoms (`InfoRecord`), which the
garbage collector stops tracking, and handed out as a `CandidateInfo`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final, NamedTuple, TypeVar

from ranking_service.domain.pool import Pool, PoolEntry
from shared.tracked import TrackedDict

T = TypeVar("T")
Pairs = tuple[tuple[str, int], ...]

_CACHE_LIMIT: Final = 1_000_000
_tuples: TrackedDict[object, object] = TrackedDict()


def _intern(value: T) -> T:
    """One shared object per distinct value (bounded, so hostile input cannot grow it forever)."""
    found = _tuples.get(value)
    if found is not None:
        return found  # type: ignore[return-value]
    if len(_tuples) < _CACHE_LIMIT:
        _tuples[value] = value
    return value


def pairs(mapping: Mapping[str, int]) -> Pairs:
    items = tuple(mapping.items())
    found = _tuples.get(items)
    if found is not None:  # seen before: the interned tuple, without interning each pair again
        return found  # type: ignore[return-value]
    return _intern(tuple(_intern((sys.intern(key), value)) for key, value in items))


def strings(values: Iterable[str]) -> tuple[str, ...]:
    plain = tuple(values)
    found = _tuples.get(plain)
    if found is not None:
        return found  # type: ignore[return-value]
    return _intern(tuple(sys.intern(value) for value in plain))


class CandidateInfo(NamedTuple):
    """What the queries need beyond the pool entry (a named tuple: the view holds it as a plain tuple,
    `record`, and hands it out again at the cost of one tuple)."""

    owner: str
    citizenship: str
    breakdown: Pairs
    noc_codes: tuple[str, ...]
    lowest_clb: Pairs
    revision: int

    @classmethod
    def of(
        cls,
        owner: str,
        citizenship: str,
        breakdown: Mapping[str, int],
        noc_codes: Iterable[str],
        lowest_clb: Mapping[str, int],
        revision: int,
    ) -> CandidateInfo:
        return cls(
            sys.intern(owner), sys.intern(citizenship), pairs(breakdown), strings(noc_codes),
            pairs(lowest_clb), revision,
        )  # fmt: skip

    @property
    def record(self) -> InfoRecord:
        """The details as the view holds them: a plain tuple (a named tuple's class keeps it tracked)."""
        return tuple(self)  # type: ignore[return-value]

    def best_clb(self) -> int | None:
        """The candidate's lowest ability in their strongest official language."""
        return max((clb for _language, clb in self.lowest_clb), default=None)


InfoRecord = tuple[str, str, Pairs, tuple[str, ...], Pairs, int]
"""`CandidateInfo`'s fields in order: how the view holds a candidate's details."""
_NOC_CODES: Final = 3
_REVISION: Final = 5


@dataclass(frozen=True, slots=True)
class MemoryChange:
    """One committed row change, to apply to the view: the entry and details, or None when out."""

    profile_id: str
    revision: int
    entry: PoolEntry | None
    info: CandidateInfo | None


class PoolView:
    """The pool and details, the rules version in force and the position of the events applied.

    `by_noc` indexes the pool by NOC code (NOC -> profile ids), so a province searching for a rare
    occupation does not walk the whole pool.
    """

    def __init__(self, rules_version: str) -> None:
        self.pool = Pool()
        self._infos: TrackedDict[str, InfoRecord] = TrackedDict()
        self.by_noc: dict[str, set[str]] = {}
        self.positions: dict[str, int] = {}  # "topic:partition" -> next offset
        self.rules_version = rules_version
        self.loaded = False
        self.loaded_at: datetime | None = None

    def replace(
        self, pool: Pool, infos: dict[str, InfoRecord], positions: Mapping[str, int], at: datetime
    ) -> None:
        """Swap in a whole pool read from the projection table (startup, or recovery); `infos` holds
        each candidate's `CandidateInfo.record`."""
        by_noc: dict[str, set[str]] = {}
        for profile_id, info in infos.items():
            for noc in info[_NOC_CODES]:
                by_noc.setdefault(noc, set()).add(profile_id)
        self.pool, self._infos, self.by_noc = pool, TrackedDict(infos), by_noc
        self.positions = dict(positions)
        self.loaded, self.loaded_at = True, at

    def info(self, profile_id: str) -> CandidateInfo | None:
        """The candidate's details; None when not in the pool."""
        record = self._infos.get(profile_id)
        return None if record is None else tuple.__new__(CandidateInfo, record)

    def apply(self, changes: Iterable[MemoryChange], positions: Mapping[str, int] | None = None) -> None:
        """Apply committed changes, then move the positions (`apply_change`, `advance`)."""
        for change in changes:
            self.apply_change(change)
        self.advance(positions or {})

    def apply_change(self, change: MemoryChange) -> None:
        """Apply one committed change; one no newer than what is held (a revision not above the held
        one: every write of a row raises its revision) is skipped."""
        held = self._infos.get(change.profile_id)
        if held is not None and held[_REVISION] >= change.revision:
            return
        info = change.info
        if change.entry is None or info is None:
            if held is not None:
                self._unindex(change.profile_id, held[_NOC_CODES])
            self.pool.remove(change.profile_id)
            self._infos.pop(change.profile_id, None)
            return
        self.pool.upsert(change.entry)
        self._infos[change.profile_id] = info.record
        # Most changes are a new score with the same occupations (interned: the same tuple).
        if held is None or held[_NOC_CODES] != info.noc_codes:
            if held is not None:
                self._unindex(change.profile_id, held[_NOC_CODES])
            for noc in info.noc_codes:
                self.by_noc.setdefault(noc, set()).add(change.profile_id)

    def advance(self, positions: Mapping[str, int]) -> None:
        """The view now reflects the events before these offsets ("topic:partition" -> next offset)."""
        for key, offset in positions.items():
            if offset > self.positions.get(key, -1):
                self.positions[key] = offset

    def _unindex(self, profile_id: str, noc_codes: tuple[str, ...]) -> None:
        for noc in noc_codes:
            members = self.by_noc.get(noc)
            if members is not None:
                members.discard(profile_id)
                if not members:
                    del self.by_noc[noc]
