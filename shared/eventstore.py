"""Streams of events per aggregate, with optimistic concurrency.

Each aggregate is a stream; its events have versions 1, 2, 3, ... and `(stream_id, version)` is
unique, so of two writers that both read version 3 and append version 4, exactly one commits. The
other gets `ConcurrencyError` (a 409/412 over HTTP, or a reload-and-retry in a command handler).

The store never opens or commits a transaction: it works inside the caller's (the unit of work's
`shared.db.Transaction`, or a session), so the events commit together with the outbox rows and any
state the service keeps.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Final, NamedTuple

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import Transaction, driver_connection, event_store, reading_connection, snapshots
from shared.envelope import Envelope, decode, encode

_TAKE_BACK_SQL: Final = "DELETE FROM event_store WHERE event_id = ANY($1::uuid[])"


class ConcurrencyError(Exception):
    """Someone else appended to the stream since `expected_version` was read."""

    def __init__(self, stream_id: str, expected_version: int, actual_version: int | None = None) -> None:
        self.stream_id = stream_id
        self.expected_version = expected_version
        self.actual_version = actual_version
        actual = "" if actual_version is None else f", it is at version {actual_version}"
        super().__init__(
            f"stream {stream_id!r} changed concurrently: expected version {expected_version}{actual}; "
            "reload it and try again"
        )


_HEAD_AND_INSERT = """
    WITH head AS (
        SELECT coalesce(max(version), 0) AS version FROM event_store WHERE stream_id = $1
    ), inserted AS (
        INSERT INTO event_store (stream_id, version, event_id, type, envelope)
        SELECT $1, e.version, e.event_id, e.type, e.envelope::jsonb
        FROM unnest($3::integer[], $4::uuid[], $5::text[], $6::text[]) AS e(version, event_id, type, envelope)
        WHERE (SELECT version FROM head) = $2
        ON CONFLICT ON CONSTRAINT uq_event_store_stream_version DO NOTHING
        RETURNING 1
    )"""

# The outbox rows of the unit of work (in their order), written only when every event went in.
_OUTBOXED = """, outboxed AS (
        INSERT INTO outbox (event_id, topic, key, payload)
        SELECT o.e, o.t, o.k, o.p
        FROM unnest($7::text[], $8::text[], $9::text[], $10::bytea[]) WITH ORDINALITY AS o(e, t, k, p, n)
        WHERE {written}
        ORDER BY o.n
        RETURNING 1
    )"""

# True in the statement when every event went in: what the outbox rows and the `also` writes wait for.
_WRITTEN = "(SELECT count(*) FROM inserted) = cardinality($3::integer[])"
_PARAMETER = re.compile(r"\$(\d+)")


class Followup(NamedTuple):
    """A write that goes with an append, in the same statement (one round trip), only if every event
    went in: e.g. the aggregate's projection row or its snapshot. `sql` is an INSERT (or UPDATE) whose
    parameters are `$1..$n` of `args` and whose condition includes `{written}`."""

    sql: str
    args: Sequence[Any]

    def alone(self) -> str:
        """The statement by itself (no append beside it): `{written}` is true."""
        return self.sql.format(written="true")


@functools.lru_cache(maxsize=64)
def _append_sql(with_outbox: bool, also: tuple[str, ...]) -> str:
    """The append statement: the version check, the insert, [the outbox rows], [the `also` writes],
    and the head version with the count of what went in."""
    parts = [_HEAD_AND_INSERT]
    if with_outbox:
        parts.append(_OUTBOXED.format(written=_WRITTEN))
    offset = 10 if with_outbox else 6
    for n, sql in enumerate(also):
        base = offset

        def renumber(match: re.Match[str], base: int = base) -> str:
            return f"${int(match.group(1)) + base}"

        body = _PARAMETER.sub(renumber, sql).format(written=_WRITTEN)
        parts.append(f", also{n} AS (\n        {body}\n        RETURNING 1\n    )")
        offset += _parameter_count(sql)
    parts.append("\n    SELECT (SELECT version FROM head), (SELECT count(*) FROM inserted)")
    return "".join(parts)


def _parameter_count(sql: str) -> int:
    return max((int(m) for m in _PARAMETER.findall(sql)), default=0)


# The stored envelope is read as JSON text, parsed once by `decode` (not into a dict by the driver's
# JSONB codec, then dumped and parsed again).
_LOAD_SQL = "SELECT envelope::text FROM event_store WHERE stream_id = $1 AND version > $2 ORDER BY version"

# A snapshot of the kind asked for and the stream's events after it, in one round trip and one row
# (version and state NULL without a snapshot), then whatever else the caller reads with it (`also`).
_LOAD_FROM_SNAPSHOT_SQL = """
    WITH snap AS (
        SELECT version, state FROM snapshots WHERE stream_id = $1 AND kind = $2
    )
    SELECT (SELECT version FROM snap), (SELECT state::text FROM snap),
           ARRAY(SELECT envelope::text FROM event_store
                 WHERE stream_id = $1 AND version > coalesce((SELECT version FROM snap), 0)
                 ORDER BY version){also}
