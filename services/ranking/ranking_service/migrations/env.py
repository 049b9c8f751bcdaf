"""Alembic environment of the ranking service: async engine on the service settings' URL."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from ranking_service.adapters.tables import metadata
from ranking_service.settings import RankingSettings
from shared.db import platform_metadata

config = context.config
VERSION_TABLE = config.get_main_option("version_table") or "alembic_version"
TARGET = [platform_metadata, metadata]


def database_url() -> str:
    """An URL given to Alembic (`-x url=...` or `config.attributes['url']`) wins over the settings."""
    return context.get_x_argument(as_dictionary=True).get("url") or config.attributes.get(
        "url", RankingSettings().database_url
    )


def run_offline() -> None:
    context.configure(url=database_url(), target_metadata=TARGET, version_table=VERSION_TABLE)
    with context.begin_transaction():
        context.run_migrations()


def _migrate(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=TARGET, version_table=VERSION_TABLE)
    with context.begin_transaction():
        context.run_migrations()


async def run_online() -> None:
    engine = create_async_engine(database_url())
    try:
        async with engine.connect() as conn:
            await conn.run_sync(_migrate)
            await conn.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    run_offline()
elif config.attributes.get("connection") is not None:
    # A caller (a test, a tool) already holds a connection: migrate on it, inside its event loop.
    _migrate(config.attributes["connection"])
else:
    asyncio.run(run_online())
