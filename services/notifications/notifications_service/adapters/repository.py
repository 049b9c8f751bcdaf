"""SQL of the service: subscriptions (rows <-> domain, secrets sealed), the fan-out's writes, the
dispatcher's query for due deliveries, outcomes, the delivery log and replays."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import asyncpg
import orjson
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from notifications_service.adapters.secrets import SecretBox
from notifications_service.adapters.tables import (
    deliveries,
    delivery_attempts,
    events,
    nominations,
    subscriptions,
)
from notifications_service.application.ports import Target
from notifications_service.domain.subscription import Spec, Subscriber, Subscription

WEBHOOK_NAMESPACE = uuid.UUID("6b1f3c0e-6f7e-4c55-9a55-3f0c1f2b7d10")
Row = dict[str, Any]


def webhook_id(subscription_id: str, event_id: str) -> str:
    """The stable `webhook-id` of an event's delivery to a subscription (the same on every retry and
    replay, so receivers dedupe)."""
    return "msg_" + uuid.uuid5(WEBHOOK_NAMESPACE, f"{subscription_id}/{event_id}").hex


def pending_delivery_row(subscription_id: str, event_id: str, ordering_key: str, now: Any) -> dict[str, Any]:
    """A new `deliveries` row: the event is due to the subscription now, not yet attempted."""
    return {
        "id": webhook_id(subscription_id, event_id),
        "subscription_id": subscription_id,
        "event_id": event_id,
        "ordering_key": ordering_key,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }


# -- subscriptions --------------------------------------------------------------------------------


class SubscriptionRepository:
    def __init__(self, session: AsyncSession, box: SecretBox) -> None:
        self.session = session
        self.box = box

    async def get(self, subscription_id: str, *, lock: bool = False) -> Subscription | None:
        query = sa.select(subscriptions).where(subscriptions.c.id == subscription_id)
        if lock:
            query = query.with_for_update()
        row = (await self.session.execute(query)).mappings().first()
        if row is None or row["deleted"]:
            return None
        return self._domain(row)

    async def list(self, subscriber: Subscriber | None) -> list[Subscription]:
        query = sa.select(subscriptions).where(subscriptions.c.deleted.is_(False))
        if subscriber is not None:
            query = query.where(
                subscriptions.c.subscriber == subscriber.sub, subscriptions.c.role == subscriber.role
            )
        rows = (await self.session.execute(query.order_by(subscriptions.c.created_at))).mappings()
        return [self._domain(row) for row in rows]

    async def add(self, subscription: Subscription) -> None:
        await self.session.execute(sa.insert(subscriptions).values(**self._row(subscription)))

    async def save(self, subscription: Subscription) -> None:
        row = self._row(subscription)
        await self.session.execute(
            sa.update(subscriptions).where(subscriptions.c.id == subscription.id).values(**row)
        )

    def _row(self, s: Subscription) -> Row:
        return {
            "id": s.id,
            "subscriber": s.subscriber.sub,
            "role": s.subscriber.role,
            "province": s.subscriber.province,
            "url": s.spec.url,
            "event_types": list(s.spec.event_types),
            "description": s.spec.description,
            "candidates": list(s.spec.candidates),
            "secret": self.box.seal(s.secret, s.id),
            "previous_secret": self.box.seal(s.previous_secret, s.id) if s.previous_secret else None,
            "previous_valid_until": s.previous_valid_until,
            "enabled": s.enabled,
            "disabled_reason": s.disabled_reason,
            "failing_since": s.failing_since,
            "deleted": s.deleted,
            "version": s.version,
            "created_at": s.created_at,
            "updated_at": s.updated_at,
        }

    def _domain(self, row: Any) -> Subscription:
        previous = row["previous_secret"]
        return Subscription(
            id=row["id"],
            subscriber=Subscriber(row["subscriber"], row["role"], row["province"]),
            spec=Spec(row["url"], tuple(row["event_types"]), row["description"], tuple(row["candidates"])),
            secret=self.box.open(row["secret"], row["id"]),
            previous_secret=self.box.open(previous, row["id"]) if previous else None,
            previous_valid_until=row["previous_valid_until"],
            enabled=row["enabled"],
            disabled_reason=row["disabled_reason"],
            failing_since=row["failing_since"],
            deleted=row["deleted"],
            version=row["version"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )


# -- the fan-out ----------------------------------------------------------------------------------


# The fan-out's three statements of every batch (`enabled_targets`, `nominating_provinces`,
# `record_events`) go to asyncpg on the unit of work's connection, without SQLAlchemy's statement
# path: with the consumer's own claim and positions there too, a batch opens no ORM session at all.
_ENABLED_TARGETS = (
    "SELECT id, subscriber, role, province, event_types::text, candidates::text FROM subscriptions "
    "WHERE enabled AND NOT deleted"
)
_NOMINATING_PROVINCES = "SELECT profile_id, province FROM nominations WHERE profile_id = ANY($1::text[])"


async def enabled_targets(connection: asyncpg.Connection) -> list[Target]:
    return [
        Target(r[0], r[1], r[2], r[3], tuple(orjson.loads(r[4])), frozenset(orjson.loads(r[5])))
        for r in await connection.fetch(_ENABLED_TARGETS)
    ]


async def nominating_provinces(
    connection: asyncpg.Connection, profile_ids: Iterable[str]
) -> dict[str, str | None]:
    ids = list(set(profile_ids))
    if not ids:
        return {}
    return {r[0]: r[1] for r in await connection.fetch(_NOMINATING_PROVINCES, ids)}


async def save_nominations(session: AsyncSession, changes: dict[str, str | None], now: datetime) -> None:
    if not changes:
        return
    statement = insert(nominations).values(
        [{"profile_id": pid, "province": province, "as_of": now} for pid, province in changes.items()]
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[nominations.c.profile_id],
            set_={"province": statement.excluded.province, "as_of": statement.excluded.as_of},
        )
    )


async def forget_person(session: AsyncSession, profile_id: str, keep_event_id: str) -> None:
    """Drop a person's events, their deliveries (webhook payloads) and attempts, and the nomination
    standing, except the PersonalDataErased event `keep_event_id` and its deliveries."""
    gone = sa.select(events.c.event_id).where(
        events.c.ordering_key == profile_id, events.c.event_id != keep_event_id
    )
    gone_deliveries = sa.select(deliveries.c.id).where(deliveries.c.event_id.in_(gone))
    await session.execute(
        sa.delete(delivery_attempts).where(delivery_attempts.c.delivery_id.in_(gone_deliveries))
    )
    await session.execute(sa.delete(deliveries).where(deliveries.c.event_id.in_(gone)))
    await session.execute(sa.delete(events).where(events.c.event_id.in_(gone)))
    await session.execute(sa.delete(nominations).where(nominations.c.profile_id == profile_id))


# Every event of the five topics is logged, so this runs for every batch the fan-out consumes: one fixed
# statement over arrays (compiled once), not a multi-row INSERT compiled anew for each batch size.
_RECORD_EVENTS = """
    INSERT INTO events (event_id, type, time, ordering_key, envelope)
    SELECT u.event_id, u.type, u.time, u.ordering_key, CAST(u.envelope AS jsonb)
    FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::text[])
         WITH ORDINALITY AS u(event_id, type, time, ordering_key, envelope, n)
    ORDER BY u.n
    ON CONFLICT DO NOTHING
