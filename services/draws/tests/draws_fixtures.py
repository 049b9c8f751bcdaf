"""Fixtures of the draws service's tests, imported by each test module (`from draws_fixtures import *`).

Not a `conftest.py`: a second module named `conftest` would shadow the root one for mypy (which
other suites import types from).

Per test module (names from the root conftest): a fresh PostgreSQL database migrated with the service's
own Alembic scripts, a topic prefix, and the real ranking service on a real port with its pool filled by hand
(draws_ranking_peer.py).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from draws_ranking_peer import RankingPeer, Recorder, ranking_peer, serve
from sqlalchemy.ext.asyncio import AsyncEngine

from draws_service.adapters.categories import RulesCategories
from draws_service.adapters.ranking import HttpRanking, OpsToken
from draws_service.adapters.uow import DrawsUnitOfWork, draws_uow
from draws_service.application.handlers import DrawsService
from draws_service.settings import DrawsSettings
from shared import testing
from shared.clock import Clock
from shared.db import create_engine, session_factory
from shared.migrations import upgrade_to_head
from shared.testing import SettingsFactory
from shared.uow import UnitOfWork

__all__ = [
    "clean_db",
    "clock",
    "draws_database",
    "draws_settings",
    "draws_topics",
    "engine",
    "http",
    "platform_uow",
    "pool",
    "ranking",
    "service",
    "uow_factory",
]

ALEMBIC_INI = Path(__file__).resolve().parents[1] / "alembic.ini"
NOW = datetime(2026, 9, 15, 14, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def draws_settings(make_settings: SettingsFactory) -> DrawsSettings:
    """This module's settings: its own database suffix and topic prefix (root conftest)."""
    return make_settings(DrawsSettings, auth_secret="draws-tests-" + uuid.uuid4().hex * 2)


@pytest.fixture(scope="module")
async def draws_database(draws_settings: DrawsSettings) -> AsyncIterator[str]:
    """A fresh database migrated by the service's own Alembic scripts; dropped afterwards."""
    url = draws_settings.database_url
    try:
        await testing.create_database(url)
    except OSError as exc:
        pytest.fail(
            f"PostgreSQL does not answer ({exc}): "
            "start it with `make test` or `deploy/local/postgres.sh start`"
        )
    try:
        await upgrade_to_head(ALEMBIC_INI, url)
        yield url
    finally:
        await testing.drop_database(url)


@pytest.fixture(scope="module")
async def engine(draws_settings: DrawsSettings, draws_database: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(draws_settings)
    yield engine
    await engine.dispose()


@pytest.fixture
async def clean_db(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.exec_driver_sql("TRUNCATE invitations, rounds, outbox, processed_messages")


@pytest.fixture(scope="module")
async def ranking(draws_settings: DrawsSettings) -> AsyncIterator[tuple[RankingPeer, str]]:
    """The real ranking service on a real port (its pool filled by hand; see draws_ranking_peer)."""
    peer = ranking_peer(draws_settings.auth_secret, Clock.frozen(NOW))
    server, task, url = await serve(Recorder(peer))
    yield peer, url
    server.should_exit = True
    await task


@pytest.fixture
def pool(ranking: tuple[RankingPeer, str]) -> RankingPeer:
    """The ranking pool, emptied for this test."""
    ranking[0].reset()
    return ranking[0]


@pytest.fixture
def clock() -> Clock:
    return Clock.frozen(NOW)


@pytest.fixture
def platform_uow(
    engine: AsyncEngine, draws_settings: DrawsSettings, clock: Clock
) -> Callable[[], UnitOfWork]:
    factory = session_factory(engine)
    return lambda: UnitOfWork(factory, draws_settings, clock)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


@pytest.fixture
def uow_factory(
    platform_uow: Callable[[], UnitOfWork],
) -> Callable[[], AbstractAsyncContextManager[DrawsUnitOfWork]]:
    return draws_uow(platform_uow)


@pytest.fixture
def service(
    clean_db: None,
    pool: RankingPeer,
    ranking: tuple[RankingPeer, str],
    uow_factory: Callable[[], AbstractAsyncContextManager[DrawsUnitOfWork]],
    http: httpx.AsyncClient,
    draws_settings: DrawsSettings,
    clock: Clock,
) -> DrawsService:
    client = HttpRanking(http, ranking[1], OpsToken(draws_settings.auth_secret))
    return DrawsService(uow=uow_factory, ranking=client, categories=RulesCategories(), clock=clock)


# -- pool data ------------------------------------------------------------------------------------


def candidate(
    crs: int,
    *,
    minutes: int = 0,
    programs: Iterable[str] = ("fsw",),
    categories: Iterable[str] = (),
    n: int | None = None,
    citizenship: str = "IN",
) -> dict[str, Any]:
    """A candidate as the ranking selection returns it (JSON)."""
    return {
        "profile_id": str(uuid.uuid4()) if n is None else str(uuid.UUID(int=n)),
        "owner": "partner-7",
        "crs": crs,
        "submitted_at": (datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes)).isoformat(),
        "programs": list(programs),
        "categories": list(categories),
        "citizenship": citizenship,
    }


@pytest.fixture(scope="module")
async def draws_topics(draws_settings: DrawsSettings) -> AsyncIterator[DrawsSettings]:
    """The event topics (and `.dlq` twins) under this module's prefix; deleted afterwards."""
    try:
        await testing.ensure_topics(draws_settings)
    except Exception as exc:
        pytest.fail(
            f"Kafka does not answer at {draws_settings.kafka_bootstrap_servers} ({exc!r}): "
            "start it with `make test` or `deploy/local/kafka.sh start`"
        )
    yield draws_settings
    await testing.delete_topics(draws_settings)
