"""The plain PostgreSQL baseline of `make bench`: the pool as one table, queried with ORDER BY and counts.

The table holds the same rows as the ranking service's pool, the columns the queries need:

    bench_pool(profile_id text PRIMARY KEY, crs int, submitted_at timestamptz, programs text[],
               categories text[])

with the indexes a careful engineer would add for these queries: pool order
`(crs DESC, submitted_at, profile_id)`, the same order partial per program (`programs @> '{fsw}'`, ...),
and a GIN index on `categories`. Loaded with COPY, then `VACUUM ANALYZE` (so counts can be index-only).

The same questions as the ranking service's routes, timed from this client (asyncpg, one connection,
prepared statements; no HTTP, no JSON: that favours the baseline):

- `candidate`: one candidate's row and rank, `1 + count(*)` of those before it in pool order
  (`crs > c` plus `crs = c AND (submitted_at, profile_id) < (s, id)`: two index-only range counts);
- `candidate_window`: the rank with `rank() OVER (ORDER BY crs DESC, submitted_at, profile_id)`, the
  textbook way (a sort of the whole pool per question: a few samples only);
- `pool_size`: `count(*)` of the table (the ranking answer carries the pool size too);
- `top`: the first N rows in pool order, overall, of one program or one category (`LIMIT N`);
- `distribution`: IRCC's published bins as `count(*) FILTER (WHERE crs BETWEEN lo AND hi)` in one scan.

Pure helpers (unit-tested): `bin_counts(scores, bins)` is what the distribution query must answer,
`distribution_sql(bins)` the query, `order_key(...)` the pool order.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import asyncpg

from bench.latency import RunResult, summarize
from shared import db
from shared.settings import with_database

__all__ = [
    "CANDIDATE_SQL",
    "CANDIDATE_WINDOW_SQL",
    "PROGRAM_CODES",
    "TABLE",
    "Baseline",
    "PoolRow",
    "bin_counts",
    "create_database",
    "distribution_sql",
    "drop_database",
    "order_key",
]

TABLE: Final = "bench_pool"
PROGRAM_CODES: Final = ("fsw", "cec", "fst", "pnp")
_SAFE_NAME: Final = re.compile(r"^[a-z_][a-z0-9_]*$")

PoolRow = tuple[str, int, datetime, list[str], list[str]]
"""(profile_id, crs, submitted_at, programs, categories)."""


# ============================================================================================
# Pure helpers
# ============================================================================================


def order_key(crs: int, submitted_at: datetime, profile_id: str) -> tuple[int, datetime, str]:
    """Pool order: higher CRS first, then earlier submission, then profile id."""
    return (-crs, submitted_at, profile_id)


def bin_counts(scores: Iterable[int], bins: Sequence[tuple[str, int, int]]) -> dict[str, int]:
    """How many scores fall in each `(label, low, high)` bin (inclusive; bins may overlap, as IRCC's
    subtotals do), plus `"total"`: what the distribution query and the ranking route must answer."""
    counts = dict.fromkeys((label for label, _, _ in bins), 0)
    total = 0
    for score in scores:
        total += 1
        for label, low, high in bins:
            if low <= score <= high:
                counts[label] += 1
    counts["total"] = total
    return counts


def distribution_sql(bins: Sequence[tuple[str, int, int]], table: str = TABLE) -> str:
    """One scan: `count(*) FILTER (WHERE crs BETWEEN low AND high)` per bin (`b0`, `b1`, ...), then the
    total; the labels stay in Python (they are not identifiers)."""
    _check_name(table)
    columns = [
        f"count(*) FILTER (WHERE crs BETWEEN {int(low)} AND {int(high)}) AS b{i}"
        for i, (_, low, high) in enumerate(bins)
    ]
    return f"SELECT {', '.join([*columns, 'count(*) AS total'])} FROM {table}"


def _check_name(name: str) -> str:
    if not _SAFE_NAME.match(name):
        raise ValueError(f"unsafe SQL name {name!r}")
    return name


# ============================================================================================
# Databases
# ============================================================================================


def _with_database(dsn: str, name: str) -> str:
    """`dsn` (postgresql://user:pw@host:port/db) pointing at database `name` instead."""
    return with_database(dsn, _check_name(name))


async def drop_database(dsn: str, name: str) -> None:
    """Drop database `name` on `dsn`'s server (`shared.db.drop_database`: it also waits out an
    autovacuum worker still in it after the bench's bulk writes)."""
    await db.drop_database(_with_database(dsn, name))


async def create_database(dsn: str, name: str) -> None:
    """Database `name` on `dsn`'s server, new and empty (`shared.db.create_database`)."""
    await db.create_database(_with_database(dsn, name))


# ============================================================================================
# The baseline
# ============================================================================================


CANDIDATE_SQL: Final = f"""
SELECT me.crs, me.submitted_at, me.programs, me.categories,
       1 + (SELECT count(*) FROM {TABLE} p WHERE p.crs > me.crs)
         + (SELECT count(*) FROM {TABLE} p
             WHERE p.crs = me.crs AND (p.submitted_at, p.profile_id) < (me.submitted_at, me.profile_id))
         AS rank
  FROM {TABLE} me
 WHERE me.profile_id = $1
"""

CANDIDATE_WINDOW_SQL: Final = f"""
SELECT crs, submitted_at, programs, categories, rank
  FROM (SELECT profile_id, crs, submitted_at, programs, categories,
               rank() OVER (ORDER BY crs DESC, submitted_at, profile_id) AS rank
          FROM {TABLE}) ranked
 WHERE profile_id = $1
"""

_COUNT_SQL: Final = f"SELECT count(*) FROM {TABLE}"
_ORDER: Final = "ORDER BY crs DESC, submitted_at, profile_id"
_COLUMNS: Final = "profile_id, crs, submitted_at, programs, categories"


@dataclass
class Baseline:
    """The baseline database `name` on the server of `dsn` (a plain postgresql:// URL)."""

    dsn: str
    name: str
    conn: asyncpg.Connection | None = None

    async def create(self, rows: Sequence[PoolRow]) -> dict[str, float]:
        """Fresh database and table, the rows copied in, indexes built, vacuumed; the seconds of each."""
        await create_database(self.dsn, self.name)
        self.conn = await asyncpg.connect(_with_database(self.dsn, self.name), timeout=30)
        conn = self.conn
        await conn.execute(
            f'CREATE TABLE {TABLE} (profile_id text COLLATE "C" PRIMARY KEY, crs integer NOT NULL, '
            "submitted_at timestamptz NOT NULL, programs text[] NOT NULL, categories text[] NOT NULL)"
        )
        timings: dict[str, float] = {}
        started = time.perf_counter()
        await conn.copy_records_to_table(TABLE, records=rows, columns=list(_COLUMNS.split(", ")))
        timings["copy_seconds"] = time.perf_counter() - started
        started = time.perf_counter()
        await conn.execute(f"CREATE INDEX {TABLE}_order ON {TABLE} (crs DESC, submitted_at, profile_id)")
        for code in PROGRAM_CODES:
            await conn.execute(
                f"CREATE INDEX {TABLE}_order_{code} ON {TABLE} (crs DESC, submitted_at, profile_id) "
                f"WHERE programs @> ARRAY['{code}']"
            )
        await conn.execute(f"CREATE INDEX {TABLE}_categories ON {TABLE} USING gin (categories)")
        timings["index_seconds"] = time.perf_counter() - started
        started = time.perf_counter()
        await conn.execute(f"VACUUM ANALYZE {TABLE}")
        timings["vacuum_analyze_seconds"] = time.perf_counter() - started
        return {key: round(value, 3) for key, value in timings.items()}

    def _conn(self) -> asyncpg.Connection:
        if self.conn is None:
            raise RuntimeError("the baseline is not created")
        return self.conn

    async def close(self) -> None:
        if self.conn is not None:
            await self.conn.close()
            self.conn = None

    async def drop(self) -> None:
        await self.close()
        await drop_database(self.dsn, self.name)

    # -- the questions ----------------------------------------------------------------------------

    async def candidate(self, profile_id: str) -> int | None:
        """The candidate's rank (None when not in the table)."""
        row = await self._conn().fetchrow(CANDIDATE_SQL, profile_id)
        return None if row is None else int(row["rank"])

    async def candidate_window(self, profile_id: str) -> int | None:
        row = await self._conn().fetchrow(CANDIDATE_WINDOW_SQL, profile_id)
        return None if row is None else int(row["rank"])

    async def pool_size(self) -> int:
        return int(await self._conn().fetchval(_COUNT_SQL))

    async def top(self, n: int, program: str | None = None, category: str | None = None) -> list[Any]:
        """The first `n` rows in pool order, of one program or category (or overall)."""
        if program is not None:
            return list(
                await self._conn().fetch(
                    f"SELECT {_COLUMNS} FROM {TABLE} WHERE programs @> ARRAY[$1]::text[] {_ORDER} LIMIT $2",
                    program, n,
                )
            )  # fmt: skip
        if category is not None:
            return list(
                await self._conn().fetch(
                    f"SELECT {_COLUMNS} FROM {TABLE} WHERE categories @> ARRAY[$1]::text[] {_ORDER} "
                    "LIMIT $2",
                    category, n,
                )
            )  # fmt: skip
        return list(await self._conn().fetch(f"SELECT {_COLUMNS} FROM {TABLE} {_ORDER} LIMIT $1", n))

    async def distribution(self, bins: Sequence[tuple[str, int, int]]) -> dict[str, int]:
        row = await self._conn().fetchrow(distribution_sql(bins))
        assert row is not None
        counts = {label: int(row[f"b{i}"]) for i, (label, _, _) in enumerate(bins)}
        counts["total"] = int(row["total"])
        return counts

    async def explain(self, sql: str, *args: Any) -> str:
        """The plan of one query (EXPLAIN ANALYZE), for the figures file."""
        rows = await self._conn().fetch(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {sql}", *args)
        return "\n".join(str(r[0]) for r in rows)


async def timed_runs(
    query: Callable[[int], Awaitable[object]], count: int, limit_s: float
) -> tuple[RunResult, list[object]]:
    """`count` sequential runs of `query(i)` (fewer when `limit_s` runs out); the answers kept."""
    samples: list[float] = []
    answers: list[object] = []
    started = time.perf_counter()
    for index in range(count):
        if index and time.perf_counter() - started > limit_s:
            break
        begun = time.perf_counter_ns()
        answers.append(await query(index))
        samples.append((time.perf_counter_ns() - begun) / 1e6)
    seconds = time.perf_counter() - started
    return RunResult(summarize(samples, seconds), 0, len(samples) < count), answers
