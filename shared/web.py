"""The FastAPI app every service serves: errors, health, metrics, correlation ids, the admin clock.

```python
app = create_service_app(runtime, [api.router], title="Profile service", description="...")
```

What the app gets:

- every error as RFC 9457 `application/problem+json` (`Problem` raised anywhere, validation errors
  with `errors: [{field, message}]`, 404/405 from routing, 401/403 from `shared.auth`, 503 with
  `Retry-After` when PostgreSQL or Kafka is unreachable, 500 for anything else, logged);
- `GET /healthz` (the process serves), `GET /readyz` (`shared.readiness`), `GET /metrics`
  (Prometheus: requests and latency by route template and status, plus whatever else the process
  registers);
- `X-Correlation-Id` read (or generated) per request, put in `shared.context` for the events and
  logs the request causes, and echoed in the response;
- outside production, `GET /v1/admin/clock` and `PUT /v1/admin/clock` (ops) to move business time;
- ETag / If-Match helpers: `etag_header`, `expected_version` / the `IfMatch` dependency,
  `check_version`.
"""

from __future__ import annotations

import errno
import importlib
import logging
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from time import perf_counter
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Depends, FastAPI, Header, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared import context, readiness
from shared.asyncapi import asyncapi_router
from shared.auth import Principal, check_auth_secret, require_roles, secret_value
from shared.logging import configure_logging
from shared.metrics import render as render_metrics
from shared.problem import PROBLEM_JSON, FieldError, Problem, ProblemDetails, status_title

__all__ = [
    "PROBLEM_JSON",
    "ClockState",
    "ClockUpdate",
    "IfMatch",
    "Problem",
    "ProblemDetails",
    "RuntimeLike",
    "SettingsLike",
    "check_version",
    "create_service_app",
    "etag_header",
    "expected_version",
    "get_runtime",
    "parse_if_match",
    "problem_response",
]

log = logging.getLogger("shared.web")

CORRELATION_HEADER = "X-Correlation-Id"
RETRY_AFTER_SECONDS = 5
PROBE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
_CORRELATION_RE = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")