"""


async def record_events(connection: asyncpg.Connection, rows: Sequence[Row]) -> None:
    """Log the events (`ports.Deliveries.record_events`), positions in the order given."""
    if rows:
        await connection.execute(
            _RECORD_EVENTS,
            [row["event_id"] for row in rows],
            [row["type"] for row in rows],
            [row["time"] for row in rows],
            [row["ordering_key"] for row in rows],
            [row["envelope"].decode() for row in rows],
        )


# The fan-out's other per-batch write, the same way: a multi-row INSERT was compiled by SQLAlchemy for
# every batch (7.4% of the service's CPU samples during a burst of invitations, py-spy). The rows go
# in the order given, so `seq` keeps each candidate's deliveries in event order. A replay's rows go
# through the same INSERT, turning existing ones of the same pairs back to pending.
_INSERT_DELIVERIES = """
        INSERT INTO deliveries (id, subscription_id, event_id, ordering_key, status, attempts,
                                next_attempt_at, created_at)
        SELECT u.id, u.subscription_id, u.event_id, u.ordering_key, u.status, u.attempts,
               u.next_attempt_at, u.created_at
        FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int[],
                    $7::timestamptz[], $8::timestamptz[])
             WITH ORDINALITY AS u(id, subscription_id, event_id, ordering_key, status, attempts,
                                  next_attempt_at, created_at, n)
        ORDER BY u.n
