"""`shared.web.admission` in a service app (httpx.ASGITransport): how many requests run at once, in
what order the others get their turn, and what a request beyond the waiting room is told."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi import APIRouter

from shared.tests.fake_runtime import FakeRuntime, FakeSettings, client, make_app
from shared.web import PROBLEM_JSON
from shared.web.admission import RETRY_AFTER_S, AdmissionLimit


class Gate:
    """Requests that enter and then wait until the test lets them finish."""

    def __init__(self) -> None:
        self.entered: list[int] = []
        self.running = 0
        self.most_running = 0
        self.open = asyncio.Event()

    async def through(self, n: int) -> dict[str, int]:
        self.entered.append(n)
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            await self.open.wait()
            if n < 0:
                raise RuntimeError("this request fails")
            return {"n": n}
        finally:
            self.running -= 1


def gated_app(limit: int, waiting: int) -> tuple[Any, Gate]:
    gate = Gate()
    router = APIRouter()

    @router.get("/v1/gated/{n}")
    async def gated(n: int) -> dict[str, int]:
        return await gate.through(n)

    settings = FakeSettings(requests_in_progress=limit, requests_waiting_max=waiting)
    app, _ = make_app(router, runtime=FakeRuntime(settings=settings))
    return app, gate


async def within(awaitable: Any) -> Any:
    """Await with a bound, so a limiter that lets too much through fails the test instead of hanging it."""
    return await asyncio.wait_for(awaitable, 5)


async def settle() -> None:
    """Let every request sent so far reach the gate or the waiting room."""
    for _ in range(50):
        await asyncio.sleep(0)


async def sent(c: Any, path: str) -> asyncio.Task[Any]:
    """A request on its way, having reached the gate or the waiting room."""
    task = asyncio.create_task(c.get(path))
    await settle()
    return task


async def test_at_most_the_limit_run_at_once_and_the_others_follow_in_arrival_order() -> None:
    app, gate = gated_app(limit=2, waiting=100)
    async with client(app) as c:
        requests = [await sent(c, f"/v1/gated/{n}") for n in range(6)]
        assert gate.entered == [0, 1]  # the other four wait, having done nothing of their own
        gate.open.set()
        answers = await within(asyncio.gather(*requests))
    assert [a.json() for a in answers] == [{"n": n} for n in range(6)]
    assert gate.entered == [0, 1, 2, 3, 4, 5]
    assert gate.most_running == 2


async def test_beyond_the_waiting_room_a_request_is_turned_away_with_503_and_retry_after() -> None:
    app, gate = gated_app(limit=1, waiting=2)
    async with client(app) as c:
        # one in progress, two waiting: the room is full
        requests = [await sent(c, f"/v1/gated/{n}") for n in range(3)]
        refused = await within(c.get("/v1/gated/99"))
        assert refused.status_code == 503, refused.text
        assert refused.headers["content-type"] == PROBLEM_JSON
        assert refused.headers["Retry-After"] == str(RETRY_AFTER_S)
        body = refused.json()
        assert body["title"] == "Service busy" and "nothing of this one was accepted" in body["detail"]
        assert body["correlation_id"] == refused.headers["X-Correlation-Id"]
        assert (await within(c.get("/healthz"))).status_code == 200  # probes are never held back
        metrics = (await within(c.get("/metrics"))).text
        assert 'ee_http_requests_waiting{service="testsvc"} 2.0' in metrics
        assert 'ee_http_requests_in_progress{service="testsvc"} 1.0' in metrics
        gate.open.set()
        answers = await within(asyncio.gather(*requests))
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert 99 not in gate.entered


async def test_a_request_that_fails_gives_its_turn_back() -> None:
    app, gate = gated_app(limit=1, waiting=10)
    async with client(app) as c:
        failing = await sent(c, "/v1/gated/-1")
        after = await sent(c, "/v1/gated/7")
        assert gate.entered == [-1]
        gate.open.set()
        assert (await within(failing)).status_code == 500
        assert (await within(after)).json() == {"n": 7}


async def test_a_client_that_goes_away_while_waiting_leaves_the_room() -> None:
    app, gate = gated_app(limit=1, waiting=1)
    async with client(app) as c:
        first = await sent(c, "/v1/gated/1")
        gone = await sent(c, "/v1/gated/2")
        gone.cancel()
        await settle()
        later = await sent(c, "/v1/gated/3")  # the room has space again
        gate.open.set()
        assert (await within(first)).status_code == 200
        assert (await within(later)).json() == {"n": 3}
    assert gate.entered == [1, 3]


def test_the_limits_must_make_sense() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None: ...

    with pytest.raises(ValueError):
        AdmissionLimit(app, "x", limit=0, max_waiting=1)
    with pytest.raises(ValueError):
        AdmissionLimit(app, "x", limit=1, max_waiting=-1)
