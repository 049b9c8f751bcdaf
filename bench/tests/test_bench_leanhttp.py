"""The bench's lean read client (`bench.leanhttp`) and the reads built on it (`bench.latency`), against
real servers on loopback: a uvicorn app, and a bare asyncio server for what a well-behaved server
does not do (close a connection, stay silent). Every failure must be counted, never taken for an
answer: a status other than 200, the body of another candidate, a closed connection, a timeout."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
import uvicorn

from bench.latency import (
    ReadsPlan,
    TrackedProfile,
    candidate_check,
    measure_reads,
    measure_update_visibility,
    run_concurrent,
    run_sequential,
)
from bench.leanhttp import LeanReads, request_bytes
from bench.run import budget_rows

TOKEN = "t0ken"
CANDIDATES = {  # id -> (crs, submitted_at), as the pool's rows give them
    "a": (471, "2025-09-01T10:00:00.000001+00:00"),
    "b": (471, "2025-09-01T10:00:00.000002+00:00"),  # same CRS as "a": only the instant tells them apart
    "c": (503, "2026-01-15T08:30:00.250000+00:00"),
}


@dataclass
class Seen:
    """What the app saw: the client address of each request, and the PUTs' correlation ids."""

    clients: list[tuple[str, int]] = field(default_factory=list)
    headers: list[dict[bytes, bytes]] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)  # the PUTs'
    on_put: Callable[[str, str], None] | None = None
    put_delay_s: float = 0.0


