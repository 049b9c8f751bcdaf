"""The live Express Entry pool as an in-memory order-statistic structure (pure: no I/O, no frameworks).

Every candidate is ordered by the key ``(-crs, submitted_us, profile_id)``: the higher score first, then
the earlier submission (the published tie-breaking rule), then ``profile_id`` so the order is total and a
rebuild is deterministic. ``submitted_us`` is the submission instant in whole microseconds since the
Unix epoch, an int, which is cheaper to hold and compare than a ``datetime``.

Besides the overall ordering the pool keeps one ordering per program and one per category, each a
``SortedList`` of the very same key tuples (shared objects, so an extra ordering costs one pointer per
member). "My rank", "the top N for this round", "how many at or above S" and the published distribution
are therefore O(log n) (+ the size of the answer) whatever the pool size.

Memory: program and category sets are interned (one frozenset object per distinct combination), score
ints are interned, and the key tuple is computed once per entry and shared by every ordering.

The pool holds each candidate as a plain tuple of atoms (its key, submission instant and sorted program
and category codes), not as a `PoolEntry`: the cyclic garbage collector stops tracking such a tuple at
its first collection, so a pool of a million costs the collector nothing (the map holding them is a
`shared.tracked.TrackedDict`, which the collector leaves alone once it is old). Held as objects, every
entry written after the load (`gc.freeze()` covers the loaded ones) was walked again by each collection
of its generation, and a replaced frozen entry's release counts against the young generation's
allocations, so collections grew with the updates applied: after 400,000 updates to a pool of
1,000,000, a young collection took 142 ms and a full one 1,008 ms here. `PoolEntry` is what the pool
hands out.
"""

from __future__ import annotations

import hashlib
import operator
import re
from collections.abc import Iterable, Iterator
from collections.abc import Set as AbstractSet
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any, Final, NamedTuple

from sortedcontainers import SortedList

from shared.rules.categories import CATEGORY_CODES
from shared.rules.distribution import MAX_CRS, PUBLISHED_BINS
from shared.rules.programs import FEDERAL_PROGRAMS as FEDERAL_PROGRAM_CODES
from shared.rules.programs import PROGRAMS as ALL_PROGRAMS
from shared.tracked import TrackedDict

PROGRAMS: Final = frozenset(ALL_PROGRAMS)
"""Program codes; ``pnp`` means "holds a provincial nomination"."""
FEDERAL_PROGRAMS: Final = frozenset(FEDERAL_PROGRAM_CODES)
"""A candidate is in the pool only while eligible for at least one of these."""
CATEGORIES: Final = frozenset(CATEGORY_CODES)
"""Category codes of category-based rounds."""

SortKey = tuple[int, int, str]
"""``(-crs, submitted_us, profile_id)``: ascending order is pool order."""
PoolRow = tuple[str, int, int, tuple[str, ...], tuple[str, ...]]
"""``(profile_id, crs, submitted_us, programs, categories)`` with programs/categories sorted."""
Record = tuple[SortKey, datetime, tuple[str, ...], tuple[str, ...]]
"""How the pool holds an entry: ``(key, submitted_at, programs, categories)``, the codes sorted and
interned (the instant is kept: making it again from the key costs a microsecond per entry handed out)."""

DISTRIBUTION_BINS: Final = PUBLISHED_BINS
"""IRCC's published CRS bins, in the published order (``shared.rules.distribution``);
``Pool.distribution`` adds ``"total"``."""

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US: Final = timedelta(microseconds=1)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

# Interning tables. Bounded: scores are 0..1200 and the sets are subsets of the known codes.
_CRS_INTS: Final = tuple(range(MAX_CRS + 1))
_NEG_CRS_INTS: Final = tuple(-score for score in range(MAX_CRS + 1))
_Interned = dict[frozenset[str], frozenset[str]]
_PROGRAM_SETS: _Interned = {}
_CATEGORY_SETS: _Interned = {}
_SORTED: dict[frozenset[str], tuple[str, ...]] = {}
_SETS: dict[tuple[str, ...], frozenset[str]] = {}  # the inverse of _SORTED
_FINGERPRINT_CHUNK: Final = 8192
"""Entries hashed per update of the fingerprint's digest (bounds the text held at once)."""