"""
_ADD_DELIVERIES = f"""
    WITH added AS ({_INSERT_DELIVERIES}
        ON CONFLICT DO NOTHING
        RETURNING 1
    )
    SELECT count(*) FROM added
"""
_QUEUE_DELIVERIES = f"""
    WITH queued AS ({_INSERT_DELIVERIES}
        ON CONFLICT ON CONSTRAINT uq_deliveries_subscription_event
        DO UPDATE SET status = 'pending', next_attempt_at = $9
        RETURNING 1
    )
    SELECT count(*) FROM queued
"""
_DELIVERY_COLUMNS = (
    "id", "subscription_id", "event_id", "ordering_key", "status", "attempts",
    "next_attempt_at", "created_at",
)  # fmt: skip


def _delivery_arrays(rows: Sequence[Row]) -> list[list[Any]]:
    """The rows as `_INSERT_DELIVERIES`' arrays, column by column."""
    return [[row[name] for row in rows] for name in _DELIVERY_COLUMNS]


ANALYZE_AFTER_ROWS = 20_000
"""Deliveries added by this process after which it refreshes the table's statistics itself."""
_added_since_analyze = 0


async def add_deliveries(connection: asyncpg.Connection, rows: Sequence[Row]) -> int:
    """Insert new deliveries (an existing (subscription, event) pair is left alone); how many.

    After a round's fan-out (10,000 invitations to 10 subscribers: 100,000 pending rows in seconds)
    the planner goes on believing the statistics of the table as autovacuum last saw it until it
    analyzes it again, up to a minute or more later. With statistics of a quiet table (no pending
    rows) and 97,000 pending, the dispatcher's query checked "first in line" by walking every pending
    row for each of its 64 rows: 1.1 s a pass instead of ~1 ms (and 361 ms on a fresh table never
    analyzed). Bursts were seen going out at 23 and 153 deliveries/s, against 460-540 otherwise. So
    every `ANALYZE_AFTER_ROWS` rows it adds, this process analyzes the table in the same transaction
    (it samples at most 30,000 rows; its lock blocks no reader or writer, only another ANALYZE or
    VACUUM of the table).
    """
    global _added_since_analyze
    if not rows:
        return 0
    added = int(await connection.fetchval(_ADD_DELIVERIES, *_delivery_arrays(rows)))
    _added_since_analyze += added
    if _added_since_analyze >= ANALYZE_AFTER_ROWS:
        _added_since_analyze = 0
        await connection.execute("ANALYZE deliveries")
    return added


# -- the dispatcher ---------------------------------------------------------------------------------

_DUE_HEADS = sa.text(
    """
    SELECT d.id, d.seq, d.subscription_id, d.event_id, d.attempts, d.ordering_key,
           s.url, s.role, s.secret, s.previous_secret, s.previous_valid_until, s.failing_since,
           e.envelope
    FROM deliveries d
    JOIN subscriptions s ON s.id = d.subscription_id AND s.enabled AND NOT s.deleted
    JOIN events e ON e.event_id = d.event_id
    WHERE d.status = 'pending' AND d.next_attempt_at <= :now
      AND NOT (d.id = ANY(CAST(:skip AS text[])))
      AND NOT EXISTS (
          SELECT 1 FROM deliveries p
          WHERE p.status = 'pending' AND p.subscription_id = d.subscription_id
            AND p.ordering_key = d.ordering_key AND p.seq < d.seq)
    ORDER BY d.seq
    LIMIT :limit
    """
)


async def due_heads(conn: AsyncConnection, now: datetime, limit: int, skip: Sequence[str] = ()) -> list[Row]:
    """Pending deliveries that are due and first in line for their (subscription, candidate), but
    for those in `skip` (in flight)."""
    result = await conn.execute(_DUE_HEADS, {"now": now, "limit": limit, "skip": list(skip)})
    rows = [dict(row) for row in result.mappings()]
    await conn.commit()
    return rows


async def next_due_at(conn: AsyncConnection) -> datetime | None:
    result = await conn.execute(
        sa.select(sa.func.min(deliveries.c.next_attempt_at)).where(deliveries.c.status == "pending")
    )
    value = result.scalar()
    await conn.commit()
    return value


