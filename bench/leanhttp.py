"""A lean HTTP/1.1 client for the bench's GET reads: measurement apparatus whose own cost is small.

The bench times `GET /v1/pool/candidates/{id}` from a client on the same 2 cores as the services. An
httpx `AsyncClient` spends several hundred µs of CPU per request (request and response models,
header normalisation, the connection pool's bookkeeping, anyio), and with 8 requests in flight its
event loop handles the answers one after the other: the figure then measures the client as much as
the server. A partner's client is not the server's latency. This client does only what a read needs:

- one keep-alive connection per in-flight slot (`LeanReads(slots=8)`: a slot takes an idle
  connection and gives it back), opened on the first request and kept until `close()`;
- the request's bytes built once per path (`request_bytes`), written as they are;
- the answer parsed by httptools (the C parser uvicorn uses): status, body, keep-alive;
- every answer checked: a status other than the expected one, a body `check` refuses, a connection
  closed before or while answering, a timeout or an unparsable answer is an error, counted by kind
  (`errors`), and the slot opens a new connection for its next request (`connections_opened`).

`LeanReads.get(path)` returns True when the answer was the expected one and never raises for a
failed request: the runners of `bench.latency` count a False as an error, as they count httpx's.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Final, cast

import httptools

__all__ = ["ConnectionClosed", "LeanReads", "request_bytes"]

Check = Callable[[str, bytes], bool]
"""Is this body the right answer to this path? (the path, the body)"""

USER_AGENT: Final = b"ee-bench-lean/1"


class ConnectionClosed(ConnectionError):
    """The server closed the connection before the answer was complete."""


def request_bytes(host: str, port: int, path: str, headers: dict[str, str]) -> bytes:
    """The whole `GET path HTTP/1.1` request (keep-alive is HTTP/1.1's default)."""
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Accept: */*",
        f"User-Agent: {USER_AGENT.decode()}",
    ]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    for line in lines:
        if "\r" in line or "\n" in line:
            raise ValueError(f"a header or path with a line break: {line!r}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class _Connection(asyncio.Protocol):
    """One TCP connection, one request at a time; httptools calls the `on_*` methods."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[tuple[int, bytes, bool]] | None = None
        self.chunks: list[bytes] = []
        self.closed = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not asyncio's class

    def data_received(self, data: bytes) -> None:
        if self.waiter is None or self.waiter.done():  # bytes nobody asked for: the stream is broken
            self._fail(ConnectionError(f"{len(data)} unexpected bytes from the server"))
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(exc)

    def eof_received(self) -> bool | None:
        return None  # close the transport: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(ConnectionClosed(f"closed before the answer was complete ({exc!r})"))

    # httptools
    def on_message_begin(self) -> None:
        self.chunks = []

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            body = self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)
            waiter.set_result((self.parser.get_status_code(), body, self.parser.should_keep_alive()))

    def _fail(self, exc: Exception) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self.close()

    # the client's side
    def send(self, request: bytes) -> asyncio.Future[tuple[int, bytes, bool]]:
        """Write `request`; the future completes with (status, body, keep-alive) or an exception."""
        if self.closed or self.transport is None or self.transport.is_closing():
            raise ConnectionClosed("the connection was closed before the request")
        self.waiter = self.loop.create_future()
        self.transport.write(request)
        return self.waiter

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class LeanReads:
    """GETs on one server over `slots` keep-alive connections; answers checked, errors counted.

    `check(path, body)` decides whether a 200's body is the right answer (e.g. the candidate asked
    for); without it any body of the expected status is right.
    """

    def __init__(
        self,
        host: str,
        port: int,
        headers: dict[str, str],
        *,
        slots: int,
        check: Check | None = None,
        expect_status: int = 200,
        timeout_s: float = 30.0,
    ) -> None:
        self.host, self.port = host, port
        self.headers = dict(headers)
        self.slots = max(1, slots)
        self.check = check
        self.expect_status = expect_status
        self.timeout_s = timeout_s
        self.errors: Counter[str] = Counter()  # kind -> count
        self.examples: list[str] = []  # the first few errors, as text
        self.connections_opened = 0
        self.closed_while_idle = 0  # connections the server closed between two requests
        self.requests = 0
        self._idle: list[_Connection | None] = [None] * self.slots  # a slot without a connection yet
        self._requests: dict[str, bytes] = {}

    def request_for(self, path: str) -> bytes:
        request = self._requests.get(path)
        if request is None:
            request = self._requests[path] = request_bytes(self.host, self.port, path, self.headers)
        return request

    async def get(self, path: str) -> bool:
        """One GET on an idle slot's connection; True when the answer is the expected one."""
        if not self._idle:
            raise RuntimeError(f"more requests in flight than the {self.slots} slots")
        connection = self._idle.pop()
        self.requests += 1
        kept: _Connection | None = None  # what goes back to the slot
        try:
            if connection is not None and connection.closed:
                self.closed_while_idle += 1  # reported, not an error: the request goes on a new one
                connection = None
            if connection is None:
                connection = await self._open()
            status, body, keep_alive = await self._exchange(connection, self.request_for(path))
            if keep_alive:
                kept = connection
            else:  # the server said Connection: close: the slot's next request opens another
                connection.close()
        except ConnectionClosed as exc:
            return self._error("closed", f"GET {path}: {exc}")
        except TimeoutError:
            if connection is not None:
                connection.close()
            return self._error("timeout", f"GET {path}: no answer within {self.timeout_s:g} s")
        except (OSError, httptools.HttpParserError) as exc:
            if connection is not None:
                connection.close()
            return self._error(type(exc).__name__, f"GET {path}: {exc!r}")
        finally:
            self._idle.append(kept)
        if status != self.expect_status:
            return self._error(f"status {status}", f"GET {path}: {status} {body[:200]!r}")
        if self.check is not None and not self.check(path, body):
            return self._error("body", f"GET {path}: unexpected body {body[:200]!r}")
        return True

    async def _open(self) -> _Connection:
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(lambda: _Connection(loop), self.host, self.port)
        self.connections_opened += 1
        return connection

    async def _exchange(self, connection: _Connection, request: bytes) -> tuple[int, bytes, bool]:
        waiter = connection.send(request)
        timer = connection.loop.call_later(self.timeout_s, _expire, waiter)
        try:
            return await waiter
        finally:
            timer.cancel()
            connection.waiter = None

    def _error(self, kind: str, text: str) -> bool:
        self.errors[kind] += 1
        if len(self.examples) < 5:
            self.examples.append(text)
        return False

    def figures(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "connections_opened": self.connections_opened,
            "closed_while_idle": self.closed_while_idle,
            "error_kinds": dict(self.errors),
            "error_examples": list(self.examples),
        }

    async def close(self) -> None:
        for connection in self._idle:
            if connection is not None:
                connection.close()
        self._idle = [None] * self.slots
        await asyncio.sleep(0)  # let the transports finish closing


def _expire(waiter: asyncio.Future[tuple[int, bytes, bool]]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())