def _intern_set(
    codes: Iterable[str], known: frozenset[str], interned_sets: _Interned, what: str
) -> frozenset[str]:
    codes = codes if isinstance(codes, frozenset) else frozenset(codes)
    interned = interned_sets.get(codes)
    if interned is not None:
        return interned
    if not all(isinstance(code, str) for code in codes) or not codes <= known:
        unknown = sorted(map(repr, codes - known))
        raise ValueError(f"unknown {what} code(s) {', '.join(unknown)}; expected a subset of {sorted(known)}")
    return interned_sets.setdefault(codes, codes)


def _sorted_tuple(codes: frozenset[str]) -> tuple[str, ...]:
    cached = _SORTED.get(codes)
    if cached is None:
        cached = _SORTED.setdefault(codes, tuple(sorted(codes)))
        _SETS.setdefault(cached, codes)
    return cached


def sorted_codes(codes: frozenset[str]) -> tuple[str, ...]:
    """The codes of an entry's (interned) program or category set, sorted; cached per distinct set."""
    return _sorted_tuple(codes)


def is_profile_id(value: object) -> bool:
    """A canonical lowercase UUID string: the only profile ids the pool holds."""
    return isinstance(value, str) and _UUID.fullmatch(value) is not None


def to_us(instant: datetime) -> int:
    """Whole microseconds since the Unix epoch of an aware instant (exact, no float rounding)."""
    return (instant - _EPOCH) // _ONE_US


def from_us(us: int) -> datetime:
    """The aware UTC instant ``us`` microseconds after the Unix epoch."""
    return _EPOCH + timedelta(microseconds=us)


class _EntryFields(NamedTuple):
    profile_id: str
    crs: int
    submitted_at: datetime
    programs: frozenset[str]
    categories: frozenset[str]
    key: SortKey


class PoolEntry(_EntryFields):
    """One candidate in the pool, as the ranking projection sees it.

    Validated on construction: ``profile_id`` a canonical lowercase UUID string, ``crs`` an int in
    0..1200, ``submitted_at`` timezone-aware (normalised to UTC), ``programs`` a subset of
    :data:`PROGRAMS` holding at least one federal program, ``categories`` a subset of
    :data:`CATEGORIES`. Any iterable of codes is accepted and stored as an interned frozenset.

    A named tuple (immutable; ``key`` is derived from the other fields), so that the pool hands an
    entry out from its record at the cost of one tuple.
    """

    __slots__ = ()

    def __new__(
        cls,
        profile_id: str,
        crs: int,
        submitted_at: datetime,
        programs: Iterable[str],
        categories: Iterable[str] = frozenset(),
    ) -> PoolEntry:
        if not isinstance(profile_id, str) or _UUID.fullmatch(profile_id) is None:
            raise ValueError(f"profile_id must be a canonical lowercase UUID string, got {profile_id!r}")
        if not isinstance(crs, int) or isinstance(crs, bool) or not 0 <= crs <= MAX_CRS:
            raise ValueError(f"crs must be an int from 0 to {MAX_CRS}, got {crs!r}")
        if not isinstance(submitted_at, datetime) or submitted_at.utcoffset() is None:
            raise ValueError(f"submitted_at must be a timezone-aware datetime, got {submitted_at!r}")
        if submitted_at.tzinfo is not UTC:
            submitted_at = submitted_at.astimezone(UTC)
        program_set = _intern_set(programs, PROGRAMS, _PROGRAM_SETS, "program")
        if not program_set & FEDERAL_PROGRAMS:
            raise ValueError(
                f"programs must include at least one of {sorted(FEDERAL_PROGRAMS)}, got {sorted(program_set)}"
            )
        category_set = _intern_set(categories, CATEGORIES, _CATEGORY_SETS, "category")
        key = (_NEG_CRS_INTS[crs], to_us(submitted_at), profile_id)
        return tuple.__new__(cls, (profile_id, _CRS_INTS[crs], submitted_at, program_set, category_set, key))

    @property
    def record(self) -> Record:
        """The entry as the pool holds it (see the module docstring)."""
        return (self.key, self.submitted_at, _sorted_tuple(self.programs), _sorted_tuple(self.categories))

    @classmethod
    def of_record(cls, record: Record) -> PoolEntry:
        """The entry a record holds (made from a validated entry: not validated again)."""
        key, submitted_at, programs, categories = record
        return tuple.__new__(
            cls, (key[2], _CRS_INTS[-key[0]], submitted_at, _SETS[programs], _SETS[categories], key)
        )

    def to_row(self) -> PoolRow:
        """The entry as plain values, for persistence: see :data:`PoolRow`."""
        return _row(self.record)

    @classmethod
    def from_row(cls, row: PoolRow | Iterable[Any]) -> PoolEntry:
        """The inverse of :meth:`to_row` (any sequence of the five values is accepted)."""
        profile_id, crs, submitted_us, programs, categories = row
        return cls(profile_id, crs, from_us(submitted_us), frozenset(programs), frozenset(categories))


