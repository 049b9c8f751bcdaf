"""A stand-in for `shared.runtime.ServiceRuntime` for testing the web layer in-process.

Not a mock of PostgreSQL or Kafka: the tests exercise `shared.web` itself, and this object only
lets them say whether the runtime reports its dependencies as reachable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
from fastapi import APIRouter, FastAPI

from shared.clock import Clock
from shared.web import create_service_app

SECRET = "test-secret-0123456789-abcdefghijklmnop"
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@dataclass
class FakeSettings:
    env: str = "test"
    auth_secret: str = SECRET
    service_name: str = "testsvc"
    requests_in_progress: int = 4
    requests_waiting_max: int = 1_000

    @property
    def is_production(self) -> bool:
        return self.env == "production"


@dataclass
class FakeRuntime:
    settings: FakeSettings = field(default_factory=FakeSettings)
    clock: Clock = field(default_factory=lambda: Clock.frozen(T0))
    db_up: bool = True
    kafka_up: bool = True
    db_error: Exception | None = None
    started: int = 0
    stopped: int = 0

    async def start(self) -> None:
        self.started += 1

    async def stop(self) -> None:
        self.stopped += 1

    async def database_ready(self) -> bool:
        if self.db_error is not None:
            raise self.db_error
        return self.db_up

    async def kafka_ready(self) -> bool:
        return self.kafka_up


def make_app(
    *routers: APIRouter, env: str = "test", runtime: FakeRuntime | None = None
) -> tuple[FastAPI, FakeRuntime]:
    runtime = runtime or FakeRuntime(settings=FakeSettings(env=env))
    app = create_service_app(
        runtime,
        list(routers),
        title="Test service",
        description="web layer under test",
        configure_logs=False,
    )
    return app, runtime


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testsvc")
