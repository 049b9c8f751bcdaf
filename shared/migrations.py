"""Alembic, written once for the four services.

Each service's `migrations/env.py` is::

    from profile_service.adapters.tables import metadata
    from profile_service.settings import ProfileSettings
    from shared.migrations import run_migrations

    run_migrations(ProfileSettings, metadata)

and code that needs a migrated database (tests, the ranking rebuild) calls `await
upgrade_to_head(ALEMBIC_INI, database_url)`, or `upgrade_on_connection(connection, ALEMBIC_INI)`
inside `AsyncConnection.run_sync` to migrate in its own transaction.

It also holds the bodies of the platform migrations every service carries (its own revision file calls
them, e.g. `event_store_commit_order_upgrade(op)`). Those functions are frozen: an applied migration
must keep doing what it did, so a later change to the platform schema is a new function called by a
new revision, never an edit of one of these.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa
from alembic import command, context
from alembic.config import Config
from sqlalchemy import Connection, MetaData
from sqlalchemy.ext.asyncio import create_async_engine

from shared.db import platform_metadata
from shared.settings import ServiceSettings


def run_migrations(settings_cls: type[ServiceSettings], target_metadata: MetaData) -> None:
    """Run the migrations Alembic asked for; call it from a service's `env.py`.

    `target_metadata` is the service's own tables (the platform tables of `shared.db` are added, so
    `alembic check` and autogenerate see every table). The version table is `alembic.ini`'s
    `version_table` (each service has its own). The database:
    - offline mode (`alembic upgrade head --sql`): SQL for the URL, no connection;
    - `config.attributes["connection"]` set (a sync `Connection`, e.g. inside
      `AsyncConnection.run_sync`): migrated on it, in the caller's transaction and event loop;
    - otherwise an async engine on the URL, in a loop of its own (so not from a running loop: use
      `upgrade_to_head`, which runs Alembic in a thread).
    The URL: `-x url=...` or `config.attributes["url"]`, else `settings_cls().database_url`.
    """
    config = context.config
    version_table = config.get_main_option("version_table") or "alembic_version"
    target = [platform_metadata, target_metadata]

    def database_url() -> str:
        given = context.get_x_argument(as_dictionary=True).get("url") or config.attributes.get("url")
        return str(given or settings_cls().database_url)

    def migrate(connection: Connection) -> None:
        context.configure(connection=connection, target_metadata=target, version_table=version_table)
        with context.begin_transaction():
            context.run_migrations()

    async def run_online() -> None:
        engine = create_async_engine(database_url())
        try:
            async with engine.connect() as conn:
                await conn.run_sync(migrate)
                await conn.commit()
        finally:
            await engine.dispose()

    if context.is_offline_mode():
        context.configure(url=database_url(), target_metadata=target, version_table=version_table)
        with context.begin_transaction():
            context.run_migrations()
    elif config.attributes.get("connection") is not None:
        migrate(config.attributes["connection"])
    else:
        asyncio.run(run_online())


def alembic_config(alembic_ini: str | Path, database_url: str | None = None) -> Config:
    """The service's Alembic configuration, aimed at `database_url` (else its settings' URL)."""
    config = Config(str(alembic_ini))
    if database_url is not None:
        config.attributes["url"] = database_url
    return config


async def upgrade_to_head(alembic_ini: str | Path, database_url: str) -> None:
    """Migrate the database `database_url` names up to head (in a thread: Alembic runs its own loop)."""
    await asyncio.to_thread(command.upgrade, alembic_config(alembic_ini, database_url), "head")


def upgrade_on_connection(connection: Connection, alembic_ini: str | Path) -> None:
    """Migrate up to head on the caller's connection (`await conn.run_sync(upgrade_on_connection, ini)`)."""
    config = alembic_config(alembic_ini)
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


class _MigrationOperations(Protocol):
    """What the platform migration bodies need from `alembic.op`."""

    def get_bind(self) -> Connection: ...

    def drop_index(self, index_name: str, table_name: str | None = None, **kw: Any) -> None: ...

    def drop_column(self, table_name: str, column_name: str, **kw: Any) -> None: ...


def event_store_commit_order_upgrade(op: _MigrationOperations) -> None:
    """Add `event_store.transaction_id` and its index `ix_event_store_commit_order`, so that
    `EventStore.read_all` reads in commit order without the sequence-gap trap; for databases whose
    platform tables were created before the column. Idempotent: a fresh database already has both
    from its first migration. Frozen (see the module docstring)."""
    bind = op.get_bind()
    bind.execute(
        sa.text(
            "ALTER TABLE event_store ADD COLUMN IF NOT EXISTS transaction_id xid8 NOT NULL "
            "DEFAULT pg_current_xact_id()"
        )
    )
    bind.execute(
        sa.text(
            "CREATE INDEX IF NOT EXISTS ix_event_store_commit_order ON event_store (transaction_id, position)"
        )
    )


def event_store_commit_order_downgrade(op: _MigrationOperations) -> None:
    """Undo `event_store_commit_order_upgrade`: drop the index, then the column. Frozen."""
    op.drop_index("ix_event_store_commit_order", table_name="event_store")
    op.drop_column("event_store", "transaction_id")
