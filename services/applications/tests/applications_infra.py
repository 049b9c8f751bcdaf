"""Real PostgreSQL for the applications service's tests: a fresh database per module, migrated with the
service's own Alembic migrations."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from applications_service.settings import ApplicationsSettings
from shared.clock import Clock
from shared.db import create_engine, session_factory
from shared.migrations import upgrade_on_connection
from shared.testing import create_database, drop_database
from shared.uow import UnitOfWork

ALEMBIC_INI = Path(__file__).resolve().parents[1] / "alembic.ini"


async def migrate(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(upgrade_on_connection, ALEMBIC_INI)


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
