"""The console's ASGI app: `uvicorn console_service.main:app --port 8006`.

A separate small app rather than a router in a service: it owns no data, reads the four services only
through their HTTP APIs and probes, and keeps serving (showing who is down) when one of them is down.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from console_service import api
from console_service.settings import ConsoleSettings
from console_service.upstream import Upstream
from shared.logging import configure_logging
from shared.problem import FieldError, Problem, status_title
from shared.web import problem_response
from shared.web.app import ready_to_serve
from shared.web.middleware import RequestContextMiddleware

STATIC_DIR = Path(__file__).resolve().parent / "static"


async def _problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return problem_response(request, exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    detail = (
        exc.detail
        if isinstance(exc.detail, str) and exc.detail != status_title(exc.status_code)
        else (
            f"There is nothing at {request.url.path}; the console is at /console."
            if exc.status_code == 404
            else f"{request.method} {request.url.path} failed with {exc.status_code}."
        )
    )
    return problem_response(
        request,
        Problem(exc.status_code, status_title(exc.status_code), detail, headers=dict(exc.headers or {})),
    )


async def _invalid(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [
        FieldError(field=".".join(str(p) for p in e.get("loc", ())[1:]) or "body", message=str(e.get("msg")))
        for e in exc.errors()
    ]
    return problem_response(
        request,
        Problem(
            422,
            "Invalid request",
            f"{len(errors)} field(s) are invalid; correct them and retry.",
            errors=errors,
        ),
    )


def build_app(
    settings: ConsoleSettings | None = None,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    configure_logs: bool = True,
) -> FastAPI:
    settings = settings or ConsoleSettings.from_env()

    client = httpx.AsyncClient(timeout=settings.upstream_timeout_s, transport=transport)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if configure_logs:
            configure_logging("console")
        ready_to_serve(app, settings.env)
        try:
            yield
        finally:
            await client.aclose()

    app = FastAPI(
        title="Ops console",
        description="The operations console: the pool, rounds, applications and system health.",
        version="1",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.upstream = Upstream(client, settings.service_urls)
    app.add_exception_handler(Problem, _problem)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid)
    # X-Correlation-Id in and out, a JSON access line per request, request metrics, the last-resort 500.
    app.add_middleware(RequestContextMiddleware, service="console")
    app.include_router(api.router)
    if not settings.is_production:
        app.include_router(api.dev_router())
    app.mount("/console/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/console", status_code=303)

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "service": "console"}

    @app.get("/readyz", tags=["operations"])
    async def readyz() -> dict[str, Any]:
        """The console needs nothing of its own to serve; the services' state is on its health panel."""
        return {"status": "ready", "checks": {}}

    @app.get("/metrics", tags=["operations"])
    async def metrics() -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return app


app = build_app()

if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=ConsoleSettings.default_port)
