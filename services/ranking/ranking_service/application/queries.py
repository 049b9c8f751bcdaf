"""Pool queries, answered from the in-memory view only (never a database read per candidate).

Each function runs without awaiting, so it sees the pool at one consistent moment: the pool and the
position it reflects are changed together after each commit, between two queries, never during one.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from ranking_service.domain.pool import (
    CATEGORIES,
    DISTRIBUTION_BINS,
    MAX_CRS,
    PROGRAMS,
    PoolEntry,
    SortKey,
    from_us,
    sorted_codes,
)
from ranking_service.domain.view import CandidateInfo, PoolView
from shared.errors import NotFound, Unavailable, Unprocessable

MAX_SEARCH_PAGE: Final = 500
NOC_INDEX_LIMIT: Final = 200_000
"""Up to this many profiles in the searched occupations, sort them instead of walking the pool."""


class NotInPool(NotFound):
    """The profile is not in the pool (or not the caller's to see)."""

    title = "Not in the pool"

    def __init__(self, profile_id: str) -> None:
        super().__init__(
            f"No profile {profile_id} of yours is in the pool: it was never submitted, has left the pool "
            "(invited, withdrawn, expired, ineligible), or belongs to someone else."
        )


class PoolNotLoaded(Unavailable):
    """The projection is still being read into memory."""

    title = "Pool loading"

    def __init__(self) -> None:
        super().__init__("The ranking pool is still being loaded into memory; retry in a few seconds.")


class InvalidQuery(Unprocessable):
    """A filter that cannot be applied; `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}.", errors=[(field, message)])
        self.field = field


def _ready(view: PoolView) -> PoolView:
    if not view.loaded:
        raise PoolNotLoaded()
    return view


def check_codes(program: str | None, category: str | None) -> None:
    if program is not None and program not in PROGRAMS:
        raise InvalidQuery(
            "program", f"unknown program {program!r}; use one of {', '.join(sorted(PROGRAMS))}"
        )
    if category is not None and category not in CATEGORIES:
        raise InvalidQuery(
            "category", f"unknown category {category!r}; use one of {', '.join(sorted(CATEGORIES))}"
        )
    if program is not None and category is not None:
        raise InvalidQuery("category", "give a program or a category, not both")


# --- one candidate ----------------------------------------------------------------------------------


def candidate(view: PoolView, profile_id: str, owner: str | None) -> dict[str, Any]:
    """`{crs, breakdown, rank, pool_size, submitted_at, programs, categories}`; `owner` restricts to
    the owner's own profile (candidates and partners), None lets anyone see it (officers, ops)."""
    pool = _ready(view).pool
    entry, info = pool.get(profile_id), view.info(profile_id)
    if entry is None or info is None or (owner is not None and info.owner != owner):
        raise NotInPool(profile_id)
    return {
        "crs": entry.crs,
        "breakdown": dict(info.breakdown),
        "rank": pool.rank(profile_id),
        "pool_size": len(pool),
        "submitted_at": entry.submitted_at,
        "programs": sorted_codes(entry.programs),
        "categories": sorted_codes(entry.categories),
    }


# --- aggregates -------------------------------------------------------------------------------------


def distribution(view: PoolView, now: datetime) -> dict[str, Any]:
    """IRCC's published bins, in their published order, and the total."""
    counts = _ready(view).pool.distribution()
    return {
        "as_of": now,
        "rules_version": view.rules_version,
        "bins": [{"range": label, "count": counts[label]} for label, _, _ in DISTRIBUTION_BINS],
        "total": counts["total"],
    }


def top(view: PoolView, n: int, program: str | None, category: str | None) -> dict[str, Any]:
    check_codes(program, category)
    pool = _ready(view).pool
    entries = pool.top(n, program, category)
    return {
        "pool_size": len(pool),
        "eligible_count": pool.size(program, category),
        "position": dict(view.positions),
        "candidates": [{**_summary(entry), "rank": rank} for rank, entry in enumerate(entries, start=1)],
    }


def _summary(entry: PoolEntry) -> dict[str, Any]:
    return {
        "profile_id": entry.profile_id,
        "crs": entry.crs,
        "submitted_at": entry.submitted_at,
        "programs": sorted_codes(entry.programs),
        "categories": sorted_codes(entry.categories),
    }


# --- the draws' selection ---------------------------------------------------------------------------


def selection(
    view: PoolView, program: str | None, category: str | None, size: int, exclude: Collection[str]
) -> dict[str, Any]:
    """The top `size` eligible candidates, best first, at one moment, with the position it reflects."""
    check_codes(program, category)
    view = _ready(view)
    pool = view.pool
    excluded = frozenset(exclude)
    entries = pool.top(size, program, category, exclude=excluded)
    return {
        "position": dict(view.positions),
        "pool_size": len(pool),
        "eligible_count": pool.size(program, category) - _excluded_members(view, excluded, program, category),
        "candidates": [_selected(entry, _info(view, entry)) for entry in entries],
    }


def _info(view: PoolView, entry: PoolEntry) -> CandidateInfo:
    """The details of a candidate the pool holds (the view holds both, or neither)."""
    info = view.info(entry.profile_id)
    assert info is not None, entry.profile_id
    return info


def _selected(entry: PoolEntry, info: CandidateInfo) -> dict[str, Any]:
    return {
        "profile_id": entry.profile_id,
        "owner": info.owner,
        "crs": entry.crs,
        "submitted_at": entry.submitted_at,
        "programs": sorted_codes(entry.programs),
        "categories": sorted_codes(entry.categories),
        "citizenship": info.citizenship,
    }


def _excluded_members(
    view: PoolView, excluded: frozenset[str], program: str | None, category: str | None
) -> int:
    count = 0
    for profile_id in excluded:
        entry = view.pool.get(profile_id)
        if entry is None:
            continue
        if (program is None or program in entry.programs) and (
            category is None or category in entry.categories
        ):
            count += 1
    return count


# --- provinces' search ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SearchFilters:
    noc_codes: frozenset[str] = frozenset()  # any of them
    min_crs: int = 0
    max_crs: int = MAX_CRS
    min_clb: int | None = None  # lowest ability in the candidate's strongest official language
    programs: frozenset[str] = frozenset()  # any of them


def search(view: PoolView, filters: SearchFilters, cursor: str | None, limit: int) -> dict[str, Any]:
    """One page of matching candidates in pool order, with only what a province needs to decide."""
    _check_search(filters, limit)
    view = _ready(view)
    after = decode_cursor(cursor) if cursor else None
    found: list[dict[str, Any]] = []
    last: PoolEntry | None = None
    for entry in _matching(view, filters, after):
        if len(found) == limit:
            return {"items": found, "next_cursor": encode_cursor(last)}
        found.append(_search_item(entry, _info(view, entry)))
        last = entry
    return {"items": found, "next_cursor": None}


def _check_search(filters: SearchFilters, limit: int) -> None:
    unknown = filters.programs - PROGRAMS
    if unknown:
        raise InvalidQuery("programs", f"unknown program(s) {', '.join(sorted(unknown))}")
    if filters.min_crs > filters.max_crs:
        raise InvalidQuery("min_crs", "min_crs must not be above max_crs")
    if not 1 <= limit <= MAX_SEARCH_PAGE:
        raise InvalidQuery("limit", f"limit must be between 1 and {MAX_SEARCH_PAGE}")


def _matching(view: PoolView, filters: SearchFilters, after: SortKey | None) -> Iterator[PoolEntry]:
    entries = _by_occupation(view, filters, after)
    if entries is None:
        # One program filter: walk that program's ordering; several: the whole pool, filtered.
        only = next(iter(filters.programs)) if len(filters.programs) == 1 else None
        entries = view.pool.entries_between(after, filters.min_crs, filters.max_crs, program=only)
    for entry in entries:
        if filters.programs and not (entry.programs & filters.programs):
            continue
        info = _info(view, entry)
        if filters.noc_codes and filters.noc_codes.isdisjoint(info.noc_codes):
            continue
        if filters.min_clb is not None and (info.best_clb() or 0) < filters.min_clb:
            continue
        yield entry


def _by_occupation(
    view: PoolView, filters: SearchFilters, after: SortKey | None
) -> Iterator[PoolEntry] | None:
    """The members of the searched occupations in pool order, when they are few enough to sort."""
    if not filters.noc_codes:
        return None
    sets = [view.by_noc.get(noc, set()) for noc in filters.noc_codes]
    if sum(map(len, sets)) > NOC_INDEX_LIMIT:
        return None
    pool, low, high = view.pool, filters.min_crs, filters.max_crs
    found = [entry for profile_id in set().union(*sets) if (entry := pool.get(profile_id)) is not None]
    wanted = [e for e in found if low <= e.crs <= high and (after is None or e.key > after)]
    return iter(sorted(wanted, key=_key))


def _key(entry: PoolEntry) -> SortKey:
    return entry.key


def _search_item(entry: PoolEntry, info: CandidateInfo) -> dict[str, Any]:
    return {
        **_summary(entry),
        "noc_codes": info.noc_codes,
        "lowest_clb": dict(info.lowest_clb),
    }


def encode_cursor(entry: PoolEntry | None) -> str | None:
    if entry is None:
        return None
    crs, submitted_us, profile_id = entry.key
    return f"{-crs}.{submitted_us}.{profile_id}"


def decode_cursor(cursor: str) -> SortKey:
    try:
        crs, submitted_us, profile_id = cursor.split(".", 2)
        from_us(int(submitted_us))  # in range
        return (-int(crs), int(submitted_us), profile_id)
    except (ValueError, OverflowError):
        raise InvalidQuery(
            "cursor", "the cursor is not one this service returned; start again without it"
        ) from None
