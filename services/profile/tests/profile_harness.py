"""The profile service running in-process for tests, on the real PostgreSQL and Kafka.

`running_service(settings)` creates a fresh database migrated by the service's own Alembic scripts and
the event topics under the settings' prefix, then runs the real app (its runtime: outbox relay,
consumer, scheduler) through its lifespan, and serves it over `httpx.ASGITransport`.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from profile_service.main import build_app
from profile_service.settings import ProfileSettings
from shared import testing
from shared.auth import mint_token
from shared.clock import Clock
from shared.envelope import encode
from shared.events.catalogue import Event
from shared.messages import envelope_for
from shared.migrations import upgrade_to_head
from shared.rules.document import PROFILE_DOCUMENT_EXAMPLE
from shared.runtime import ServiceRuntime

ALEMBIC_INI = Path(__file__).resolve().parents[1] / "alembic.ini"
T0 = datetime(2025, 6, 1, 9, 30, tzinfo=UTC)
"""Business time when a module's service starts: the example document is FSWP-eligible then."""


def settings_overrides() -> dict[str, Any]:
    return {"auth_secret": "profile-tests-" + uuid.uuid4().hex * 2, "db_pool_size": 5}


def example_document(**changes: Any) -> dict[str, Any]:
    doc = copy.deepcopy(PROFILE_DOCUMENT_EXAMPLE)
    doc.update(changes)
    return doc


@dataclass
class Service:
    settings: ProfileSettings
    app: FastAPI
    client: httpx.AsyncClient
    clock: Clock

    @property
    def runtime(self) -> ServiceRuntime:
        runtime: ServiceRuntime = self.app.state.runtime
        return runtime

    def auth(self, sub: str, role: str = "candidate", province: str | None = None) -> dict[str, str]:
        token = mint_token(self.settings.auth_secret, sub, role, province=province)
        return {"Authorization": f"Bearer {token}"}

    async def create(
        self,
        sub: str,
        document: dict[str, Any] | None = None,
        role: str = "candidate",
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        headers = {**self.auth(sub, role), **(headers or {})}
        document = document or example_document()
        response = await self.client.post("/v1/profiles", json=document, headers=headers)
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    async def fresh(self, sub: str, profile_id: str, role: str = "candidate") -> dict[str, str]:
        """The caller's headers with `If-Match` set to the profile's current ETag (a command needs it)."""
        headers = self.auth(sub, role)
        current = await self.client.get(f"/v1/profiles/{profile_id}", headers=headers)
        assert current.status_code == 200, current.text
        return {**headers, "If-Match": current.headers["ETag"]}

    async def submit(self, sub: str, profile_id: str, role: str = "candidate") -> dict[str, Any]:
        headers = await self.fresh(sub, profile_id, role)
        response = await self.client.post(f"/v1/profiles/{profile_id}/submit", headers=headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def get(self, sub: str, profile_id: str) -> dict[str, Any]:
        response = await self.client.get(f"/v1/profiles/{profile_id}", headers=self.auth(sub))
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def wait_for_status(self, sub: str, profile_id: str, status: str, timeout: float = 20) -> None:  # noqa: ASYNC109
        seen: list[str] = []

        async def reached() -> bool:
            seen.append((await self.get(sub, profile_id))["status"])
            return seen[-1] == status

        await testing.wait_until(
            reached,
            timeout=timeout,
            interval=0.1,
            message=lambda: f"profile {profile_id} never became {status}: {seen[-1:]}",
        )

    async def publish(self, event: Event, source: str) -> None:
        """Publish a foreign event (e.g. the draws service's Invited) the way its producer does."""
        envelope = envelope_for(event, source=source, time=self.clock.now())
        await testing.produce(
            self.settings, self.settings.topic(event.topic), [encode(envelope)], key=event.key().encode()
        )


@asynccontextmanager
async def running_service(settings: ProfileSettings, at: datetime = T0) -> AsyncIterator[Service]:
    url = settings.database_url
    try:
        await testing.create_database(url)
    except OSError as exc:
        pytest.fail(
            f"PostgreSQL does not answer ({exc}): start it with `make test` or "
            "`deploy/local/postgres.sh start`"
        )
    try:
        await upgrade_to_head(ALEMBIC_INI, url)
        await testing.ensure_topics(settings)
        async with _serving(settings, at) as service:
            yield service
    finally:
        await testing.delete_topics(settings)
        await testing.drop_database(url)


@asynccontextmanager
async def _serving(settings: ProfileSettings, at: datetime) -> AsyncIterator[Service]:
    clock = Clock()
    clock.set_now(at)
    app = build_app(settings, clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://profile") as client:
            service = Service(settings, app, client, clock)
            for consumer in service.runtime.consumers:
                await consumer.wait_ready(30)
            yield service