"""


def _save_snapshot() -> sa.Insert:
    statement = insert(snapshots)
    excluded = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=[snapshots.c.stream_id],
        set_={
            "kind": excluded.kind,
            "version": excluded.version,
            "state": excluded.state,
            "taken_at": sa.func.now(),
        },
        where=(snapshots.c.kind != excluded.kind) | (snapshots.c.version < excluded.version),
    )


_SAVE_SNAPSHOT = _save_snapshot()


@dataclass(frozen=True, slots=True)
class Snapshot:
    """An aggregate's state (`kind`: its shape, as the repository names it) as of `version`."""

    kind: str
    version: int
    state: dict[str, Any]


_SNAPSHOT_FOLLOWUP_SQL = """
        INSERT INTO snapshots (stream_id, kind, version, state)
        SELECT $1::text, $2::text, $3::integer, $4::text::jsonb WHERE {written}
        ON CONFLICT (stream_id) DO UPDATE
        SET kind = excluded.kind, version = excluded.version, state = excluded.state, taken_at = now()
        WHERE snapshots.kind <> excluded.kind OR snapshots.version < excluded.version"""


def snapshot_followup(stream_id: str, snapshot: Snapshot) -> Followup:
    """`save_snapshot` as a write that goes with the append of the events it covers."""
    state = orjson.dumps(snapshot.state, option=orjson.OPT_UTC_Z).decode()
    return Followup(_SNAPSHOT_FOLLOWUP_SQL, (stream_id, snapshot.kind, snapshot.version, state))


class Cursor(NamedTuple):
    """Where `EventStore.read_all` stands: the writing transaction's id and the event's position."""

    transaction: int
    position: int


START: Final = Cursor(0, 0)
"""The cursor before the first event."""

_READ_ALL = sa.text(
    """
    SELECT transaction_id::text, position, envelope::text
    FROM event_store
    WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot())
      AND (transaction_id, position) > (CAST(:transaction AS xid8), :position)
    ORDER BY transaction_id, position
    LIMIT :limit
    """
)


class OutboxRow(NamedTuple):
    """A message for the outbox table (`shared.uow` buffers them): topic already prefixed."""

    event_id: str
    topic: str
    key: str | None
    payload: bytes


def stamp(stream_id: str, expected_version: int, envelopes: Sequence[Envelope]) -> list[Envelope]:
    """The envelopes as `append` stores them: `aggregateid` = stream id, versions after `expected_version`."""
    return [
        replace(env, aggregateid=stream_id, aggregateversion=expected_version + i)
        for i, env in enumerate(envelopes, start=1)
    ]