def candidate_app(seen: Seen) -> Any:
    """GET /v1/pool/candidates/{id} as ranking answers it (no profile id in the body); `wrong-X`
    answers X's body for another id, `gone` is a 404, `bye` answers with Connection: close. PUT
    /v1/profiles/{id} answers 200 with the next ETag and tells `seen.on_put`."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        seen.clients.append(tuple(scope["client"]))
        headers = dict(scope["headers"])
        seen.headers.append(headers)
        path: str = scope["path"]
        extra: list[tuple[bytes, bytes]] = []
        if scope["method"] == "PUT":
            chunks = []
            while True:
                message = await receive()
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    break
            seen.bodies.append(b"".join(chunks))
            await asyncio.sleep(seen.put_delay_s)
            version = int(headers[b"if-match"].strip(b'"')) + 1
            if seen.on_put is not None:
                seen.on_put(path.rsplit("/", 1)[1], headers[b"x-correlation-id"].decode())
            status, body = 200, b"{}"
            extra.append((b"etag", f'"{version}"'.encode()))
        elif headers.get(b"authorization") != f"Bearer {TOKEN}".encode():
            status, body = 401, b'{"detail":"no token"}'
        else:
            profile_id = path.removeprefix("/v1/pool/candidates/")
            if profile_id == "bye":
                profile_id = "a"
                extra.append((b"connection", b"close"))
            answer_for = profile_id.removeprefix("wrong-")
            if answer_for not in CANDIDATES:
                status, body = 404, b'{"detail":"not in the pool"}'
            else:
                crs, at = CANDIDATES[answer_for]
                status = 200
                body = orjson.dumps(
                    {
                        "crs": crs,
                        "breakdown": {},
                        "rank": 1,
                        "pool_size": 3,
                        "submitted_at": at,
                        "programs": [],
                        "categories": [],
                    }
                )
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), *extra],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


@pytest.fixture
async def server() -> AsyncIterator[tuple[int, Seen]]:
    seen = Seen()
    config = uvicorn.Config(
        candidate_app(seen), host="127.0.0.1", port=0, log_level="warning", lifespan="off", access_log=False
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 (uvicorn sets a flag, no event)
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield port, seen
    finally:
        server.should_exit = True
        await task


def check() -> Callable[[str, bytes], bool]:
    ids = list(CANDIDATES)
    return candidate_check(ids, [CANDIDATES[i] for i in ids])


def lean(port: int, slots: int = 1, **kwargs: Any) -> LeanReads:
    return LeanReads(
        "127.0.0.1", port, {"Authorization": f"Bearer {TOKEN}"}, slots=slots, check=check(), **kwargs
    )


def path(profile_id: str) -> str:
    return f"/v1/pool/candidates/{profile_id}"


async def test_keep_alive_one_connection_per_slot_and_every_answer_checked(server: tuple[int, Seen]) -> None:
    port, seen = server
    client = lean(port, slots=4)
    ids = ["a", "b", "c"]
    result = await run_concurrent(lambda i: client.get(path(ids[i % 3])), 300, 4, limit_s=30)
    await client.close()
    assert result.errors == 0 and result.summary is not None and result.summary.count == 300
    assert client.connections_opened == 4 and client.requests == 300
    assert len(set(seen.clients)) == 4  # the server saw four connections, whatever the order of slots
    assert seen.headers[0][b"authorization"] == f"Bearer {TOKEN}".encode()
    assert client.figures()["error_kinds"] == {}


async def test_a_status_other_than_200_is_an_error(server: tuple[int, Seen]) -> None:
    port, _ = server
    client = lean(port)
    result = await run_sequential(lambda i: client.get(path(["a", "gone"][i % 2])), 10, limit_s=30)
    unauthorised = LeanReads("127.0.0.1", port, {}, slots=1)
    assert not await unauthorised.get(path("a"))
    await client.close()
    await unauthorised.close()
    assert result.errors == 5 and client.errors == {"status 404": 5}
    assert unauthorised.errors == {"status 401": 1}
    assert client.connections_opened == 1  # a 404 keeps the connection


async def test_the_body_of_another_candidate_is_an_error(server: tuple[int, Seen]) -> None:
    port, _ = server
    client = lean(port)
    assert await client.get(path("a"))
    assert not await client.get(path("wrong-b"))  # "b"'s answer: same CRS, another instant
    assert not await client.get(path("wrong-c"))
    await client.close()
    assert client.errors == {"body": 2}
    tell = check()
    assert not tell(path("a"), b"not json") and not tell(path("a"), b'{"crs": 471}')
    assert not tell(path("zzz"), b"{}")  # an id nobody expects


async def test_connection_close_from_the_server_opens_a_new_one_without_error(
    server: tuple[int, Seen],
) -> None:
    port, seen = server
    client = LeanReads("127.0.0.1", port, {"Authorization": f"Bearer {TOKEN}"}, slots=1)
    assert await client.get(path("bye"))
    assert await client.get(path("a"))
    await client.close()
    assert client.connections_opened == 2 and not client.errors
    assert len(set(seen.clients)) == 2


@pytest.fixture
async def rude_server() -> AsyncIterator[tuple[int, list[str]]]:
    """A bare server: `/answer-then-close` answers with keep-alive and then closes the connection,
    `/silent` never answers, anything else is closed unanswered."""
    log: list[str] = []
    ok = orjson.dumps({"crs": 471, "submitted_at": CANDIDATES["a"][1]})

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        target = head.split(b" ", 2)[1].decode()
        log.append(target)
        if target.endswith("/answer-then-close"):
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(ok), ok))
            await writer.drain()
        elif target.endswith("/silent"):
            await asyncio.sleep(5)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], log
    finally:
        server.close()


async def test_a_connection_closed_before_the_answer_is_reported(rude_server: tuple[int, list[str]]) -> None:
    port, log = rude_server
    client = LeanReads("127.0.0.1", port, {}, slots=1)
    assert not await client.get("/closed")
    assert not await client.get("/closed")  # the slot opened a new connection for it
    await client.close()
    assert client.errors == {"closed": 2} and client.connections_opened == 2
    assert "closed before the answer" in client.examples[0]
    assert log == ["/closed", "/closed"]


async def test_a_connection_closed_while_idle_is_counted_and_replaced(
    rude_server: tuple[int, list[str]],
) -> None:
    port, _ = rude_server
    client = LeanReads("127.0.0.1", port, {}, slots=1)
    assert await client.get("/answer-then-close")
    await asyncio.sleep(0.1)  # the server's close arrives while the connection is idle
    assert await client.get("/answer-then-close")
    await client.close()
    assert not client.errors and client.closed_while_idle == 1 and client.connections_opened == 2


async def test_no_answer_in_time_is_a_timeout(rude_server: tuple[int, list[str]]) -> None:
    port, _ = rude_server
    client = LeanReads("127.0.0.1", port, {}, slots=1, timeout_s=0.2)
    started = time.perf_counter()
    assert not await client.get("/silent")
    assert time.perf_counter() - started < 2
    await client.close()
    assert client.errors == {"timeout": 1}


async def test_nothing_listening_is_an_error() -> None:
    with __import__("socket").socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: the connection is refused
        client = LeanReads("127.0.0.1", port, {}, slots=1)
        assert not await client.get("/x")
    assert client.errors == {"ConnectionRefusedError": 1}


def test_a_request_with_a_line_break_in_a_header_is_refused() -> None:
    assert request_bytes("h", 1, "/p", {"A": "b"}).endswith(b"\r\nA: b\r\n\r\n")
    with pytest.raises(ValueError):
        request_bytes("h", 1, "/p", {"A": "b\r\nX-Evil: 1"})


async def test_measure_reads_gives_both_clients_with_their_cpu_and_counts_wrong_bodies(
    server: tuple[int, Seen],
) -> None:
    port, _ = server
    ids = ["a", "b", "c"]
    expected = [CANDIDATES[i] for i in ids]
    plan = ReadsPlan(
        url=f"http://127.0.0.1:{port}",
        token=TOKEN,
        ids=ids,
        count=60,
        concurrency=3,
        lead_s=0,
        part_s=20,
        expected=expected,
        server_pid=os.getpid(),
        warmup=5,
    )
    figures = await measure_reads(plan)
    for kind in ("lean", "httpx"):
        for part in ("sequential", "concurrent"):
            run = figures[kind][part]
            assert run["client"] == kind and run["count"] == 60 and run["errors"] == 0, run
            assert run["client_cpu_us_per_request"] > 0 and run["server_cpu_us_per_request"] is not None
    assert figures["lean"]["concurrent"]["connections_opened"] == 3
    assert figures["lean"]["concurrent"]["concurrency"] == 3
    # "b" expected with "a"'s instant: every answer for "b" (a third) is an error, in both clients
    wrong = ReadsPlan(
        **{
            **plan.__dict__,
            "expected": [expected[0], expected[0], expected[2]],
            "server_pid": None,
            "warmup": 0,
        }
    )
    figures = await measure_reads(wrong)
    for kind in ("lean", "httpx"):
        assert figures[kind]["sequential"]["errors"] == 20 and figures[kind]["concurrent"]["errors"] == 20
    assert figures["lean"]["sequential"]["error_kinds"] == {"body": 20}


def test_the_table_holds_the_lean_figures_to_the_target_and_shows_httpx_for_reference() -> None:
    def run(p99: float, client_us: float, server_us: float | None = None) -> dict[str, Any]:
        figures = {
            "count": 5000,
            "p50_ms": 1.0,
            "p99_ms": p99,
            "errors": 0,
            "per_second": 4000.0,
            "concurrency": 8,
            "client_cpu_us_per_request": client_us,
            "loadavg_before": [1.5],
        }
        if server_us is not None:
            figures["server_cpu_us_per_request"] = server_us
        return figures

    reads = {
        "sequential": run(1.2, 110, 260),
        "concurrent": run(4.1, 80, 190),
        "httpx": {"sequential": run(3.0, 1061, 496), "concurrent": run(55.9, 1006, 394)},
    }
    loaded = {
        "sequential": run(4.0, 120),
        "concurrent": run(9.0, 90),
        "httpx": {"sequential": run(17.0, 1100), "concurrent": run(86.0, 1000)},
    }
    rows = {
        r.what: r
        for r in budget_rows(
            {
                "candidate": reads,
                "candidate_under_load": loaded,
                "update_visible": {"achieved_rate_per_s": 199.9},
            }
        )
    }
    lean_concurrent = rows["GET /v1/pool/candidates/{id}, 8 in flight"]
    assert lean_concurrent.meets is True and lean_concurrent.target == "p99 ≤ 5 ms"
    assert "client CPU 80 µs/request, ranking CPU 190 µs/request" in lean_concurrent.measured
    assert "4,000 requests/s" in lean_concurrent.measured
    reference = rows["GET /v1/pool/candidates/{id}, 8 in flight, httpx client, for reference"]
    assert reference.meets is None and reference.target == "—"
    assert "client CPU 1,006 µs/request, ranking CPU 394 µs/request" in reference.measured
    during = "while 199.9 updates/s are applied"
    loaded_row = rows[f"GET /v1/pool/candidates/{{id}}, 8 in flight, {during}"]
    assert loaded_row.target == "p99 ≤ 10 ms" and loaded_row.meets is True
    assert "client CPU 90 µs/request" in loaded_row.measured and "ranking CPU" not in loaded_row.measured
    assert (
        rows[f"GET /v1/pool/candidates/{{id}}, sequential, {during}, httpx client, for reference"].meets
        is None
    )


class FakeTail:
    """What measure_update_visibility needs of a RankedTail: the app calls `on_ranked` itself."""

    def __init__(self) -> None:
        self.on_ranked: Callable[[str, str | None, float], None] | None = None

    def failure(self) -> BaseException | None:
        return None


async def test_updates_go_over_at_most_in_flight_connections_and_each_is_seen(
    server: tuple[int, Seen],
) -> None:
    port, seen = server
    tail = FakeTail()
    seen.put_delay_s = 0.02  # answers slower than they are sent: PUTs wait for a free connection
    seen.on_put = lambda subject, correlation: (
        tail.on_ranked and tail.on_ranked(subject, correlation, time.time())
    )
    profiles = [TrackedProfile(f"p{i}", {"sibling_in_canada": False}, 1) for i in range(20)]
    run = await measure_update_visibility(
        f"http://127.0.0.1:{port}",
        "tok",
        profiles,
        tail,  # type: ignore[arg-type]
        rate=200,
        duration_s=0.5,
        settle_s=5,
        in_flight=3,
    )
    assert run.sent == 100 - run.skipped and run.accepted == run.sent and run.rejected_count == 0
    assert run.not_visible == 0 and len(run.visible_ms) == run.accepted
    # Half a second of sends: every accepted update in the timeline, in second 0, none unseen.
    assert [row["second"] for row in run.per_second()] == [0]
    assert run.per_second()[0]["accepted"] == run.accepted and len(run.timeline) == run.accepted
    assert all(visible is not None and put > 0 for _, put, visible in run.timeline)
    assert len(set(seen.clients)) == 3  # three connections, each reused
    assert all(p.version > 1 for p in profiles)  # the answers' ETags were read
    first = seen.headers[0]
    assert first[b"authorization"] == b"Bearer tok" and first[b"if-match"] == b'"1"'
    assert first[b"content-type"] == b"application/json"
    assert orjson.loads(seen.bodies[0]) == {"sibling_in_canada": True}  # the document, toggled


async def test_a_profile_waits_for_its_ranked_so_coalesced_updates_are_all_seen(
    server: tuple[int, Seen],
) -> None:
    """Ranking applies a batch at a time and publishes one Ranked per profile, continuing the batch's
    last correlation id for it. A profile given back on its PUT's answer gets a second update into the
    same batch, and the first is then never seen: the profile must wait for its Ranked."""

    port, seen = server
    tail = FakeTail()
    batch: dict[str, str] = {}  # profile id -> the latest correlation id of the batch being read
    seen.on_put = lambda subject, correlation: batch.__setitem__(subject, correlation)

    async def apply_batches() -> None:
        while True:
            await asyncio.sleep(0.05)
            applied = dict(batch)
            batch.clear()
            for subject, correlation in applied.items():
                assert tail.on_ranked is not None
                tail.on_ranked(subject, correlation, time.time())

    applying = asyncio.create_task(apply_batches())
    profiles = [TrackedProfile(f"p{i}", {"sibling_in_canada": False}, 1) for i in range(4)]
    try:
        run = await measure_update_visibility(
            f"http://127.0.0.1:{port}", "tok", profiles, tail,  # type: ignore[arg-type]
            rate=200, duration_s=0.5, settle_s=5, in_flight=4,
        )  # fmt: skip
    finally:
        applying.cancel()
    assert run.accepted > 0 and run.rejected_count == 0
    assert run.not_visible == 0 and len(run.visible_ms) == run.accepted
    assert run.skipped == run.planned - run.sent > 0  # four profiles cannot take 200 updates/s here
