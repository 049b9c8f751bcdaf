"""The draws service's ASGI app: `uvicorn draws_service.main:app --port 8003`."""

from __future__ import annotations

import asyncio

import httpx
from fastapi import FastAPI

from draws_service import api
from draws_service.adapters.categories import RulesCategories
from draws_service.adapters.consumer import open_invitations_consumer
from draws_service.adapters.ranking import HttpRanking, OpsToken
from draws_service.adapters.uow import draws_uow
from draws_service.application.handlers import DrawsService
from draws_service.settings import DrawsSettings
from shared.clock import Clock
from shared.consumer import IdempotentConsumer
from shared.runtime import ServiceRuntime
from shared.web import create_service_app

DESCRIPTION = """Rounds of invitations to apply for permanent residence.

Operations plan a round (a dry run) and hold it; the service asks the ranking service for one
consistent selection of the eligible pool, invites the top candidates, records the round and emits
`RoundOfInvitationsHeld` and one `Invited` per candidate. The history of rounds is public.
"""


class HttpClientResource:
    """The ranking HTTP client as a runtime part, so the app's shutdown closes its connections."""

    name = "ranking-http-client"

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self._closed = asyncio.Event()

    async def run(self) -> None:
        await self._closed.wait()

    async def stop(self) -> None:
        await self.client.aclose()
        self._closed.set()


def _consumer(runtime: ServiceRuntime) -> IdempotentConsumer:
    return open_invitations_consumer(runtime.settings, runtime.session_factory, runtime.clock)


def build_app(settings: DrawsSettings | None = None, *, clock: Clock | None = None) -> FastAPI:
    settings = settings or DrawsSettings()
    runtime = ServiceRuntime(settings, consumers=[_consumer], clock=clock)
    client = httpx.AsyncClient(timeout=settings.ranking_timeout_s)
    runtime.add_background(HttpClientResource(client))
    ranking = HttpRanking(client, settings.ranking_url, OpsToken(settings.auth_secret))
    draws = DrawsService(
        uow=draws_uow(runtime.uow), ranking=ranking, categories=RulesCategories(), clock=runtime.clock
    )
    return create_service_app(
        runtime, [api.router], title="Draws service", description=DESCRIPTION, state={"draws": draws}
    )


app = build_app()

if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=DrawsSettings.default_port)
