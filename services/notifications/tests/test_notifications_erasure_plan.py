"""Erasing a person finds their events and deliveries by index (migration 0002), not by reading the
whole event log inside the fan-out's transaction; and the migrations build the declared tables."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from alembic import command
from notifications_harness import ALEMBIC_INI, fresh_database
from sqlalchemy import event

from notifications_service.adapters.repository import forget_person
from notifications_service.settings import NotificationsSettings
from shared.db import create_engine, plain_connection, session_factory
from shared.migrations import alembic_config

pytestmark = pytest.mark.infra


async def test_forgetting_a_person_reads_events_and_deliveries_by_index(
    settings: NotificationsSettings,
) -> None:
    async with fresh_database(settings):
        await asyncio.to_thread(command.check, alembic_config(ALEMBIC_INI, settings.database_url))
        statements = await _statements_of_forget_person(settings)
        assert len(statements) == 4  # attempts, deliveries, events, nominations
        conn = await plain_connection(settings.database_url)
        try:
            # No sequential scans unless nothing else can answer: a tiny table would get one anyway.
            await conn.execute("SET enable_seqscan = off")
            plans = [await conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args) for sql, args in statements]
        finally:
            await conn.close()
    reads = [node for plan in plans for node in _nodes(orjson.loads(plan)[0]["Plan"]) if _reads(node)]
    assert len(reads) >= 4, plans  # events in three statements, deliveries in two
    for node in reads:
        # A lookup by key has an index condition; a scan of the table, or of a whole index with a
        # filter (the planner's other way when scans are off), has none.
        assert "Index Cond" in node or "Recheck Cond" in node, orjson.dumps(node, option=orjson.OPT_INDENT_2)


LOGS = ("events", "deliveries")


def _reads(node: dict[str, Any]) -> bool:
    """A scan of the event log or the deliveries (not the DELETE itself, which names its table too)."""
    return node.get("Relation Name") in LOGS and node["Node Type"] != "ModifyTable"


def _nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
    return [node, *(found for child in node.get("Plans", ()) for found in _nodes(child))]


async def _statements_of_forget_person(settings: NotificationsSettings) -> list[tuple[str, Any]]:
    """The statements `forget_person` sends, as sent (rolled back: nothing to erase here anyway)."""
    engine = create_engine(settings)
    sent: list[tuple[str, Any]] = []

    def remember(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("DELETE"):
            sent.append((statement, tuple(parameters or ())))

    event.listen(engine.sync_engine, "before_cursor_execute", remember)
    try:
        async with session_factory(engine)() as session:
            await forget_person(session, "profile-erased", keep_event_id="event-kept")
            await session.rollback()
    finally:
        await engine.dispose()
    return sent