class EventStore:
    """Append to and read event streams inside the caller's `AsyncSession`."""

    async def current_version(self, session: AsyncSession, stream_id: str) -> int:
        """The stream's last version; 0 for a stream that does not exist."""
        result = await session.execute(
            sa.select(sa.func.coalesce(sa.func.max(event_store.c.version), 0)).where(
                event_store.c.stream_id == stream_id
            )
        )
        return int(result.scalar_one())

    async def append(
        self,
        session: AsyncSession | Transaction,
        stream_id: str,
        expected_version: int,
        envelopes: Sequence[Envelope],
        outbox: Sequence[OutboxRow] = (),
        also: Sequence[Followup] = (),
        encoded: Sequence[bytes] | None = None,
        alone: bool = False,
    ) -> list[Envelope]:
        """Append `envelopes` as versions `expected_version + 1, + 2, ...` of `stream_id`.

        `outbox` rows (the unit of work's, in order) are written by the same statement, and only if
        every event was: nothing of them is written when this raises; so are the `also` writes (the
        aggregate's projection, its snapshot): one round trip for all of it. `encoded`: the stamped
        envelopes already through `encode` (the unit of work has them for the outbox), else encoded here.
        `alone`: this is the transaction's last write. When nothing has begun yet and there is one
        event, the statement then runs outside a transaction and commits by itself (saving a BEGIN and
        a COMMIT, two round trips of every command), and the transaction is sealed. One event only:
        a statement that lost part of a multi-event race has to be taken back, which needs a
        transaction.

        Returns the envelopes as stored (`aggregateid` = stream id, `aggregateversion` set). Raises
        `ConcurrencyError` when the stream is not at `expected_version`, or when a concurrent
        transaction wins the race for the same versions; then nothing is written and the caller's
        transaction is still usable (a lost race skips the rows instead of raising in PostgreSQL).
        """
        if expected_version < 0:
            raise ValueError(f"expected_version must be >= 0, got {expected_version}")
        stamped = stamp(stream_id, expected_version, envelopes)
        if not stamped:
            return []
        # One statement, one round trip: the version check, the insert and the count of what went in.
        # The check (the stream's last version, read in the statement's snapshot) refuses a stale or
        # too-new `expected_version` (a client's If-Match from the future would otherwise leave a
        # gap) without writing; a concurrent writer that wins between that snapshot and the insert
        # holds the same (stream_id, version) keys, so the insert waits for it and then, once it has
        # committed, skips those rows (ON CONFLICT DO NOTHING) instead of failing: no savepoint is
        # needed to keep the caller's transaction usable.
        unbegun = None
        if alone and len(stamped) == 1 and isinstance(session, Transaction):
            unbegun = await session.unbegun_connection()
        connection = unbegun or await driver_connection(session)
        arguments = [
            stream_id,
            expected_version,
            [env.aggregateversion for env in stamped],
            [env.id for env in stamped],
            [env.type for env in stamped],
            # Through the wire codec, so the stored envelope is exactly what consumers read.
            [body.decode() for body in ([encode(env) for env in stamped] if encoded is None else encoded)],
        ]
        if outbox:
            arguments += [[row.event_id for row in outbox], [row.topic for row in outbox],
                          [row.key for row in outbox], [row.payload for row in outbox]]  # fmt: skip
        for followup in also:
            arguments += followup.args
        sql = _append_sql(bool(outbox), tuple(followup.sql for followup in also))
        actual, inserted = await connection.fetchrow(sql, *arguments)
        if actual != expected_version:
            raise ConcurrencyError(stream_id, expected_version, int(actual))
        if inserted != len(stamped):
            if inserted:
                # Lost the race for some of the versions only (the winner wrote fewer events): take
                # back ours, which only this transaction sees, so that nothing is written.
                await connection.execute(_TAKE_BACK_SQL, [env.id for env in stamped])
            raise ConcurrencyError(stream_id, expected_version)
        if unbegun is not None:
            assert isinstance(session, Transaction)
            session.seal()
        return stamped

    async def load(
        self, session: AsyncSession | Transaction, stream_id: str, after_version: int = 0
    ) -> list[Envelope]:
        """The stream's events in version order (from `after_version + 1`, e.g. after a snapshot)."""
        # Every command of a repository without snapshots: asyncpg directly (see `driver_connection`).
        connection = await reading_connection(session)
        return [decode(row[0]) for row in await connection.fetch(_LOAD_SQL, stream_id, after_version)]

    async def load_from_snapshot(
        self, session: AsyncSession | Transaction, stream_id: str, kind: str
    ) -> tuple[Snapshot | None, list[Envelope]]:
        """The stream's latest snapshot of `kind` (None if there is none) and its events after it."""
        snapshot, envelopes, _ = await self.load_from_snapshot_with(session, stream_id, kind)
        return snapshot, envelopes

    async def load_from_snapshot_with(
        self,
        session: AsyncSession | Transaction,
        stream_id: str,
        kind: str,
        also: Sequence[str] = (),
        *args: Any,
    ) -> tuple[Snapshot | None, list[Envelope], tuple[Any, ...]]:
        """The stream's latest snapshot of `kind` (None if there is none), its events after it, and the
        values of the `also` expressions (scalar subqueries whose parameters are `$3...`, `args`) read
        in the same round trip (e.g. the aggregate's data key)."""
        connection = await reading_connection(session)
        sql = _LOAD_FROM_SNAPSHOT_SQL.format(also="".join(f", {expression}" for expression in also))
        row = await connection.fetchrow(sql, stream_id, kind, *args)
        version, state, bodies = row[0], row[1], row[2]
        snapshot = None if version is None else Snapshot(kind, int(version), orjson.loads(state))
        return snapshot, [decode(body) for body in bodies], tuple(row[3:])

    async def save_snapshot(self, session: AsyncSession, stream_id: str, snapshot: Snapshot) -> None:
        """Keep `snapshot` as the stream's, unless one of the same kind and a later version is there.

        Call it in the transaction that appended the events up to `snapshot.version`, so that it never
        commits ahead of them.
        """
        await session.execute(
            _SAVE_SNAPSHOT,
            {
                "stream_id": stream_id,
                "kind": snapshot.kind,
                "version": snapshot.version,
                "state": snapshot.state,
            },
        )

    async def read_all(
        self, session: AsyncSession, after: Cursor = START, limit: int = 1000
    ) -> list[tuple[Cursor, Envelope]]:
        """Every stream's committed events after `after`, at most `limit`, each with its cursor.

        Pass the last cursor back to read the next page. The order is the order of commit as a reader
        can know it: transaction by transaction (in the order of their ids, each transaction's events
        together and in the order it appended them), and only transactions older than every one still
        running. So a page, once read, is final: no event can later commit in front of it, which
        paging by `position` alone cannot promise (positions are taken at insert time, so a
        transaction that commits late holds a smaller position than events already read, and a
        position cursor would skip it forever: the sequence-gap trap). An event waits for older
        transactions still in flight before it is read.
        """
        result = await session.execute(
            _READ_ALL, {"transaction": after.transaction, "position": after.position, "limit": limit}
        )
        return [(Cursor(int(tx), int(position)), decode(value)) for tx, position, value in result.all()]
