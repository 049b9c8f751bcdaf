"""The Alembic scripts: they build exactly the tables the code declares, and 0004 turns the JSON columns
into JSON text without changing a value, both ways."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from alembic import command
from ranking_world import ranking_settings

from ranking_service.adapters.database import ALEMBIC_INI, drop_database, recreate_database
from ranking_service.adapters.repository import SqlProjectionStore
from shared.db import create_engine, plain_connection, session_factory
from shared.migrations import alembic_config

pytestmark = pytest.mark.infra

JSON_COLUMNS = ("document", "invitations", "breakdown", "programs", "categories", "noc_codes", "lowest_clb")
DOCUMENT = {"date_of_birth": "1994-05-01", "citizenship": "IN", "education": [{"level": "phd", "years": 5.5}]}
VALUES: dict[str, Any] = {
    "document": DOCUMENT,
    "invitations": {"a1b2": "invited"},
    "breakdown": {"core_human_capital": 460, "additional": 50},
    "programs": ["cec", "fsw"],
    "categories": ["stem"],
    "noc_codes": ["21231"],
    "lowest_clb": {"english": 9},
}
INSERT = """
    INSERT INTO ranking_profiles (profile_id, owner, version, document, status, nominated, invitations,
        in_pool, crs, breakdown, rules_version, programs, categories, noc_codes, lowest_clb, citizenship,
        basis_version, revision, submitted_at, updated_at)
    VALUES ('p-1', 'owner-1', 3, $1, 'in_pool', false, $2, true, 510, $3, '2025-03-25', $4, $5, $6, $7,
        'IN', 3, 1, '2026-01-02T03:04:05.123456Z', now())
"""


async def _column_types(url: str) -> dict[str, str]:
    conn = await plain_connection(url)
    try:
        rows = await conn.fetch(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = 'ranking_profiles' AND column_name = ANY($1::text[])",
            list(JSON_COLUMNS),
        )
    finally:
        await conn.close()
    return {row["column_name"]: row["data_type"] for row in rows}


async def _stored_values(url: str) -> dict[str, Any]:
    """The row's JSON values, decoded (asyncpg hands jsonb and text alike over as text)."""
    conn = await plain_connection(url)
    try:
        row = await conn.fetchrow(f"SELECT {', '.join(JSON_COLUMNS)} FROM ranking_profiles")
    finally:
        await conn.close()
    assert row is not None
    return {name: orjson.loads(row[name]) for name in JSON_COLUMNS}


async def test_json_columns_become_text_with_the_same_values_and_back() -> None:
    settings = ranking_settings("rankingmigrations")
    url = settings.database_url
    config = alembic_config(ALEMBIC_INI, url)
    await recreate_database(url)
    try:
        await asyncio.to_thread(command.upgrade, config, "0003")
        assert set((await _column_types(url)).values()) == {"jsonb"}
        conn = await plain_connection(url)
        try:
            await conn.execute(INSERT, *(orjson.dumps(VALUES[c]).decode() for c in JSON_COLUMNS))
        finally:
            await conn.close()

        await asyncio.to_thread(command.upgrade, config, "head")
        assert await _column_types(url) == dict.fromkeys(JSON_COLUMNS, "text")
        assert await _stored_values(url) == VALUES
        await asyncio.to_thread(command.check, config)  # raises when the models and the schema differ

        # The pool reads the converted row: its five JSON values come back as one array.
        engine = create_engine(settings)
        try:
            async with session_factory(engine)() as session:
                rows = [row async for row in SqlProjectionStore(session).pool_rows()]
        finally:
            await engine.dispose()
        [(pool_row, info)] = rows
        assert pool_row[0] == "p-1" and pool_row[1] == 510
        assert pool_row[3:] == (("cec", "fsw"), ("stem",))
        assert dict(info.breakdown) == VALUES["breakdown"] and info.noc_codes == ("21231",)

        await asyncio.to_thread(command.downgrade, config, "0003")
        assert set((await _column_types(url)).values()) == {"jsonb"}
        assert await _stored_values(url) == VALUES
    finally:
        await drop_database(url)