_UPDATE_DELIVERIES = sa.text(
    """
    UPDATE deliveries AS d
    SET status = u.status, attempts = u.attempts, next_attempt_at = u.next_at, last_attempt_at = u.at,
        delivered_at = u.delivered_at, last_status_code = u.code, last_error = u.error,
        last_latency_ms = u.latency
    FROM unnest(CAST(:ids AS text[]), CAST(:statuses AS text[]), CAST(:attempts AS int[]),
                CAST(:next_ats AS timestamptz[]), CAST(:ats AS timestamptz[]),
                CAST(:delivered_ats AS timestamptz[]), CAST(:codes AS int[]), CAST(:errors AS text[]),
                CAST(:latencies AS float8[]))
         AS u(id, status, attempts, next_at, at, delivered_at, code, error, latency)
    WHERE d.id = u.id
    """
)
_OUTCOME_COLUMNS = {
    "ids": "b_id", "statuses": "b_status", "attempts": "b_attempts", "next_ats": "b_next", "ats": "b_at",
    "delivered_ats": "b_delivered", "codes": "b_code", "errors": "b_error", "latencies": "b_latency",
}  # fmt: skip


async def update_deliveries(session: AsyncSession, rows: Sequence[Row]) -> None:
    """Write many outcomes in one statement (arrays unnested)."""
    if rows:
        params = {name: [row[key] for row in rows] for name, key in _OUTCOME_COLUMNS.items()}
        await session.execute(_UPDATE_DELIVERIES, params)


async def add_attempts(session: AsyncSession, rows: Sequence[Row]) -> None:
    if rows:
        await session.execute(sa.insert(delivery_attempts), list(rows))


# -- the log, retries and replays -------------------------------------------------------------------


async def delivery_log(
    session: AsyncSession, subscription_id: str, status: str | None, limit: int, before: int | None
) -> list[Row]:
    c = deliveries.c
    query = sa.select(deliveries, events.c.type).join(events, events.c.event_id == c.event_id)
    query = query.where(c.subscription_id == subscription_id)
    if status is not None:
        query = query.where(c.status == status)
    if before is not None:
        query = query.where(c.seq < before)
    rows = [dict(r) for r in (await session.execute(query.order_by(c.seq.desc()).limit(limit))).mappings()]
    if rows:
        attempts = await session.execute(
            sa.select(delivery_attempts)
            .where(delivery_attempts.c.delivery_id.in_([r["id"] for r in rows]))
            .order_by(delivery_attempts.c.delivery_id, delivery_attempts.c.attempt)
        )
        by_delivery: dict[str, list[Row]] = {}
        for attempt in attempts.mappings():
            by_delivery.setdefault(attempt["delivery_id"], []).append(dict(attempt))
        for row in rows:
            row["attempt_log"] = by_delivery.get(row["id"], [])
    return rows


async def delivery_row(session: AsyncSession, delivery_id: str) -> Row | None:
    row = (
        (await session.execute(sa.select(deliveries).where(deliveries.c.id == delivery_id)))
        .mappings()
        .first()
    )
    return dict(row) if row is not None else None


async def requeue(session: AsyncSession, delivery_ids: Sequence[str], now: datetime) -> None:
    if delivery_ids:
        await session.execute(
            sa.update(deliveries)
            .where(deliveries.c.id.in_(list(delivery_ids)))
            .values(status="pending", next_attempt_at=now)
        )


async def events_between(
    session: AsyncSession, since: datetime, until: datetime, after_position: int, limit: int
) -> list[Row]:
    c = events.c
    rows = await session.execute(
        sa.select(c.position, c.event_id, c.type, c.ordering_key, c.envelope)
        .where(c.time >= since, c.time < until, c.position > after_position)
        .order_by(c.position)
        .limit(limit)
    )
    return [dict(r) for r in rows.mappings()]


async def upsert_pending(connection: asyncpg.Connection, rows: Sequence[Row], now: datetime) -> int:
    """Replay: new deliveries, and existing ones of the same pairs back to pending (same ids)."""
    if not rows:
        return 0
    return int(await connection.fetchval(_QUEUE_DELIVERIES, *_delivery_arrays(rows), now))
