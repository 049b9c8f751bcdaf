"""How many requests a process works on at once: the rest wait their turn, in order, or are turned away.

An event loop runs, in one turn, every callback that was ready when the turn began. Under load that is
many requests' next steps: when the process gets its core back after a moment without it, or after a
collection, every request whose database answer arrived meanwhile is ready at once, and the loop runs
all of them before it looks at its timers or its sockets again. At 200 PUT/s on the profile service
(`bench.loop_stretches`) the busiest turns ran 21-32 callbacks, none over 2.5 ms, 15-21 ms of CPU in
all: a queue inside one turn, during which nothing else (a read, a health check, the relay) moves.

`AdmissionLimit` lets at most `limit` requests past it at once; the next ones wait on a semaphore, in
arrival order, having done no more than parse their request line and headers. So a turn holds at most
`limit` requests' steps, and what waits is visible (`ee_http_requests_waiting`) rather than hidden in
the loop. Throughput is the same (the work was queued anyway), memory stays bounded, and when more
than `max_waiting` wait, a request is answered at once with 503 problem+json and `Retry-After`, before
anything of it is accepted: nothing is lost, a client retries (with its Idempotency-Key for a write).

Probes (`/healthz`, `/readyz`, `/metrics`) are never held back: they say how the process is, and
they must answer while it is busy.
"""

from __future__ import annotations

import asyncio
from typing import Final

from prometheus_client import Gauge
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.problem import Problem
from shared.web.errors import problem_response
from shared.web.middleware import PROBE_PATHS

__all__ = ["RETRY_AFTER_S", "AdmissionLimit"]

RETRY_AFTER_S: Final = 1

HTTP_IN_PROGRESS = Gauge("ee_http_requests_in_progress", "HTTP requests being worked on", ["service"])
HTTP_WAITING = Gauge("ee_http_requests_waiting", "HTTP requests waiting for their turn", ["service"])


class AdmissionLimit:
    """At most `limit` requests in progress; at most `max_waiting` waiting, beyond which 503."""

    def __init__(self, app: ASGIApp, service: str, limit: int, max_waiting: int) -> None:
        if limit < 1 or max_waiting < 0:
            raise ValueError("limit must be at least 1 and max_waiting at least 0")
        self.app = app
        self.max_waiting = max_waiting
        self._free = asyncio.Semaphore(limit)
        self._waiting = 0
        self._in_progress = HTTP_IN_PROGRESS.labels(service)
        HTTP_WAITING.labels(service).set_function(lambda: self._waiting)  # read at scrape time

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in PROBE_PATHS:
            await self.app(scope, receive, send)
            return
        if self._waiting >= self.max_waiting and self._free.locked():  # the count first: locked() scans
            await self._turn_away(scope, receive, send)
            return
        self._waiting += 1
        try:
            await self._free.acquire()
        finally:
            self._waiting -= 1
        self._in_progress.inc()
        try:
            await self.app(scope, receive, send)
        finally:
            self._in_progress.dec()
            self._free.release()

    async def _turn_away(self, scope: Scope, receive: Receive, send: Send) -> None:
        busy = Problem(
            503,
            "Service busy",
            f"{self.max_waiting} requests are already waiting here; nothing of this one was accepted. "
            f"Retry after {RETRY_AFTER_S} s (a write with the same Idempotency-Key).",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )
        response = problem_response(Request(scope), busy)
        await response(scope, receive, send)
