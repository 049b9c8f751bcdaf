"""The REAL ranking service as the draws service's HTTP peer in these tests.

`ranking_service.main.build_app` serves its own routes and queries (`POST /v1/pool/selection`) over
its own in-memory pool (`PoolView`); the tests fill that pool by hand through `PoolView.replace`
instead of feeding it profile events through Kafka (that path is the end-to-end suite's), so each
test can set exact scores and submission times. The ranking runtime is not started: the selection
needs neither its database nor Kafka.

A thin ASGI wrapper records each selection request and can delay it (to make two rounds overlap);
the answer itself is the ranking service's.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
import uvicorn
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ranking_service.api import RankingContext
from ranking_service.domain.pool import Pool, PoolEntry
from ranking_service.domain.view import CandidateInfo
from ranking_service.main import build_app
from ranking_service.settings import RankingSettings
from shared.clock import Clock

SELECTION_PATH = "/v1/pool/selection"


@dataclass
class RankingPeer:
    """The ranking app, what its pool holds, and the selection requests it received."""

    app: FastAPI
    entries: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    delay_s: float = 0.0
    loads: int = 0

    def load(self, entries: Iterable[dict[str, Any]]) -> None:
        """Make the ranking pool hold exactly these candidates (selection-shaped dicts)."""
        self.entries = list(entries)
        pool, infos = Pool(), {}
        for e in self.entries:
            submitted_at = datetime.fromisoformat(e["submitted_at"])
            pool.upsert(
                PoolEntry(
                    e["profile_id"],
                    e["crs"],
                    submitted_at,
                    frozenset(e["programs"]),
                    frozenset(e["categories"]),
                )
            )
            infos[e["profile_id"]] = CandidateInfo.of(
                e["owner"], e["citizenship"], {"total": e["crs"]}, (), {}, 1
            ).record
        self.loads += 1
        context: RankingContext = self.app.state.ranking
        context.view.replace(pool, infos, {"tests.ee.profile.events:0": self.loads}, datetime.now(UTC))

    def reset(self) -> None:
        self.load([])
        self.requests.clear()
        self.delay_s = 0.0


def ranking_peer(secret: str, clock: Clock) -> RankingPeer:
    settings = RankingSettings(
        env="test", auth_secret=secret, topic_prefix="draws-tests-unused.", db_suffix="_unused"
    )
    return RankingPeer(build_app(settings, clock=clock))


class Recorder:
    """ASGI wrapper: logs (and optionally delays) each selection request, then lets ranking answer."""

    def __init__(self, peer: RankingPeer) -> None:
        self.peer = peer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != SELECTION_PATH:
            await self.peer.app(scope, receive, send)
            return
        body = await _read_body(receive)
        self.peer.requests.append(orjson.loads(body))
        if self.peer.delay_s:
            await asyncio.sleep(self.peer.delay_s)
        await self.peer.app(scope, _replay(body, receive), send)


async def _read_body(receive: Receive) -> bytes:
    chunks, more = [], True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def serve(
    app: ASGIApp, lifespan: Literal["on", "off"] = "off"
) -> tuple[uvicorn.Server, asyncio.Task[None], str]:
    """Serve `app` on a free local port in this event loop; returns the server, its task and URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan=lifespan))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    for _ in range(1000):  # up to 10 s
        if server.started:
            break
        await asyncio.sleep(0.01)
    else:
        raise RuntimeError(f"{app!r} did not start serving within 10 s")
    return server, task, f"http://127.0.0.1:{port}"
