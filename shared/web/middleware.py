"""Per request: the correlation id in and out, HTTP metrics, an access log line, the last-resort 500.

`X-Correlation-Id` is read (or generated) per request, put in `shared.context` for the events and
logs the request causes, and echoed in the response. Requests are counted and timed by route
template and status (`ee_http_requests_total`, `ee_http_request_duration_seconds`).
"""

from __future__ import annotations

import logging
import re
import uuid
from time import perf_counter

from fastapi import Request
from prometheus_client import Counter, Histogram
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared import context
from shared.web.errors import unhandled_error

__all__ = ["CORRELATION_HEADER", "PROBE_PATHS", "RequestContextMiddleware"]

log = logging.getLogger(__name__)

CORRELATION_HEADER = "X-Correlation-Id"
PROBE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
_CORRELATION_RE = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")

HTTP_REQUESTS = Counter("ee_http_requests", "HTTP requests served", ["service", "method", "route", "status"])
HTTP_LATENCY = Histogram(
    "ee_http_request_duration_seconds",
    "HTTP request latency, from the first byte in to the last byte out",
    ["service", "method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


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
            await (await unhandled_error(Request(scope), exc))(scope, receive, send_with_id)
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
