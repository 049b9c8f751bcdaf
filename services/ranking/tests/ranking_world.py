"""A world for one test against the real Kafka and PostgreSQL (`make test` starts both).

A fresh database migrated by the service's own Alembic scripts, fresh topics under a prefix of its
own, and a business clock standing still at NOW. `world.service()` runs the real app (runtime,
consumer, relay, scheduler) in-process and gives an HTTP client to it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from ranking_app import SECRET, token
from ranking_factories import NOW, envelope

from ranking_service.adapters.database import drop_database, migrate, recreate_database
from ranking_service.api import RankingContext
from ranking_service.domain.view import PoolView
from ranking_service.main import build_app
from ranking_service.settings import RankingSettings
from shared import testing
from shared.clock import Clock
from shared.envelope import decode, encode
from shared.events.catalogue import RANKING_TOPIC, Event
from shared.events.registry import REGISTRY

Published = Event | tuple[Event, int]


@dataclass
class Service:
    """One running instance of the ranking app."""

    app: FastAPI
    http: httpx.AsyncClient

    @property
    def view(self) -> PoolView:
        ranking: RankingContext = self.app.state.ranking
        return ranking.view

    async def wait(self, condition: Callable[[PoolView], bool], what: str, timeout: float = 30.0) -> None:  # noqa: ASYNC109
        await testing.wait_until(
            lambda: self.view.loaded and condition(self.view),
            timeout=timeout,
            message=lambda: f"{what}; pool: {[(e.profile_id[-4:], e.crs) for e in self.view.pool]}",
        )

    async def wait_assigned(self, timeout: float = 30.0) -> None:  # noqa: ASYNC109
        """Until this instance's scorer holds partitions (its share of rescoring)."""
        runner = self.app.state.ranking_runner
        await testing.wait_until(
            lambda: runner.consumer is not None and bool(runner.consumer.positions()),
            timeout=timeout,
            message="the scorer was assigned no partition",
        )

    async def get(self, url: str, role: str = "ops", sub: str = "ops-1", **params: Any) -> Any:
        response = await self.http.get(url, params=params, headers=token(role, sub))
        assert response.status_code == 200, response.text
        return response.json()

    async def post(
        self, url: str, body: Any = None, role: str = "ops", headers: dict[str, str] | None = None
    ) -> httpx.Response:
        return await self.http.post(url, json=body, headers={**token(role), **(headers or {})})


@dataclass
class World:
    settings: RankingSettings
    clock: Clock = field(default_factory=lambda: Clock.frozen(NOW))

    async def publish(self, *items: Published) -> None:
        """Each event to its topic, keyed by profile, stamped as its producer would."""
        for item in items:
            event, version = item if isinstance(item, tuple) else (item, None)
            value = encode(envelope(event, version))
            await testing.produce(
                self.settings, self.settings.topic(event.topic), [value], key=event.key().encode()
            )

    @asynccontextmanager
    async def service(self, settings: RankingSettings | None = None) -> AsyncIterator[Service]:
        app = build_app(settings or self.settings, clock=self.clock)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://ranking") as http:
                service = Service(app, http)
                await testing.wait_until(lambda: service.view.loaded, timeout=30, message="pool not loaded")
                yield service

    async def ranking_events(self, at_least: int, quiet_s: float = 1.0) -> list[Event]:
        """Everything on the ranking topic: at least `at_least` events, then until quiet."""
        async with testing.KafkaReader(self.settings, self.settings.topic(RANKING_TOPIC)) as reader:
            await reader.read(at_least, timeout=30)
            records = await reader.drain(quiet_s)
        events = []
        for record in records:
            parsed = REGISTRY.parse(decode(record.value or b""))
            assert record.key == parsed.key().encode()
            events.append(parsed)
        return events


def ranking_settings(label: str, **overrides: Any) -> RankingSettings:
    values: dict[str, Any] = {
        "env": "test",
        "auth_secret": SECRET,
        "topic_prefix": testing.unique_topic_prefix(label),
        "db_suffix": testing.unique_db_suffix(label),
        "db_pool_size": 4,
        "rescore_interval_s": 0.2,
    }
    values.update(overrides)
    return RankingSettings(**values)


@asynccontextmanager
async def database(settings: RankingSettings) -> AsyncIterator[None]:
    try:
        await recreate_database(settings.database_url)
    except OSError as exc:
        pytest.fail(f"PostgreSQL does not answer ({exc}): start it with `make test`")
    try:
        await migrate(settings.database_url)
        yield
    finally:
        await drop_database(settings.database_url)


@asynccontextmanager
async def open_world(label: str = "ranking") -> AsyncIterator[World]:
    """Fresh topics and a fresh migrated database for one test; both removed afterwards."""
    settings = ranking_settings(label)
    try:
        await testing.ensure_topics(settings)
    except Exception as exc:
        pytest.fail(
            f"Kafka does not answer at {settings.kafka_bootstrap_servers} ({exc!r}): "
            "start it with `make test`"
        )
    try:
        async with database(settings):
            yield World(settings)
    finally:
        await testing.delete_topics(settings)
