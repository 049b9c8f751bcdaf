"""Creating, migrating and dropping a ranking database (the rebuild's fresh projection, and tests)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

import asyncpg
from sqlalchemy.engine import make_url

from shared.migrations import upgrade_to_head

ALEMBIC_INI: Final = Path(__file__).resolve().parents[2] / "alembic.ini"
_SAFE_NAME: Final = re.compile(r"^[a-z_][a-z0-9_]*$")


def _maintenance(database_url: str) -> tuple[str, str]:
    url = make_url(database_url)
    name = url.database or ""
    if not _SAFE_NAME.match(name):
        raise ValueError(f"refusing to create or drop a database named {name!r}")
    dsn = url.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    return dsn, name


async def recreate_database(database_url: str) -> None:
    """An empty database named by `database_url` (a leftover of the same name is dropped first)."""
    dsn, name = _maintenance(database_url)
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def drop_database(database_url: str) -> None:
    dsn, name = _maintenance(database_url)
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def migrate(database_url: str) -> None:
    """Run the service's Alembic migrations up to head."""
    await upgrade_to_head(ALEMBIC_INI, database_url)