class Pool:
    """The CRS-ordered pool with per-program and per-category orderings.

    Queries take at most one of ``program`` / ``category`` (an ordering is kept for each, not for
    their combinations); passing both, or an unknown code, raises ``ValueError``.
    """

    __slots__ = ("_by_category", "_by_program", "_entries", "_order")

    def __init__(self) -> None:
        self._entries: TrackedDict[str, Record] = TrackedDict()
        self._order: SortedList = SortedList()
        self._by_program: dict[str, SortedList] = {code: SortedList() for code in sorted(PROGRAMS)}
        self._by_category: dict[str, SortedList] = {code: SortedList() for code in sorted(CATEGORIES)}

    # --- membership -------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, profile_id: object) -> bool:
        return profile_id in self._entries

    def get(self, profile_id: str) -> PoolEntry | None:
        record = self._entries.get(profile_id)
        return None if record is None else PoolEntry.of_record(record)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Pool):
            return NotImplemented
        return self._entries == other._entries

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"<Pool of {len(self)} candidates>"

    # --- changes ----------------------------------------------------------------------------------

    def upsert(self, entry: PoolEntry) -> PoolEntry | None:
        """Put ``entry`` in the pool (or replace the candidate's entry); return the previous entry.

        A replaced candidate moves in every ordering, and leaves the orderings of the programs and
        categories it no longer has.
        """
        record = entry.record
        previous = self._entries.get(entry.profile_id)
        if previous is None:
            self._entries[entry.profile_id] = record
            self._index(record)
            return None
        old_key = previous[0]
        if old_key == record[0]:
            # Same place in every ordering: keep the key tuple already stored in the orderings, so
            # the record and the orderings still share one key object (equal value).
            record = (old_key, record[1], record[2], record[3])
            self._entries[entry.profile_id] = record
            self._move_codes(self._by_program, previous[2], record[2], old_key)
            self._move_codes(self._by_category, previous[3], record[3], old_key)
        else:
            self._entries[entry.profile_id] = record
            self._unindex(previous)
            self._index(record)
        return PoolEntry.of_record(previous)

    def remove(self, profile_id: str) -> PoolEntry | None:
        """Take the candidate out of the pool; return its entry, or None if it was not there."""
        record = self._entries.pop(profile_id, None)
        if record is None:
            return None
        self._unindex(record)
        return PoolEntry.of_record(record)

    def _index(self, record: Record) -> None:
        key, _, programs, categories = record
        self._order.add(key)
        for code in programs:
            self._by_program[code].add(key)
        for code in categories:
            self._by_category[code].add(key)

    def _unindex(self, record: Record) -> None:
        key, _, programs, categories = record
        self._order.remove(key)
        for code in programs:
            self._by_program[code].remove(key)
        for code in categories:
            self._by_category[code].remove(key)

    @staticmethod
    def _move_codes(
        orderings: dict[str, SortedList], old: tuple[str, ...], new: tuple[str, ...], key: SortKey
    ) -> None:
        if old is new:
            return
        for code in old:
            if code not in new:
                orderings[code].remove(key)
        for code in new:
            if code not in old:
                orderings[code].add(key)

    # --- queries ----------------------------------------------------------------------------------

    def _ordering(self, program: str | None, category: str | None) -> SortedList:
        if program is not None:
            if category is not None:
                raise ValueError("pass a program or a category, not both: no combined ordering is kept")
            by_program = self._by_program.get(program)
            if by_program is None:
                raise ValueError(f"unknown program {program!r}; expected one of {sorted(PROGRAMS)}")
            return by_program
        if category is not None:
            by_category = self._by_category.get(category)
            if by_category is None:
                raise ValueError(f"unknown category {category!r}; expected one of {sorted(CATEGORIES)}")
            return by_category
        return self._order

    def rank(self, profile_id: str, program: str | None = None, category: str | None = None) -> int | None:
        """1-based position of the candidate in the ordering; None if not in the pool or the ordering."""
        ordering = self._ordering(program, category)
        record = self._entries.get(profile_id)
        if record is None:
            return None
        key, _, programs, categories = record
        if program is not None and program not in programs:
            return None
        if category is not None and category not in categories:
            return None
        return int(ordering.bisect_left(key)) + 1

    def top(
        self,
        n: int,
        program: str | None = None,
        category: str | None = None,
        exclude: AbstractSet[str] = frozenset(),
    ) -> list[PoolEntry]:
        """The first ``n`` entries of the ordering, in order, skipping the ids in ``exclude``.

        Cost: O(log n + n + len(exclude)); the ordering is walked lazily, never materialised.
        """
        ordering = self._ordering(program, category)
        if n <= 0:
            return []
        entries, entry_of = self._entries, PoolEntry.of_record
        if not exclude:
            return [entry_of(entries[key[2]]) for key in islice(ordering, n)]
        chosen: list[PoolEntry] = []
        # At most len(exclude) of the keys walked are skipped, so this bound always suffices.
        for key in islice(ordering, n + len(exclude)):
            profile_id = key[2]
            if profile_id in exclude:
                continue
            chosen.append(entry_of(entries[profile_id]))
            if len(chosen) == n:
                break
        return chosen

    def size(self, program: str | None = None, category: str | None = None) -> int:
        """How many candidates the ordering holds (the whole pool, or one program's or category's)."""
        return len(self._ordering(program, category))

    def entries_between(
        self,
        after: SortKey | None,
        min_crs: int,
        max_crs: int,
        program: str | None = None,
        category: str | None = None,
    ) -> Iterator[PoolEntry]:
        """Entries in pool order with ``min_crs <= crs <= max_crs``, starting after the key ``after``.

        Lazy: O(log n) to find the start, then O(1) per entry yielded (do not change the pool meanwhile).
        """
        ordering = self._ordering(program, category)
        start = ordering.bisect_left((-operator.index(max_crs),))
        if after is not None:
            start = max(start, ordering.bisect_right(after))
        stop = ordering.bisect_left((1 - operator.index(min_crs),))
        entries, entry_of = self._entries, PoolEntry.of_record
        return (entry_of(entries[key[2]]) for key in ordering.islice(start, stop))

    def count_at_or_above(self, score: int, program: str | None = None, category: str | None = None) -> int:
        """How many candidates of the ordering have a CRS of ``score`` or more."""
        ordering = self._ordering(program, category)
        # (1 - score,) sorts before every key whose first item is 1 - score and after every key with
        # -crs <= -score, so the insertion point is the number of keys with crs >= score.
        return int(ordering.bisect_left((1 - operator.index(score),)))

    def distribution(self, program: str | None = None, category: str | None = None) -> dict[str, int]:
        """The CRS distribution in IRCC's published bins (:data:`DISTRIBUTION_BINS`) plus ``"total"``."""
        ordering = self._ordering(program, category)
        at_or_above: dict[int, int] = {}

        def count(score: int) -> int:
            found = at_or_above.get(score)
            if found is None:
                found = at_or_above[score] = int(ordering.bisect_left((1 - score,)))
            return found

        bins = {label: count(low) - count(high + 1) for label, low, high in DISTRIBUTION_BINS}
        bins["total"] = len(ordering)
        return bins

    def __iter__(self) -> Iterator[PoolEntry]:
        """The entries in pool order (do not change the pool while iterating)."""
        entries, entry_of = self._entries, PoolEntry.of_record
        return (entry_of(entries[key[2]]) for key in self._order)

    # --- persistence and proofs -------------------------------------------------------------------

    def snapshot_rows(self) -> list[PoolRow]:
        """Every entry as a :data:`PoolRow`, in pool order (a list: safe to keep while the pool changes)."""
        entries = self._entries
        return [_row(entries[key[2]]) for key in self._order]

    @classmethod
    def from_rows(cls, rows: Iterable[PoolRow | Iterable[Any]]) -> Pool:
        """A pool holding exactly ``rows`` (any order); a profile_id appearing twice is a ValueError.

        Builds each ordering in one bulk pass (linear when the rows come in pool order, as
        :meth:`snapshot_rows` writes them), much faster than upserting one by one.
        """
        pool = cls()
        entries = pool._entries
        for row in rows:
            record = PoolEntry.from_row(row).record  # validated on the way
            profile_id = record[0][2]
            if profile_id in entries:
                raise ValueError(f"profile_id {profile_id} appears twice in the rows")
            entries[profile_id] = record
        ordered = sorted(entries.values(), key=operator.itemgetter(0))
        by_program: dict[str, list[SortKey]] = {code: [] for code in pool._by_program}
        by_category: dict[str, list[SortKey]] = {code: [] for code in pool._by_category}
        for key, _, programs, categories in ordered:
            for code in programs:
                by_program[code].append(key)
            for code in categories:
                by_category[code].append(key)
        pool._order.update([record[0] for record in ordered])
        for code, keys in by_program.items():
            pool._by_program[code].update(keys)
        for code, keys in by_category.items():
            pool._by_category[code].update(keys)
        return pool

    def fingerprint(self) -> str:
        """A digest of the pool's content in pool order: equal pools, however built, give equal strings.

        Covers every entry's profile_id, score, submission instant, programs and categories, so a
        rebuild from the event log can be proved equal to the live pool by comparing two short strings.
        """
        digest = hashlib.blake2b(b"ee-pool-v1", digest_size=16)
        entries = self._entries
        keys = iter(self._order)
        while chunk := [_row(entries[key[2]]) for key in islice(keys, _FINGERPRINT_CHUNK)]:
            digest.update("\n".join(map(repr, chunk)).encode())
            digest.update(b"\n")
        return digest.hexdigest()

    def check_consistency(self) -> None:
        """Raise ``AssertionError`` unless every ordering holds exactly the entries it should (O(n))."""
        entries = self._entries
        expected = sorted(record[0] for record in entries.values())
        if list(self._order) != expected:
            raise AssertionError("the pool ordering disagrees with its entries")
        for code, ordering in self._by_program.items():
            if list(ordering) != [key for key in expected if code in entries[key[2]][2]]:
                raise AssertionError(f"the {code} ordering disagrees with the entries")
        for code, ordering in self._by_category.items():
            if list(ordering) != [key for key in expected if code in entries[key[2]][3]]:
                raise AssertionError(f"the {code} ordering disagrees with the entries")


def _row(record: Record) -> PoolRow:
    """A held entry as a :data:`PoolRow`."""
    (negative_crs, submitted_us, profile_id), _, programs, categories = record
    return (profile_id, _CRS_INTS[-negative_crs], submitted_us, programs, categories)
