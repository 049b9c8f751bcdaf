"""The app factory every service's `build_app(settings, *, clock)` ends with.

```python
def build_app(settings: ProfileSettings | None = None, *, clock: Clock | None = None) -> FastAPI:
    runtime = ServiceRuntime(settings or ProfileSettings(), clock=clock, consumers=[...])
    return create_service_app(runtime, [api.router], title=TITLE, description=DESCRIPTION)
```

The app gets the platform's error handlers (`shared.web.errors`), the request middleware
(`shared.web.middleware`), the operations routes (`shared.web.ops`), its AsyncAPI document
(`shared.asyncapi`), outside production the admin clock (`shared.web.admin_clock`), and an OpenAPI
document whose errors are problem+json (`shared.web.openapi`). Its lifespan runs `runtime.start()`
and `runtime.stop()`.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Final, Protocol

from fastapi import APIRouter, FastAPI, Request

from shared.asyncapi import asyncapi_router
from shared.auth import check_auth_secret, secret_value
from shared.logging import configure_logging
from shared.web.admin_clock import AdjustableClock, clock_router
from shared.web.admission import AdmissionLimit
from shared.web.errors import install_error_handlers
from shared.web.middleware import RequestContextMiddleware
from shared.web.openapi import ERROR_RESPONSES, problem_json_in_openapi
from shared.web.ops import ops_router

__all__ = ["RuntimeLike", "SettingsLike", "create_service_app", "get_runtime", "ready_to_serve"]

log = logging.getLogger(__name__)


class SettingsLike(Protocol):
    @property
    def env(self) -> str: ...

    @property
    def is_production(self) -> bool: ...

    @property
    def auth_secret(self) -> Any: ...  # str or pydantic SecretStr

    @property
    def service_name(self) -> str: ...

    @property
    def requests_in_progress(self) -> int: ...

    @property
    def requests_waiting_max(self) -> int: ...


class RuntimeLike(Protocol):
    """What the app needs from the runtime (`shared.runtime.ServiceRuntime` fits)."""

    @property
    def settings(self) -> SettingsLike: ...

    @property
    def clock(self) -> AdjustableClock: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def database_ready(self) -> Awaitable[bool] | bool: ...

    def kafka_ready(self) -> Awaitable[bool] | bool: ...


_MATCHES_NO_ROUTE: Final = "/\x00"


def build_routes_now(app: FastAPI) -> None:
    """Have FastAPI build its routing now rather than inside the first request.

    FastAPI builds an included router's routes (dependencies, body fields, response models) the first
    time a request is matched against it: in the profile service the first POST took 118 ms of CPU
    (cProfile, in process), the second 17 and the third 6, and at 200 PUT/s the first request's
    stretch of the event loop (26.6-46.9 ms of CPU) was the longest of the run. Matching a path that
    no route has against every route builds them all (`BaseRoute.matches`, public), and nothing is
    handled.
    """
    scope = {"type": "http", "method": "GET", "path": _MATCHES_NO_ROUTE, "root_path": "", "headers": []}
    for route in app.router.routes:
        route.matches(dict(scope))


YOUNG_COLLECTION_THRESHOLD: Final = 7_000
"""Tracked objects allocated (net of those freed) before a young collection; CPython's default is 700."""


def settle_the_collector() -> None:
    """Keep the cyclic garbage collector off the request path of a started service.

    - What exists once started (modules, routes, models, pools) lives as long as the process: frozen,
      a full collection walks only what requests create (without it, one took ~400 ms, a stall of
      every request in flight).
    - Requests in flight hold a few thousand young objects between them, so at the default threshold
      (700) a young collection ran every few requests and pushed live objects into the older
      generations, whose collections then took 4-10 ms of CPU inside a request. At 200 PUT/s on the
      profile service for 30 s (`bench.loop_stretches`' probe), 700 gave 395 young, 36 middle and 3
      full collections (412.7 ms of CPU); 7,000 gave 5 young collections (16.3 ms) and none older.
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, middle, old)


def ready_to_serve(app: FastAPI, env: str) -> None:
    """What a started app does before its first request, in every service and the console: its routes
    built and the collector settled. Not in a test process, which runs many apps one after the other."""
    if env != "test":
        build_routes_now(app)
        settle_the_collector()


async def get_runtime(request: Request) -> Any:
    """FastAPI dependency: the service's runtime (`create_service_app`'s first argument).

    A coroutine so that FastAPI calls it on the event loop: a plain `def` dependency goes through
    the thread pool on every request (a thread hand-off each way, ~10% of a PUT's CPU)."""
    return request.app.state.runtime


def create_service_app(
    runtime: RuntimeLike,
    routers: Sequence[APIRouter],
    *,
    title: str,
    description: str,
    version: str = "1",
    configure_logs: bool = True,
    state: Mapping[str, Any] | None = None,
) -> FastAPI:
    """The service's FastAPI app. Its lifespan runs `runtime.start()` and `runtime.stop()`.

    `state` is set on `app.state` (what the service's route dependencies read, e.g. `app.state.draws`);
    `/readyz` asks the runtime's checks (`shared.readiness`).

    Raises `shared.auth.InsecureSecretError` at once when the settings are production and the auth
    secret is the development default (or too short).
    """
    settings = runtime.settings
    service = settings.service_name
    secret = check_auth_secret(secret_value(settings.auth_secret), settings.env)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if configure_logs:
            configure_logging(service)
        await runtime.start()
        ready_to_serve(app, settings.env)
        log.info("%s started", service, extra={"env": settings.env})
        try:
            yield
        finally:
            await runtime.stop()
            log.info("%s stopped", service)

    app = FastAPI(title=title, description=description, version=version, lifespan=lifespan)
    app.state.runtime = runtime
    app.state.auth_secret = secret
    app.state.service_name = service
    for name, value in (state or {}).items():
        setattr(app.state, name, value)

    install_error_handlers(app)
    app.add_middleware(
        AdmissionLimit,
        service=service,
        limit=settings.requests_in_progress,
        max_waiting=settings.requests_waiting_max,
    )
    app.add_middleware(RequestContextMiddleware, service=service)  # outermost: it sees waits and 503s

    app.include_router(ops_router(runtime, service), responses=ERROR_RESPONSES)
    app.include_router(asyncapi_router(service), responses=ERROR_RESPONSES)
    if not settings.is_production:
        app.include_router(clock_router(runtime.clock), responses=ERROR_RESPONSES)
    for router in routers:
        app.include_router(router, responses=ERROR_RESPONSES)

    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            problem_json_in_openapi(generate())
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
