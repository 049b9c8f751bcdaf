"""A lean HTTP/1.1 client for the bench's requests: measurement apparatus whose own cost is small.

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

`LeanClient`, which `LeanReads` is, sends any method with an optional JSON body (the bench's PUTs and
POSTs at 100s per second, where httpx's own CPU would take a share of the 2 cores from the services it
measures): `request(method, path, body=..., headers=...)` waits for a free slot (in order), returns an
`Answer` (status, body, the headers named in `keep_headers`) and raises `RequestFailed(kind)` when no
complete answer came.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Final, cast

import httptools

__all__ = ["Answer", "ConnectionClosed", "LeanClient", "LeanReads", "RequestFailed", "request_bytes"]

Check = Callable[[str, bytes], bool]
"""Is this body the right answer to this path? (the path, the body)"""

USER_AGENT: Final = b"ee-bench-lean/1"

Exchange = tuple[int, bytes, bool, dict[str, str]]
"""A complete answer as the parser gives it: status, body, keep-alive, kept headers."""


class ConnectionClosed(ConnectionError):
    """The server closed the connection before the answer was complete."""


class RequestFailed(Exception):
    """No complete answer: `kind` is what went wrong (closed, timeout, an exception's name)."""

    def __init__(self, kind: str, text: str) -> None:
        super().__init__(text)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes
    headers: dict[str, str]  # the kept ones, by lower-case name


def request_bytes(
    host: str,
    port: int,
    path: str,
    headers: Mapping[str, str],
    *,
    method: str = "GET",
    body: bytes | None = None,
) -> bytes:
    """The whole `method path HTTP/1.1` request (keep-alive is HTTP/1.1's default); a body is JSON."""
    lines = [
        f"{method} {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Accept: */*",
        f"User-Agent: {USER_AGENT.decode()}",
    ]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    elif method != "GET":
        lines.append("Content-Length: 0")
    lines += [f"{name}: {value}" for name, value in headers.items()]
    for line in lines:
        if "\r" in line or "\n" in line:
            raise ValueError(f"a header or path with a line break: {line!r}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if body is None else head + body


class _Connection(asyncio.Protocol):
    """One TCP connection, one request at a time; httptools calls the `on_*` methods."""

    def __init__(self, loop: asyncio.AbstractEventLoop, keep_headers: frozenset[bytes]) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[Exchange] | None = None
        self.chunks: list[bytes] = []
        self.keep_headers = keep_headers
        self.headers: dict[str, str] = {}
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
        self.headers = {}

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.keep_headers and (lower := name.lower()) in self.keep_headers:
            self.headers[lower.decode("latin-1")] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            body = self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)
            parser = self.parser
            waiter.set_result((parser.get_status_code(), body, parser.should_keep_alive(), self.headers))

    def _fail(self, exc: Exception) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self.close()

    # the client's side
    def send(self, request: bytes) -> asyncio.Future[Exchange]:
        """Write `request`; the future completes with (status, body, keep-alive, headers) or an exception."""
        if self.closed or self.transport is None or self.transport.is_closing():
            raise ConnectionClosed("the connection was closed before the request")
        self.waiter = self.loop.create_future()
        self.transport.write(request)
        return self.waiter

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class LeanClient:
    """Requests to one server over `slots` keep-alive connections, one request per connection at a time;
    a request with no slot free waits for one, in order. Failures are counted by kind (`errors`)."""

    def __init__(
        self,
        host: str,
        port: int,
        headers: Mapping[str, str],
        *,
        slots: int,
        timeout_s: float = 30.0,
        keep_headers: Collection[str] = (),
    ) -> None:
        self.host, self.port = host, port
        self.headers = dict(headers)
        self.slots = max(1, slots)
        self.timeout_s = timeout_s
        self.keep_headers = frozenset(name.lower().encode("latin-1") for name in keep_headers)
        self.errors: Counter[str] = Counter()  # kind -> count
        self.examples: list[str] = []  # the first few errors, as text
        self.connections_opened = 0
        self.closed_while_idle = 0  # connections the server closed between two requests
        self.requests = 0
        self._idle: asyncio.Queue[_Connection | None] = asyncio.Queue()
        for _ in range(self.slots):
            self._idle.put_nowait(None)  # a slot without a connection yet
        self._requests: dict[str, bytes] = {}

    def request_for(self, path: str) -> bytes:
        """The GET of `path` with the client's headers, built once."""
        request = self._requests.get(path)
        if request is None:
            request = self._requests[path] = request_bytes(self.host, self.port, path, self.headers)
        return request

    async def request(
        self, method: str, path: str, *, body: bytes | None = None, headers: Mapping[str, str] | None = None
    ) -> Answer:
        """One request on a free slot's connection; raises RequestFailed without a complete answer."""
        if method == "GET" and body is None and not headers:
            request = self.request_for(path)
        else:
            merged = {**self.headers, **headers} if headers else self.headers
            request = request_bytes(self.host, self.port, path, merged, method=method, body=body)
        connection = await self._idle.get()
        self.requests += 1
        kept: _Connection | None = None  # what goes back to the slot
        try:
            if connection is not None and connection.closed:
                self.closed_while_idle += 1  # reported, not an error: the request goes on a new one
                connection = None
            if connection is None:
                connection = await self._open()
            status, answer_body, keep_alive, kept_headers = await self._exchange(connection, request)
            if keep_alive:
                kept = connection
            else:  # the server said Connection: close: the slot's next request opens another
                connection.close()
        except ConnectionClosed as exc:
            raise self._failed("closed", f"{method} {path}: {exc}") from exc
        except TimeoutError as exc:
            if connection is not None:
                connection.close()
            raise self._failed("timeout", f"{method} {path}: no answer within {self.timeout_s:g} s") from exc
        except (OSError, httptools.HttpParserError) as exc:
            if connection is not None:
                connection.close()
            raise self._failed(type(exc).__name__, f"{method} {path}: {exc!r}") from exc
        finally:
            self._idle.put_nowait(kept)
        return Answer(status, answer_body, kept_headers)

    async def _open(self) -> _Connection:
        loop = asyncio.get_running_loop()
        keep = self.keep_headers
        _, connection = await loop.create_connection(lambda: _Connection(loop, keep), self.host, self.port)
        self.connections_opened += 1
        return connection

    async def _exchange(self, connection: _Connection, request: bytes) -> Exchange:
        waiter = connection.send(request)
        timer = connection.loop.call_later(self.timeout_s, _expire, waiter)
        try:
            return await waiter
        finally:
            timer.cancel()
            connection.waiter = None

    def _failed(self, kind: str, text: str) -> RequestFailed:
        self._count(kind, text)
        return RequestFailed(kind, text)

    def _count(self, kind: str, text: str) -> None:
        self.errors[kind] += 1
        if len(self.examples) < 5:
            self.examples.append(text)

    def figures(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "connections_opened": self.connections_opened,
            "closed_while_idle": self.closed_while_idle,
            "error_kinds": dict(self.errors),
            "error_examples": list(self.examples),
        }

    async def close(self) -> None:
        while not self._idle.empty():
            connection = self._idle.get_nowait()
            if connection is not None:
                connection.close()
        for _ in range(self.slots):
            self._idle.put_nowait(None)
        await asyncio.sleep(0)  # let the transports finish closing


class LeanReads(LeanClient):
    """GETs on one server over `slots` keep-alive connections; answers checked, errors counted.

    `check(path, body)` decides whether a 200's body is the right answer (e.g. the candidate asked
    for); without it any body of the expected status is right.
    """

    def __init__(
        self,
        host: str,
        port: int,
        headers: Mapping[str, str],
        *,
        slots: int,
        check: Check | None = None,
        expect_status: int = 200,
        timeout_s: float = 30.0,
    ) -> None:
        super().__init__(host, port, headers, slots=slots, timeout_s=timeout_s)
        self.check = check
        self.expect_status = expect_status

    async def get(self, path: str) -> bool:
        """One GET on a free slot's connection; True when the answer is the expected one."""
        try:
            answer = await self.request("GET", path)
        except RequestFailed:
            return False  # counted by the client
        status, body = answer.status, answer.body
        if status != self.expect_status:
            self._count(f"status {status}", f"GET {path}: {status} {body[:200]!r}")
            return False
        if self.check is not None and not self.check(path, body):
            self._count("body", f"GET {path}: unexpected body {body[:200]!r}")
            return False
        return True


def _expire(waiter: asyncio.Future[Exchange]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())