HTTP_REQUESTS = Counter(
    "ee_http_requests", "HTTP requests served", ["service", "method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "ee_http_request_duration_seconds",
    "HTTP request latency, from the first byte in to the last byte out",
    ["service", "method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


# -- what the app needs from the runtime (shared.runtime.ServiceRuntime fits) ----------------------


class SettingsLike(Protocol):
    @property
    def env(self) -> str: ...

    @property
    def is_production(self) -> bool: ...

    @property
    def auth_secret(self) -> Any: ...  # str or pydantic SecretStr

    @property
    def service_name(self) -> str: ...


class AdjustableClock(Protocol):
    def now(self) -> datetime: ...

    @property
    def offset(self) -> timedelta: ...

    def set_offset(self, offset: timedelta) -> None: ...


class RuntimeLike(Protocol):
    @property
    def settings(self) -> SettingsLike: ...

    @property
    def clock(self) -> AdjustableClock: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def database_ready(self) -> Awaitable[bool] | bool: ...

    def kafka_ready(self) -> Awaitable[bool] | bool: ...


async def get_runtime(request: Request) -> Any:
    """FastAPI dependency: the service's runtime (`create_service_app`'s first argument).

    A coroutine so that FastAPI calls it on the event loop: a plain `def` dependency goes through
    the thread pool on every request (a thread hand-off each way, ~10% of a PUT's CPU)."""
    return request.app.state.runtime


# -- problem responses --------------------------------------------------------------------------


def problem_response(request: Request | None, problem: Problem) -> JSONResponse:
    """The `application/problem+json` response for `problem`."""
    body = problem.to_dict(instance=request.url.path if request is not None else None)
    correlation = context.correlation_id.get()
    if correlation:
        body.setdefault("correlation_id", correlation)
    return JSONResponse(
        jsonable_encoder(body), status_code=problem.status, headers=problem.headers, media_type=PROBLEM_JSON
    )


async def _problem_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return problem_response(request, exc)


async def _http_exception_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    headers = dict(exc.headers or {})
    if status < 400 or status in (204, 304):
        return Response(status_code=status, headers=headers)
    generic = exc.detail == status_title(status)  # Starlette's default detail is the status phrase
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail and not generic else None
    extensions: dict[str, Any] = {}
    if not isinstance(exc.detail, str) and exc.detail is not None:
        extensions["data"] = exc.detail
    method, path = request.method, request.url.path
    if detail is None:
        if status == 404:
            detail = f"There is nothing at {path}; check the path and version prefix (the API is at /docs)."
        elif status == 405:
            allowed = headers.get("Allow") or headers.get("allow") or ""
            detail = f"{method} is not supported on {path}" + (f"; use {allowed}." if allowed else ".")
        elif status == 401:
            detail = "This endpoint needs a bearer token: send `Authorization: Bearer <token>`."
            headers.setdefault("WWW-Authenticate", "Bearer")
        elif status == 403:
            detail = "Your token does not allow this action."
        elif status == 415:
            detail = "Send the body as JSON with `Content-Type: application/json`."
        else:
            detail = f"The request to {method} {path} failed with {status} {status_title(status)}."
    return problem_response(
        request, Problem(status, status_title(status), detail, headers=headers, extensions=extensions)
    )


def _field_path(loc: Sequence[Any]) -> str:
    parts = list(loc)
    if parts and parts[0] == "body":
        parts = parts[1:]
    return ".".join(str(p) for p in parts) or "body"


def _field_message(error: Mapping[str, Any]) -> str:
    kind = error.get("type", "")
    msg = str(error.get("msg", "Invalid value"))
    ctx = error.get("ctx") or {}
    if kind == "missing":
        return "This field is required."
    if kind == "extra_forbidden":
        return "Unknown field; remove it or check its spelling."
    if kind in ("value_error", "assertion_error"):
        inner = ctx.get("error")
        msg = str(inner) if inner else msg.split(", ", 1)[-1]
    elif kind == "timezone_aware":
        msg = "Give a timezone, e.g. 2025-01-31T12:00:00Z"
    msg = msg[:1].upper() + msg[1:]
    return msg if msg.endswith((".", "!", "?")) else msg + "."


async def _validation_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    raw = list(exc.errors())
    bad_json = next((e for e in raw if e.get("type") == "json_invalid"), None)
    if bad_json is not None:
        ctx = bad_json.get("ctx") or {}
        position = bad_json["loc"][1] if len(bad_json.get("loc", ())) > 1 else None
        where = f" at character {position}" if position is not None else ""
        reason = f"{ctx.get('error', 'syntax error')}{where}"
        return problem_response(
            request,
            Problem(
                400,
                "Malformed JSON body",
                f"The request body is not valid JSON ({reason}); fix the syntax and send it again.",
                errors=[FieldError(field="body", message=f"Not valid JSON: {reason}.")],
            ),
        )
    errors = [FieldError(field=_field_path(e.get("loc", ())), message=_field_message(e)) for e in raw]
    if len(errors) == 1:
        detail = f"{errors[0]['field']}: {errors[0]['message']} Correct it and send the request again."
    else:
        detail = f"{len(errors)} fields are invalid (see `errors`); correct them and send the request again."
    return problem_response(request, Problem(422, "Invalid request", detail, errors=errors))


_NETWORK_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.ETIMEDOUT,
        errno.EPIPE,
    }
)


def _outage_of(exc: BaseException) -> str | None:
    """Which dependency `exc` says is unavailable ("database", "Kafka", ...), or None if it is not an
    outage (then it is a bug: 500)."""
    import aiokafka.errors as kafka_errors
    import asyncpg.exceptions as pg_errors
    import sqlalchemy.exc as sa_errors

    if isinstance(exc, sa_errors.DBAPIError):
        lost = isinstance(exc, sa_errors.OperationalError | sa_errors.InterfaceError)
        return "database" if lost or exc.connection_invalidated or _server_unavailable(exc) else None
    if isinstance(exc, sa_errors.TimeoutError | sa_errors.DisconnectionError):
        return "database"
    if isinstance(
        exc,
        pg_errors.PostgresConnectionError
        | pg_errors.CannotConnectNowError
        | pg_errors.TooManyConnectionsError,
    ):
        return "database"
    if isinstance(
        exc,
        kafka_errors.KafkaConnectionError
        | kafka_errors.KafkaTimeoutError
        | kafka_errors.NoBrokersAvailable
        | kafka_errors.KafkaUnavailableError
        | kafka_errors.BrokerNotAvailableError,
    ):
        return "Kafka"
    if isinstance(exc, TimeoutError | ConnectionError):  # TimeoutError is asyncio.TimeoutError too
        return "a dependency"
    if isinstance(exc, OSError) and (
        exc.errno in _NETWORK_ERRNOS or "connect call failed" in str(exc).lower()
        or str(exc).startswith("Multiple exceptions")
    ):
        return "a dependency"
    return None


# SQLSTATEs of a server that cannot serve now: connection exceptions (class 08), shutting down or
# restarting (57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now), too many connections.
_UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300"})


def _server_unavailable(exc: BaseException) -> bool:
    """Whether a database error, or the driver error under it, says the server is not serving (SQLAlchemy
    wraps e.g. asyncpg's CannotConnectNowError, "the database system is shutting down", in a plain
    DBAPIError, not an OperationalError)."""
    current: BaseException | None = exc
    for _ in range(6):
        if current is None:
            return False
        state = str(getattr(current, "sqlstate", None) or "")
        if state.startswith("08") or state in _UNAVAILABLE_SQLSTATES:
            return True
        current = getattr(current, "orig", None) or current.__cause__
    return False


def outage_exception_types() -> tuple[type[Exception], ...]:
    """The exception classes `create_service_app` maps to 503 (when `_outage_of` agrees)."""
    import aiokafka.errors as kafka_errors
    import asyncpg.exceptions as pg_errors
    import sqlalchemy.exc as sa_errors

    return (
        sa_errors.DBAPIError,
        sa_errors.TimeoutError,
        sa_errors.DisconnectionError,
        pg_errors.PostgresConnectionError,
        pg_errors.CannotConnectNowError,
        pg_errors.TooManyConnectionsError,
        kafka_errors.KafkaError,
        OSError,  # ConnectionError, TimeoutError (asyncio.TimeoutError) and refused connects
    )


def internal_error(request: Request | None, exc: BaseException) -> JSONResponse:
    where = f"{request.method} {request.url.path}" if request is not None else "request"
    log.error("unhandled error in %s", where, exc_info=(type(exc), exc, exc.__traceback__))
    return problem_response(
        request,
        Problem(
            500,
            "Internal server error",
            "The service failed to handle this request; nothing was changed unless the response says "
            "otherwise. Retry later and quote the correlation_id if it keeps happening.",
        ),
    )


async def _outage_handler(request: Request, exc: Exception) -> Response:
    dependency = _outage_of(exc)
    if dependency is None:
        return internal_error(request, exc)
    log.warning(
        "%s unavailable during %s %s: %s",
        dependency,
        request.method,
        request.url.path,
        exc,
        extra={"dependency": dependency, "exc_type": type(exc).__name__},
    )
    subject = "The database is" if dependency == "database" else (
        "Kafka is" if dependency == "Kafka" else "A service this request needs is"
    )
    return problem_response(
        request,
        Problem(
            503,
            "Service unavailable",
            f"{subject} unavailable or not answering in time; retry in {RETRY_AFTER_SECONDS} seconds.",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            extensions={"dependency": dependency},
        ),
    )


async def _unhandled_handler(request: Request, exc: Exception) -> Response:
    return internal_error(request, exc)


ExceptionHandler = Callable[[Request, Exception], Awaitable[Response]]


def _concurrency_handler() -> tuple[type[Exception], ExceptionHandler] | None:
    """409 for `shared.eventstore.ConcurrencyError` escaping a route (a concurrent write won)."""
    try:
        concurrency_error = importlib.import_module("shared.eventstore").ConcurrencyError
    except (ImportError, AttributeError):
        return None

    async def handler(request: Request, exc: Exception) -> Response:
        current = getattr(exc, "actual_version", None)
        return problem_response(
            request,
            Problem(
                409,
                "Concurrent update",
                "Someone else changed this resource while your request was being handled; read it "
                "again and retry with its new ETag.",
                headers={"ETag": etag_header(current)} if isinstance(current, int) else None,
                extensions={"current_version": current} if isinstance(current, int) else None,
            ),
        )

    return concurrency_error, handler


# -- correlation id, metrics and access log -------------------------------------------------------


def _route_template(scope: Scope) -> str:
    """The matched route's path template (`/v1/profiles/{profile_id}`), for low-cardinality labels.

    FastAPI 0.16x keeps included routers by reference, so `scope["route"].path` lacks the prefixes
    of enclosing routers; its effective route context has the full template. Plain Starlette routes
    (`/openapi.json`, `/docs`) are found by their endpoint. Unmatched requests are `<unmatched>`.
    """
    fastapi_scope = scope.get("fastapi")
    effective = fastapi_scope.get("effective_route_context") if isinstance(fastapi_scope, dict) else None
    path = getattr(effective, "path_format", None)
    if not path:
        route = scope.get("route")
        path = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not path and scope.get("endpoint") is not None:
        router = scope.get("router")
        for candidate in getattr(router, "routes", ()):
            if getattr(candidate, "endpoint", None) is scope["endpoint"]:
                path = getattr(candidate, "path_format", None) or getattr(candidate, "path", None)
                break
    return str(path) if path else "<unmatched>"


class RequestContextMiddleware:
    """Correlation id in and out, request metrics, an access log line, and the last-resort 500."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = Headers(scope=scope).get(CORRELATION_HEADER)
        correlation = incoming if incoming and _CORRELATION_RE.match(incoming) else str(uuid.uuid4())
        state = scope.setdefault("state", {})
        state["correlation_id"] = correlation
        corr_token = context.correlation_id.set(correlation)
        cause_token = context.causation_id.set(correlation)
        status = 500
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = int(message["status"])
                MutableHeaders(scope=message)[CORRELATION_HEADER] = correlation
            await send(message)

        begin = perf_counter()
        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            if started:
                log.error("error after the response started", exc_info=True)
                raise
            await internal_error(Request(scope), exc)(scope, receive, send_with_id)
        finally:
            elapsed = perf_counter() - begin
            method = scope.get("method", "")
            route = _route_template(scope)
            HTTP_REQUESTS.labels(self.service, method, route, str(status)).inc()
            HTTP_LATENCY.labels(self.service, method, route, str(status)).observe(elapsed)
            path = scope.get("path", "")
            log.log(
                logging.DEBUG if path in PROBE_PATHS else logging.INFO,
                "%s %s %s",
                method,
                path,
                status,
                extra={
                    "method": method,
                    "path": path,
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 3),
                },
            )
            context.causation_id.reset(cause_token)
            context.correlation_id.reset(corr_token)


# -- ETag / If-Match ------------------------------------------------------------------------------

_ETAG_RE = re.compile(r'^"(0|[1-9][0-9]{0,17})"$')


def etag_header(version: int) -> str:
    """The `ETag` value for an aggregate at `version`: `"7"` (quotes included)."""
    if version < 0:
        raise ValueError(f"version must be >= 0, got {version}")
    return f'"{version}"'


def parse_if_match(value: str | None) -> int:
    """The version in an `If-Match` header; Problem 428 when absent, 400 when malformed."""
    if value is None or not value.strip():
        raise Problem(
            428,
            "Precondition required",
            'This request changes a resource: send `If-Match` with the ETag from your last read of it '
            '(for example `If-Match: "3"`), so that you do not overwrite a change you have not seen.',
        )
    match = _ETAG_RE.match(value.strip())
    if match is None:
        raise Problem(
            400,
            "Malformed If-Match",
            f'If-Match must be exactly one ETag as returned in the ETag header, like "3" (with the '
            f"quotes; no W/ prefix, no *, no list); got {value.strip()[:64]!r}.",
            errors=[FieldError(field="header.If-Match", message='Expected an ETag like "3".')],
        )
    return int(match.group(1))


def expected_version(request: Request) -> int:
    """The version the client expects (from `If-Match`): 428 without it, 400 when malformed."""
    return parse_if_match(request.headers.get("If-Match"))


async def _if_match_dependency(
    if_match: Annotated[
        str | None,
        Header(
            alias="If-Match",
            description='The ETag from your last read of the resource, e.g. `"3"`. Required.',
        ),
    ] = None,
) -> int:
    return parse_if_match(if_match)


IfMatch = Annotated[int, Depends(_if_match_dependency)]
"""Route parameter type: `expected: IfMatch` gives the If-Match version (documented in OpenAPI)."""


def check_version(expected: int, current: int, *, what: str = "resource") -> None:
    """Raise 412 when the client's `expected` version (If-Match) is not the `current` one."""
    if expected != current:
        raise Problem(
            412,
            "Precondition failed",
            f"The {what} is at version {current}, not {expected}: it changed since you read it. "
            "Read it again, re-apply your change and retry with the new ETag.",
            headers={"ETag": etag_header(current)},
            extensions={"current_version": current, "expected_version": expected},
        )


# -- the admin clock ------------------------------------------------------------------------------

MAX_OFFSET_SECONDS = 100 * 366 * 24 * 3600


class ClockUpdate(BaseModel):
    """Exactly one of `offset_seconds` or `now`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"offset_seconds": 5184000}, {"now": "2025-09-01T12:00:00Z"}]},
    )

    offset_seconds: float | None = Field(
        default=None,
        allow_inf_nan=False,
        ge=-MAX_OFFSET_SECONDS,
        le=MAX_OFFSET_SECONDS,
        description="Business time = real time + this many seconds (60 days = 5184000). 0 resets.",
    )
    now: datetime | None = Field(
        default=None, description="Make business time read this instant now (timezone required)."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> ClockUpdate:
        if (self.offset_seconds is None) == (self.now is None):
            raise ValueError("send exactly one of offset_seconds or now")
        if self.now is not None and (self.now.tzinfo is None or self.now.utcoffset() is None):
            raise ValueError("now needs a timezone, e.g. 2025-09-01T12:00:00Z")
        return self


class ClockState(BaseModel):
    now: datetime = Field(description="The service's business time (UTC).")
    offset_seconds: float = Field(description="How far business time is ahead of real time.")


def _clock_state(clock: AdjustableClock) -> ClockState:
    return ClockState(now=clock.now(), offset_seconds=clock.offset.total_seconds())


def clock_router(clock: AdjustableClock) -> APIRouter:
    """`GET`/`PUT /v1/admin/clock`; never mounted in production."""
    router = APIRouter(prefix="/v1/admin", tags=["admin"])

    @router.get("/clock", summary="Read the service's business time")
    async def read_clock() -> ClockState:
        return _clock_state(clock)

    @router.put("/clock", summary="Move the service's business time (not in production)")
    async def set_clock(
        update: ClockUpdate, principal: Annotated[Principal, Depends(require_roles("ops"))]
    ) -> ClockState:
        before = clock.offset
        if update.now is not None:
            offset = update.now - (clock.now() - clock.offset)
        else:
            offset = timedelta(seconds=update.offset_seconds or 0.0)
        clock.set_offset(offset)
        log.warning(
            "business clock moved by %s",
            principal.sub,
            extra={"offset_before_s": before.total_seconds(), "offset_s": offset.total_seconds()},
        )
        return _clock_state(clock)

    return router


# -- health, readiness, metrics -------------------------------------------------------------------


class Health(BaseModel):
    status: str = Field(examples=["ok"])
    service: str = Field(examples=["profile"])


class Readiness(BaseModel):
    status: str = Field(examples=["ready"])
    checks: dict[str, str] = Field(examples=[{"database": "up", "kafka": "up"}])


def ops_router(runtime: RuntimeLike, service: str) -> APIRouter:
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
            raise Problem(503, "Not ready", down, headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
                          extensions={"checks": checks})
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


# -- OpenAPI: errors are problem+json -------------------------------------------------------------

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": ProblemDetails, "description": "Client error (RFC 9457 problem details)."},
    "5XX": {
        "model": ProblemDetails,
        "description": "Server error, or a dependency unavailable (503 with Retry-After).",
    },
}


def _problem_json_in_openapi(schema: dict[str, Any]) -> None:
    """Error responses are documented as `application/problem+json` with the ProblemDetails schema."""
    ref = {"$ref": "#/components/schemas/ProblemDetails"}
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict):
                continue
            for code, response in operation.get("responses", {}).items():
                if not (str(code)[:1] in ("4", "5") or code == "default"):
                    continue
                content = response.get("content") or {}
                json_schema = (content.pop("application/json", None) or {}).get("schema") or {}
                if PROBLEM_JSON not in content:
                    content[PROBLEM_JSON] = {"schema": json_schema if json_schema.get("$ref") == ref["$ref"]
                                             else ref}
                response["content"] = content
    components = schema.get("components", {}).get("schemas", {})
    text = str(schema.get("paths", {}))
    for unused in ("HTTPValidationError", "ValidationError"):
        if unused in components and f"/{unused}'" not in text:
            del components[unused]
    if "ProblemDetails" not in components:
        components["ProblemDetails"] = ProblemDetails.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )


# -- the factory -----------------------------------------------------------------------------------


def create_service_app(
    runtime: RuntimeLike,
    routers: Sequence[APIRouter],
    *,
    title: str,
    description: str,
    version: str = "1",
    configure_logs: bool = True,
) -> FastAPI:
    """The service's FastAPI app. Its lifespan runs `runtime.start()` and `runtime.stop()`.

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

    app.add_exception_handler(Problem, _problem_handler)
    app.add_exception_handler(StarletteHTTPException, _http_exception_handler)
    app.add_exception_handler(RequestValidationError, _validation_handler)
    for exc_type in outage_exception_types():
        app.add_exception_handler(exc_type, _outage_handler)
    concurrency = _concurrency_handler()
    if concurrency is not None:
        app.add_exception_handler(*concurrency)
    app.add_exception_handler(Exception, _unhandled_handler)
    app.add_middleware(RequestContextMiddleware, service=service)

    app.include_router(ops_router(runtime, service), responses=ERROR_RESPONSES)
    app.include_router(asyncapi_router(service), responses=ERROR_RESPONSES)
    if not settings.is_production:
        app.include_router(clock_router(runtime.clock), responses=ERROR_RESPONSES)
    for router in routers:
        app.include_router(router, responses=ERROR_RESPONSES)

    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _problem_json_in_openapi(generate())
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app

