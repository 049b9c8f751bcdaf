"""Housekeeping: purge what the platform no longer needs, once per service whatever its replicas.

Three tables grow with every message and command and are only needed for a while:

- `outbox` rows once published (`published_at` set): the relay never reads them again. Unpublished
  rows are never purged, however old: they are data not yet delivered.
- `processed_messages`: the consumers' dedupe by event id.
- `idempotency_keys`: stored answers to commands retried with the same `Idempotency-Key`.

Each is purged after its retention (`ServiceSettings.outbox_retention_days`,
`processed_retention_days`, `idempotency_retention_days`), every `housekeeping_interval_s`, by one
replica: a pass runs under a transaction-scoped PostgreSQL advisory lock (like the relay's lock, per
service), and a replica that does not get it skips the pass. Deletes go in chunks, one short
transaction each, so no long lock is held on a busy table.

Why a duplicate older than the processed-message retention is still harmless: the consumer's first
guard is its position, stored in `consumer_positions` in the same transaction as the effects and never
purged. A record below that position (Kafka redelivering old offsets after a rebalance, a restart or a
group-offset reset) is skipped before its event id is even looked at. The event id only matters for a
copy at a *newer* offset: the relay re-sending a batch whose acknowledgement it did not record, which it
does at its next pass, seconds after the original. That copy sits right behind the original in the
same partition (same key), so the consumer meets it as soon as it has applied the original, long before
the record of that event id is purged, unless the consumer lags by more than the retention (the lag
metric alerts long before). `shared/tests/test_housekeeping.py` shows both.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from dataclasses import dataclass
from typing import Final

import sqlalchemy as sa
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.settings import ServiceSettings

log = logging.getLogger(__name__)

CHUNK: Final = 10_000
PURGED = Counter("ee_retention_purged_rows", "Rows purged by housekeeping after their retention", ["table"])


@dataclass(frozen=True, slots=True)
class Purge:
    """One table's rule: delete rows whose `column` is older than the retention (and `extra` holds)."""

    table: str
    key: str  # the primary key column(s) used to pick a chunk
    column: str
    retention_setting: str

    def statement(self) -> sa.TextClause:
        return sa.text(
            f"DELETE FROM {self.table} WHERE ({self.key}) IN ("
            f"SELECT {self.key} FROM {self.table} "
            f"WHERE {self.column} < now() - make_interval(secs => :seconds) LIMIT :chunk)"
        )


PURGES: Final = (
    # published_at IS NULL never matches `<`: unpublished rows stay.
    Purge("outbox", "id", "published_at", "outbox_retention_days"),
    Purge("processed_messages", "consumer, event_id", "processed_at", "processed_retention_days"),
    Purge("idempotency_keys", "scope, key", "created_at", "idempotency_retention_days"),
)


def housekeeping_lock_key(service_name: str) -> int:
    """The advisory lock id of a service's housekeeping (a stable signed 64-bit hash of its name)."""
    digest = hashlib.blake2b(f"ee.housekeeping:{service_name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class Housekeeping:
    """A runtime part: `run()` purges every `housekeeping_interval_s` until `stop()`."""

    name = "housekeeping"

    def __init__(self, engine: AsyncEngine, settings: ServiceSettings, *, chunk: int = CHUNK) -> None:
        self._engine = engine
        self._settings = settings
        self._chunk = chunk
        self._lock_key = housekeeping_lock_key(settings.service_name)
        self._stopping = asyncio.Event()

    async def purge_once(self) -> dict[str, int] | None:
        """One pass over every table: rows deleted per table, or None when another replica purges."""
        purged: dict[str, int] = {}
        for purge in PURGES:
            seconds = float(getattr(self._settings, purge.retention_setting)) * 86_400
            total = 0
            while True:
                async with self._engine.begin() as conn:
                    locked = await conn.scalar(sa.select(sa.func.pg_try_advisory_xact_lock(self._lock_key)))
                    if not locked:
                        log.debug("housekeeping: another replica of %s purges", self._settings.service_name)
                        return None
                    result = await conn.execute(purge.statement(), {"seconds": seconds, "chunk": self._chunk})
                deleted = int(result.rowcount or 0)
                total += deleted
                if deleted < self._chunk:
                    break
            purged[purge.table] = total
            if total:
                PURGED.labels(purge.table).inc(total)
        if any(purged.values()):
            log.info("housekeeping of %s purged %s", self._settings.service_name, purged)
        return purged

    async def run(self) -> None:
        self._stopping.clear()
        while not self._stopping.is_set():
            try:
                await self.purge_once()
            except Exception as exc:  # the database is down: try again at the next interval
                log.warning("housekeeping of %s failed: %r", self._settings.service_name, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._settings.housekeeping_interval_s)

    async def stop(self) -> None:
        self._stopping.set()


__all__ = ["PURGES", "Housekeeping", "Purge", "housekeeping_lock_key"]
