"""The notifications service for real in a test: a fresh migrated database, its topics, the runtime
(relay, fan-out consumer, dispatcher) started in-process and called through its ASGI app, and
webhook receivers as real processes on loopback (`notifications_service.receiver`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from notifications_service.main import build_app
from notifications_service.settings import NotificationsSettings
from shared.auth import mint_token
from shared.clock import Clock
from shared.envelope import encode
from shared.events.catalogue import Event, Invited
from shared.messages import envelope_for
from shared.migrations import upgrade_to_head
from shared.runtime import ServiceRuntime
from shared.settings import ServiceSettings
from shared.testing import (
    create_database,
    drop_database,
    free_port,
    listening,
    produce,
    spawn,
    stop_process,
    wait_until,
)

ROOT = Path(__file__).resolve().parents[3]
ALEMBIC_INI = Path(__file__).resolve().parents[1] / "alembic.ini"
Json = dict[str, Any]


def token(settings: ServiceSettings, sub: str, role: str, province: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(settings.auth_secret, sub, role, province=province)}"}


def _spawn(
    args: list[str], env: dict[str, str] | None = None, log: Path | None = None
) -> subprocess.Popen[bytes]:
    return spawn(args, ROOT, env=env, log=log)


@asynccontextmanager
async def fresh_database(settings: NotificationsSettings) -> AsyncIterator[None]:
    await create_database(settings.database_url)
    await upgrade_to_head(ALEMBIC_INI, settings.database_url)
    try:
        yield
    finally:
        await drop_database(settings.database_url)


async def publish(settings: ServiceSettings, events: Iterable[Event], source: str) -> None:
    """Put catalogue events on their (prefixed) topics as their producers would, keyed, in order."""
    by_topic: dict[tuple[str, str], list[bytes]] = {}
    for event in events:
        envelope = envelope_for(event, source=source, time=datetime.now().astimezone())
        by_topic.setdefault((settings.topic(event.topic), event.key()), []).append(encode(envelope))
    for (topic, key), values in by_topic.items():
        await produce(settings, topic, values, key=key.encode())


def invited(owner: str, profile_id: str | None = None, **overrides: Any) -> Invited:
    now = datetime.now().astimezone()
    fields: dict[str, Any] = {
        "profile_id": profile_id or f"p-{uuid.uuid4()}",
        "owner": owner,
        "invitation_id": str(uuid.uuid4()),
        "round_id": str(uuid.uuid4()),
        "round_number": 321,
        "program": "fsw",
        "crs": 521,
        "citizenship": "IN",
        "invited_at": now,
        "deadline": now + timedelta(days=60),
    }
    fields.update(overrides)
    return Invited(**fields)


# -- receivers ------------------------------------------------------------------------------------


class Receiver:
    """`notifications_service.receiver` as a child process; `records()` reads what it accepted so far."""

    def __init__(
        self,
        directory: Path,
        routes: dict[str, str],
        status: int = 204,
        delay_ms: float = 0,
        extra: list[str] | None = None,
    ) -> None:
        self.extra = extra or []
        self.port = free_port()
        self.out = directory / f"received-{self.port}.jsonl"
        self.routes = routes
        self.status = status
        self.delay_ms = delay_ms
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def start(self) -> None:
        args = [
            sys.executable,
            "-m",
            "notifications_service.receiver",
            "--port",
            str(self.port),
            "--out",
            str(self.out),
        ]
        args += ["--status", str(self.status), "--delay-ms", str(self.delay_ms), *self.extra]
        for path, secret in self.routes.items():
            args += ["--route", f"{path}={secret}"]
        self.process = _spawn(args)

        port = self.port
        await wait_until(lambda: listening(port), timeout=15, message=f"receiver on {port} never listened")

    async def stop(self) -> None:
        process, self.process = self.process, None
        await asyncio.to_thread(stop_process, process, 10)

    def records(self) -> list[Json]:
        if not self.out.exists():
            return []
        # The receiver may be mid-write: a last line without its newline is not a record yet.
        text = self.out.read_text(encoding="utf-8")
        complete = text[: text.rfind("\n") + 1]
        return [json.loads(line) for line in complete.splitlines() if line.strip()]

    def accepted(self, path: str | None = None) -> list[Json]:
        return [r for r in self.records() if "error" not in r and (path is None or r["path"] == path)]


@asynccontextmanager
async def receiver(directory: Path, routes: dict[str, str], **options: Any) -> AsyncIterator[Receiver]:
    running = Receiver(directory, routes, **options)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


# -- the service in-process -----------------------------------------------------------------------


@dataclass
class Service:
    settings: NotificationsSettings
    app: FastAPI
    runtime: ServiceRuntime
    client: httpx.AsyncClient

    def as_(self, sub: str, role: str, province: str | None = None) -> dict[str, str]:
        return token(self.settings, sub, role, province)

    async def subscribe(self, who: dict[str, str], url: str, event_types: list[str], **extra: Any) -> Json:
        answer = await self.client.post(
            "/v1/webhooks/subscriptions", headers=who, json={"url": url, "event_types": event_types, **extra}
        )
        assert answer.status_code == 201, answer.text
        body: Json = answer.json()
        return body


@asynccontextmanager
async def running_service(
    settings: NotificationsSettings, clock: Clock | None = None
) -> AsyncIterator[Service]:
    app = build_app(settings, clock=clock)
    runtime: ServiceRuntime = app.state.runtime
    await runtime.start()
    try:
        for consumer in runtime.consumers:
            await consumer.wait_ready(timeout=30)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://notifications") as client:
            yield Service(settings, app, runtime, client)
    finally:
        await runtime.stop()


# -- the service as a process (kill -9) ------------------------------------------------------------


class ServiceProcess:
    """uvicorn notifications_service.main:app in a child process, with the test's settings as env."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.env = env
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        roots = [".", "services/notifications"]
        env = {**os.environ, **self.env, "PYTHONPATH": os.pathsep.join(str(ROOT / r) for r in roots)}
        args = [sys.executable, "-m", "uvicorn", "notifications_service.main:app", "--host", "127.0.0.1"]
        self.process = _spawn([*args, "--port", str(self.port)], env=env, log=self.log)

        async def ready() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"the service exited: {self.log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                async with httpx.AsyncClient(trust_env=False) as client:
                    return (await client.get(f"{self.base_url}/readyz", timeout=2)).status_code == 200
            return False

        await wait_until(ready, timeout=60, interval=0.2, message="the notifications service never got ready")

    def kill9(self) -> None:
        assert self.process is not None
        self.process.kill()  # SIGKILL: no shutdown at all
        self.process.wait(10)
        self.process = None

    async def stop(self) -> None:
        process, self.process = self.process, None
        await asyncio.to_thread(stop_process, process, 20)
