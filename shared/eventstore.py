"""Streams of events per aggregate, with optimistic concurrency.

Each aggregate is a stream; its events have versions 1, 2, 3, ... and `(stream_id, version)` is
unique, so of two writers that both read version 3 and append version 4, exactly one commits. The
other gets `ConcurrencyError` (a 409/412 over HTTP, or a reload-and-retry in a command handler).

The store never opens or commits a transaction: it works inside the caller's session (the unit of
work), so the events commit together with the outbox rows and any state the service keeps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import orjson
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import event_store
from shared.envelope import Envelope, decode, encode

_UNIQUE_STREAM_VERSION = "uq_event_store_stream_version"


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


def _to_json(envelope: Envelope) -> object:
    # Through the wire codec, so the stored envelope is exactly what consumers read from Kafka.
    return orjson.loads(encode(envelope))


def _from_json(value: object) -> Envelope:
    return decode(orjson.dumps(value))


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
        session: AsyncSession,
        stream_id: str,
        expected_version: int,
        envelopes: Sequence[Envelope],
    ) -> list[Envelope]:
        """Append `envelopes` as versions `expected_version + 1, + 2, ...` of `stream_id`.

        Returns the envelopes as stored (`aggregateid` = stream id, `aggregateversion` set). Raises
        `ConcurrencyError` when the stream is not at `expected_version`, or when a concurrent
        transaction wins the race for the same versions; then nothing is written and the caller's
        transaction is still usable (the insert runs in a SAVEPOINT).
        """
        if expected_version < 0:
            raise ValueError(f"expected_version must be >= 0, got {expected_version}")
        stamped = [
            replace(env, aggregateid=stream_id, aggregateversion=expected_version + i)
            for i, env in enumerate(envelopes, start=1)
        ]
        if not stamped:
            return []
        # Checked first so a stale or too-new version (a client's If-Match from the future would
        # otherwise leave a gap) fails without a write; the unique constraint below covers the race
        # between this read and the insert.
        actual = await self.current_version(session, stream_id)
        if actual != expected_version:
            raise ConcurrencyError(stream_id, expected_version, actual)
        rows = [
            {
                "stream_id": stream_id,
                "version": env.aggregateversion,
                "event_id": env.id,
                "type": env.type,
                "envelope": _to_json(env),
            }
            for env in stamped
        ]
        try:
            # A failed statement aborts a PostgreSQL transaction; the savepoint confines the failure
            # to this insert so the unit of work can still roll back cleanly or carry on.
            async with session.begin_nested():
                await session.execute(sa.insert(event_store), rows)
        except IntegrityError as exc:
            if _UNIQUE_STREAM_VERSION in str(exc.orig):
                raise ConcurrencyError(stream_id, expected_version) from exc
            raise
        return stamped

    async def load(self, session: AsyncSession, stream_id: str, after_version: int = 0) -> list[Envelope]:
        """The stream's events in version order (from `after_version + 1`, e.g. after a snapshot)."""
        result = await session.execute(
            sa.select(event_store.c.envelope)
            .where(event_store.c.stream_id == stream_id, event_store.c.version > after_version)
            .order_by(event_store.c.version)
        )
        return [_from_json(value) for value in result.scalars()]

    async def read_all(
        self, session: AsyncSession, after_position: int = 0, limit: int = 1000
    ) -> list[tuple[int, Envelope]]:
        """Every stream's events in `position` order, after `after_position`, at most `limit`.

        For rebuilds and audits of committed history. Not a live tail: positions are taken at insert
        time, so a transaction still in flight can later commit a position smaller than one already
        read. Live consumers read Kafka (fed by the outbox) instead.
        """
        result = await session.execute(
            sa.select(event_store.c.position, event_store.c.envelope)
            .where(event_store.c.position > after_position)
            .order_by(event_store.c.position)
            .limit(limit)
        )
        return [(int(position), _from_json(value)) for position, value in result.all()]
