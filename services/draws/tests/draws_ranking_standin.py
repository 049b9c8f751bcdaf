"""STAND-IN for the ranking service, for the draws service's own tests ONLY.

TEMPORARY: the real ranking service (services/ranking) does not serve `POST /v1/pool/selection` yet.
This tiny FastAPI app serves that contract from fixed data so the draws service's HTTP client and
API can be tested against a real HTTP peer. Replace it with the real ranking service (fed through
Kafka) as soon as that exists; never use it outside tests.

Contract (issue 4 / issue 5): `POST /v1/pool/selection` with an ops bearer token, body
`{"program", "category", "size", "exclude"}` -> `{"position", "pool_size", "eligible_count",
"candidates": [...]}` ordered by (-crs, submitted_at, profile_id).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal

import uvicorn
from fastapi import Depends, FastAPI, Header, HTTPException
from pydantic import BaseModel

from shared.auth import decode_token


@dataclass
class StandInPool:
    """The fixed pool the stand-in serves; tests replace `entries` and read `requests`."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    version: int = 0
    delay_s: float = 0.0

    def load(self, entries: Iterable[dict[str, Any]]) -> None:
        self.entries = list(entries)
        self.version += 1


class SelectionBody(BaseModel):
    program: str | None = None
    category: str | None = None
    size: int
    exclude: list[str] = []


def _key(entry: dict[str, Any]) -> tuple[int, datetime, str]:
    return (-entry["crs"], datetime.fromisoformat(entry["submitted_at"]), entry["profile_id"])


def _eligible(entry: dict[str, Any], body: SelectionBody, excluded: set[str]) -> bool:
    if entry["profile_id"] in excluded:
        return False
    if body.program is not None and body.program not in entry["programs"]:
        return False
    return body.category is None or body.category in entry["categories"]


def standin_app(pool: StandInPool, secret: str) -> FastAPI:
    app = FastAPI(title="ranking stand-in (draws tests only)")

    def ops_only(authorization: Annotated[str | None, Header()] = None) -> None:
        if authorization is None or not authorization.startswith("Bearer "):
            raise HTTPException(401, "bearer token required")
        if decode_token(authorization.removeprefix("Bearer "), secret).role != "ops":
            raise HTTPException(403, "ops only")

    @app.post("/v1/pool/selection", dependencies=[Depends(ops_only)])
    async def selection(body: SelectionBody) -> dict[str, Any]:
        pool.requests.append(body.model_dump())
        if pool.delay_s:
            await asyncio.sleep(pool.delay_s)
        excluded = set(body.exclude)
        eligible = sorted((e for e in pool.entries if _eligible(e, body, excluded)), key=_key)
        return {
            "position": {"standin_version": pool.version},
            "pool_size": len(pool.entries),
            "eligible_count": len(eligible),
            "candidates": eligible[: body.size],
        }

    return app


async def serve(
    app: FastAPI, lifespan: Literal["on", "off"] = "off"
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
        raise RuntimeError("the ranking stand-in did not start within 10 s")
    return server, task, f"http://127.0.0.1:{port}"
