"""Operations routes: `GET /healthz` (the process serves), `GET /readyz`, `GET /metrics` (Prometheus).

`/readyz` asks the runtime's checks (`shared.readiness`: database, Kafka, running consumers, and what
the service adds with `ServiceRuntime.add_readiness_check`): 200 when every one passes, 503 naming
the failing ones otherwise. `/metrics` exports the default Prometheus registry and the runtime's own
series, collected at scrape time (`shared.metrics`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from pydantic import BaseModel, Field

from shared import readiness
from shared.metrics import render as render_metrics
from shared.problem import Problem, ProblemDetails
from shared.web.errors import RETRY_AFTER_SECONDS

__all__ = ["Health", "Readiness", "ops_router"]


class Health(BaseModel):
    status: str = Field(examples=["ok"])
    service: str = Field(examples=["profile"])


class Readiness(BaseModel):
    status: str = Field(examples=["ready"])
    checks: dict[str, str] = Field(examples=[{"database": "up", "kafka": "up"}])


def ops_router(runtime: Any, service: str) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="Liveness: the process is serving")
    async def healthz() -> Health:
        return Health(status="ok", service=service)

    @router.get(
        "/readyz",
        summary="Readiness: dependencies reachable, consumers running, the service's own checks passing",
        responses={503: {"model": ProblemDetails, "description": "Not ready: what is down, and why."}},
    )
    async def readyz() -> Readiness:
        checks, down = await readiness.evaluate(runtime)  # see shared.readiness
        if down is not None:
            raise Problem(
                503,
                "Not ready",
                down,
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
                extensions={"checks": checks},
            )
        return Readiness(status="ready", checks=checks)

    @router.get(
        "/metrics",
        summary="Prometheus metrics",
        response_class=Response,
        responses={
            200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Metrics"}
        },
    )
    async def metrics() -> Response:
        sources = getattr(runtime, "metrics_sources", None)  # the runtime's own series: shared.metrics
        own = await render_metrics(sources()) if sources is not None else b""
        return Response(generate_latest(REGISTRY) + own, media_type=CONTENT_TYPE_LATEST)

    return router
