"""Real PostgreSQL for the applications service's tests: a fresh database per module, migrated with the
service's own Alembic migrations."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from applications_service.settings import ApplicationsSettings
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.clock import Clock
from shared.db import create_engine, session_factory
from shared.testing import create_database, drop_database
from shared.uow import UnitOfWork

ALEMBIC_INI = Path(__file__).resolve().parents[1] / "alembic.ini"


def _upgrade(connection: Connection) -> None:
    config = Config(str(ALEMBIC_INI))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def migrate(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade)


@dataclass
class AppsDatabase:
    settings: ApplicationsSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]

    def uow_factory(self, clock: Clock) -> Callable[[], UnitOfWork]:
        return lambda: UnitOfWork(self.sessions, self.settings, clock)


@asynccontextmanager
async def fresh_apps_database(settings: ApplicationsSettings) -> AsyncIterator[AppsDatabase]:
    await create_database(settings.database_url)
    engine = create_engine(settings)
    try:
        await migrate(engine)
        yield AppsDatabase(settings, engine, session_factory(engine))
    finally:
        await engine.dispose()
        await drop_database(settings.database_url)
