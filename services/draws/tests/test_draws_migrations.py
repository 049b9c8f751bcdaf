"""The Alembic scripts: they build exactly the tables the code declares, and they go down cleanly."""

from __future__ import annotations

import asyncio

import pytest
from alembic import command
from draws_fixtures import *  # noqa: F403  (the fixtures)
from draws_fixtures import ALEMBIC_INI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from draws_service.settings import DrawsSettings
from shared.migrations import alembic_config

pytestmark = pytest.mark.infra


async def _tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))
        return {row.tablename for row in rows}


async def test_migrations_match_the_declared_tables_and_downgrade(
    draws_settings: DrawsSettings, engine: AsyncEngine
) -> None:
    config = alembic_config(ALEMBIC_INI, draws_settings.database_url)
    await asyncio.to_thread(command.check, config)  # raises when the models and the schema differ
    platform = {"event_store", "outbox", "processed_messages", "consumer_positions", "idempotency_keys"}
    assert {"rounds", "invitations", *platform} <= await _tables(engine)
    await engine.dispose()
    await asyncio.to_thread(command.downgrade, config, "base")
    assert await _tables(engine) == {"alembic_version_draws"}
    await asyncio.to_thread(command.upgrade, config, "head")
    assert {"rounds", "invitations", *platform} <= await _tables(engine)
