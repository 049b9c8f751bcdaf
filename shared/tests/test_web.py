"""The web layer in-process (httpx.ASGITransport): problem+json, health, metrics, clock, ETags."""

from __future__ import annotations

import asyncio
import gc
import io
import json
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import asyncpg.exceptions
import fastapi.routing
import pytest
import sqlalchemy.exc
from fastapi import APIRouter, Depends, HTTPException, Response
from pydantic import BaseModel, ConfigDict, Field

from shared import context
from shared.auth import InsecureSecretError, mint_token
from shared.logging import JsonFormatter
from shared.testing import default_collector
from shared.tests.fake_runtime import SECRET, T0, FakeRuntime, FakeSettings, client, make_app
from shared.web import (
    PROBLEM_JSON,
    IfMatch,
    Problem,
    check_version,
    create_service_app,
    etag_header,
    expected_version,
)
from shared.web.app import YOUNG_COLLECTION_THRESHOLD

# -- a small API to exercise the app factory ------------------------------------------------------

router = APIRouter(prefix="/v1")
VERSIONS: dict[str, int] = {}


class Job(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str
    years: int = Field(ge=0, le=60)


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    age: int = Field(ge=17)
    work: list[Job] = []


@router.post("/profiles", status_code=201)
async def create_profile(profile: Profile) -> dict[str, Any]:
    return {"age": profile.age}


@router.get("/items/{item_id}")
async def get_item(item_id: int, limit: int = 10) -> dict[str, Any]:
    return {"id": item_id, "correlation_id": context.correlation_id.get()}


@router.get("/problem")
async def problem() -> None:
    raise Problem(
        409,
        "Profile locked",
        "The profile has an invitation; decline it or apply first.",
        type_="urn:ee:problem:profile-locked",
        headers={"X-Extra": "yes"},
        extensions={"profile_id": "p-1"},
    )


@router.get("/http-exception")
async def http_exception() -> None:
    raise HTTPException(404, "No profile p-404; check the id.")


@router.get("/boom")
async def boom() -> None:
    raise RuntimeError("a bug")


SHUTTING_DOWN = asyncpg.exceptions.CannotConnectNowError("the database system is shutting down")


def _driver_error(cause: Exception) -> Exception:
    """The DBAPI error the asyncpg dialect raises `from` the driver's exception, with its SQLSTATE."""
    error = Exception(f"{type(cause).__name__}: {cause}")
    error.sqlstate = getattr(cause, "sqlstate", None)  # type: ignore[attr-defined]
    error.__cause__ = cause
    return error


def _adapted_error(cause: Exception) -> Exception:
    from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_dbapi

    error = AsyncAdapt_asyncpg_dbapi.Error(str(cause))
    error.__cause__ = cause
    return error


def _raised_during(error: Exception, handling: Exception) -> Exception:
    """`error` as raised inside an `except` block handling `handling` (its implicit `__context__`)."""
    try:
        try:
            raise handling
        except type(handling):
            raise error  # noqa: B904 (the implicit context is the point)
    except type(error) as raised:
        return raised


DB_ERRORS: dict[str, Exception] = {
    "operational": sqlalchemy.exc.OperationalError("SELECT 1", {}, ConnectionRefusedError("refused")),
    "pool-timeout": sqlalchemy.exc.TimeoutError("QueuePool limit reached"),
    "asyncpg": asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"),
    "refused": ConnectionRefusedError(111, "Connect call failed"),
    "timeout": TimeoutError(),
    "multiple": OSError("Multiple exceptions: [Errno 111] Connect call failed ('127.0.0.1', 5432)"),
    # How SQLAlchemy's asyncpg dialect reports a connect while PostgreSQL restarts (was a 500).
    "shutting-down": sqlalchemy.exc.DBAPIError(None, None, _driver_error(SHUTTING_DOWN)),
    # asyncpg's own error on the direct statement path while PostgreSQL restarts (was a 500).
    "admin-shutdown": asyncpg.exceptions.AdminShutdownError(
        "terminating connection due to administrator command"
    ),
    # The dialect's adapter error, unwrapped, from the BEGIN `driver_connection` sends (was a 500).
    "adapted-begin": _adapted_error(
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation")
    ),
    # asyncpg's InterfaceError (not a PostgresError) for a statement on a connection the restarting
    # server closed, on the direct statement path (was a 500 in CI during a PostgreSQL restart).
    "closed-connection": asyncpg.exceptions.InterfaceError("connection is closed"),
    # A pooled connection the restarting server has just failed (asyncpg still consuming the error,
    # state 2), checked out before its socket's end arrived: the BEGIN is refused (was a 500 in an
    # end-to-end PostgreSQL restart).
    "consuming-an-error": _adapted_error(
        asyncpg.exceptions.InternalClientError(
            "cannot switch to state 15; another operation (2) is in progress"
        )
    ),
    # SQLAlchemy refusing the session after its connection died: the outage is only in the chain.
    "after-lost-connection": _raised_during(
        sqlalchemy.exc.PendingRollbackError("Can't reconnect until invalid transaction is rolled back."),
        asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
    ),
}

# Not outages although raised while handling one: a bug in an `except` block stays a bug (500), and
# asyncpg's misuse error says nothing about the server.
NOT_OUTAGES: dict[str, Exception] = {
    "bug-while-handling": _raised_during(KeyError("version"), SHUTTING_DOWN),
    "misuse": asyncpg.exceptions.InterfaceError("cannot perform operation: another operation is in progress"),
}


@router.get("/db/{kind}")
async def db_error(kind: str) -> None:
    if kind == "integrity":
        raise sqlalchemy.exc.IntegrityError("INSERT", {}, Exception("duplicate key"))
    if kind in NOT_OUTAGES:
        raise NOT_OUTAGES[kind]
    raise DB_ERRORS[kind]


@router.get("/concurrent")
async def concurrent() -> None:
    from shared.eventstore import ConcurrencyError

    raise ConcurrencyError("profile-1", 3, 4)


@router.get("/things/{thing_id}")
async def get_thing(thing_id: str, response: Response) -> dict[str, Any]:
    response.headers["ETag"] = etag_header(VERSIONS[thing_id])
    return {"id": thing_id}


@router.put("/things/{thing_id}")
async def put_thing(thing_id: str, expected: IfMatch) -> dict[str, Any]:
    check_version(expected, VERSIONS[thing_id], what="thing")
    VERSIONS[thing_id] += 1
    return {"version": VERSIONS[thing_id]}


@router.delete("/things/{thing_id}")
async def delete_thing(thing_id: str, expected: Annotated[int, Depends(expected_version)]) -> None:
    check_version(expected, VERSIONS[thing_id])


@pytest.fixture
def runtime() -> FakeRuntime:
    return FakeRuntime()


@pytest.fixture
def app(runtime: FakeRuntime) -> Any:
    return make_app(router, runtime=runtime)[0]


def ops_token(role: str = "ops") -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(SECRET, 'alice', role)}"}


def assert_problem(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = resp.json()
    assert body["status"] == status
    assert body["type"].startswith("urn:ee:problem:")
    assert body["title"] and body["detail"]
    assert body["correlation_id"] == resp.headers["X-Correlation-Id"]
    return body


# -- health, readiness, metrics -------------------------------------------------------------------


async def test_healthz(app: Any) -> None:
    async with client(app) as c:
        resp = await c.get("/healthz")
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok", "service": "testsvc"}


async def test_readyz_ready(app: Any) -> None:
    async with client(app) as c:
        resp = await c.get("/readyz")
    assert resp.status_code == 200
    assert resp.json()["checks"] == {"database": "up", "kafka": "up"}


@pytest.mark.parametrize(
    ("db_up", "kafka_up", "named"),
    [(False, True, "database"), (True, False, "Kafka"), (False, False, "database and Kafka")],
)
async def test_readyz_names_what_is_down(
    app: Any, runtime: FakeRuntime, db_up: bool, kafka_up: bool, named: str
) -> None:
    runtime.db_up, runtime.kafka_up = db_up, kafka_up
    async with client(app) as c:
        resp = await c.get("/readyz")
    body = assert_problem(resp, 503)
    assert named in body["detail"]
    assert body["checks"] == {"database": "up" if db_up else "down", "kafka": "up" if kafka_up else "down"}
    assert resp.headers["Retry-After"]


async def test_readyz_check_raising_counts_as_down(app: Any, runtime: FakeRuntime) -> None:
    runtime.db_error = OSError("connection refused")
    async with client(app) as c:
        resp = await c.get("/readyz")
    assert assert_problem(resp, 503)["checks"]["database"] == "down"


async def test_metrics_count_requests_by_route_template(app: Any) -> None:
    async with client(app) as c:
        await c.get("/v1/items/41")
        await c.get("/v1/items/42")
        resp = await c.get("/metrics")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    lines = resp.text.splitlines()
    counter = [
        line
        for line in lines
        if line.startswith("ee_http_requests_total{")
        and 'route="/v1/items/{item_id}"' in line
        and 'status="200"' in line
    ]
    assert counter and float(counter[0].rsplit(" ", 1)[1]) >= 2
    assert any(line.startswith("ee_http_request_duration_seconds_bucket{") for line in lines)
    assert not any('route="/v1/items/41"' in line for line in lines)


async def test_lifespan_starts_and_stops_the_runtime(app: Any, runtime: FakeRuntime) -> None:
    async with app.router.lifespan_context(app):
        assert (runtime.started, runtime.stopped) == (1, 0)
    assert (runtime.started, runtime.stopped) == (1, 1)


@pytest.fixture
def collector_restored() -> Iterator[None]:
    with default_collector():
        yield


@pytest.mark.parametrize(("env", "settled"), [("development", True), ("production", True), ("test", False)])
async def test_a_started_service_freezes_what_it_built_and_collects_young_objects_less_often(
    collector_restored: None, env: str, settled: bool
) -> None:
    runtime = FakeRuntime(settings=FakeSettings(env=env))
    app = create_service_app(runtime, [], title="t", description="d", configure_logs=False)
    async with app.router.lifespan_context(app):
        threshold, frozen = gc.get_threshold(), gc.get_freeze_count()
    if settled:
        assert threshold == (YOUNG_COLLECTION_THRESHOLD, 10, 10)
        assert frozen > 0
    else:  # a test process runs many apps one after the other: its collector is left alone
        assert (threshold, frozen) == ((700, 10, 10), 0)


async def test_a_started_service_has_built_its_routes_before_the_first_request(
    collector_restored: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FastAPI builds a router's routes when a request is first matched against it; a service builds
    them while starting, so that the first request does not carry that CPU (the private name below is
    where FastAPI does it: if it moves, this test says so)."""
    built: list[str] = []
    original = fastapi.routing._EffectiveRouteContext.from_api_route

    def counted(*args: Any, **kwargs: Any) -> Any:
        context = original(*args, **kwargs)
        built.append(getattr(context.original_route, "path", ""))
        return context

    monkeypatch.setattr(fastapi.routing._EffectiveRouteContext, "from_api_route", counted)
    app, _ = make_app(router, env="development")
    async with app.router.lifespan_context(app):
        assert "/v1/items/{item_id}" in built
        before = len(built)
        async with client(app) as http:
            assert (await http.get("/v1/items/1")).status_code == 200
        assert len(built) == before  # nothing left to build for the request


def test_production_refuses_the_development_secret() -> None:
    runtime = FakeRuntime(settings=FakeSettings(env="production", auth_secret="dev-secret-change-me"))
    with pytest.raises(InsecureSecretError, match="EE_AUTH_SECRET"):
        create_service_app(runtime, [], title="t", description="d")


# -- problem+json ---------------------------------------------------------------------------------


async def test_unknown_route_is_404_problem(app: Any) -> None:
    async with client(app) as c:
        resp = await c.get("/v1/nothing-here")
    body = assert_problem(resp, 404)
    assert body["instance"] == "/v1/nothing-here"
    assert "/v1/nothing-here" in body["detail"]


async def test_wrong_method_is_405_problem_with_allow(app: Any) -> None:
    async with client(app) as c:
        resp = await c.delete("/v1/items/1")
    body = assert_problem(resp, 405)
    assert resp.headers["Allow"] == "GET"
    assert "GET" in body["detail"]


async def test_http_exception_keeps_its_detail(app: Any) -> None:
    async with client(app) as c:
        resp = await c.get("/v1/http-exception")
    assert assert_problem(resp, 404)["detail"] == "No profile p-404; check the id."


async def test_validation_errors_list_fields(app: Any) -> None:
    payload = {"age": 12, "work": [{"title": "cook", "years": 3}, {"title": "chef", "years": "many"}]}
    async with client(app) as c:
        resp = await c.post("/v1/profiles", json=payload)
    body = assert_problem(resp, 422)
    assert body["type"] == "urn:ee:problem:validation"
    fields = {e["field"]: e["message"] for e in body["errors"]}
    assert set(fields) == {"age", "work.1.years"}
    assert "17" in fields["age"]
    assert fields["work.1.years"].endswith(".")
    assert "2 fields" in body["detail"]


async def test_validation_missing_and_unknown_fields(app: Any) -> None:
    async with client(app) as c:
        resp = await c.post("/v1/profiles", json={"agee": 30})
    fields = {e["field"]: e["message"] for e in assert_problem(resp, 422)["errors"]}
    assert fields == {
        "age": "This field is required.",
        "agee": "Unknown field; remove it or check its spelling.",
    }


async def test_validation_of_path_and_query(app: Any) -> None:
    async with client(app) as c:
        resp = await c.get("/v1/items/abc", params={"limit": "lots"})
    fields = {e["field"] for e in assert_problem(resp, 422)["errors"]}
    assert fields == {"path.item_id", "query.limit"}


async def test_missing_body_is_422(app: Any) -> None:
    async with client(app) as c:
        resp = await c.post("/v1/profiles")
    assert [e["field"] for e in assert_problem(resp, 422)["errors"]] == ["body"]


async def test_malformed_json_is_400_problem(app: Any) -> None:
    async with client(app) as c:
        resp = await c.post(
            "/v1/profiles", content=b'{"age": 30,', headers={"Content-Type": "application/json"}
        )
    body = assert_problem(resp, 400)
    assert "not valid JSON" in body["detail"]
    assert body["errors"][0]["field"] == "body"


async def test_raised_problem(app: Any) -> None:
    async with client(app) as c:
        resp = await c.get("/v1/problem")
    body = assert_problem(resp, 409)
    assert body["type"] == "urn:ee:problem:profile-locked"
    assert body["title"] == "Profile locked"
    assert body["profile_id"] == "p-1"
    assert body["instance"] == "/v1/problem"
    assert resp.headers["X-Extra"] == "yes"


async def test_unhandled_error_is_500_problem_and_logged(app: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="shared.web"):
        async with client(app) as c:
            resp = await c.get("/v1/boom", headers={"X-Correlation-Id": "corr-500"})
    body = assert_problem(resp, 500)
    assert body["correlation_id"] == "corr-500"
    assert "a bug" not in resp.text  # internals are logged, not shown
    assert any(r.exc_info and "a bug" in str(r.exc_info[1]) for r in caplog.records)


@pytest.mark.parametrize("kind", sorted(DB_ERRORS))
async def test_dependency_outage_is_503_with_retry_after(app: Any, kind: str) -> None:
    async with client(app) as c:
        resp = await c.get(f"/v1/db/{kind}")
    body = assert_problem(resp, 503)
    assert int(resp.headers["Retry-After"]) > 0
    assert "retry" in body["detail"].lower()
    if kind not in ("refused", "timeout", "multiple"):
        assert body["dependency"] == "database"


@pytest.mark.parametrize("kind", sorted(NOT_OUTAGES))
async def test_error_raised_beside_an_outage_is_not_taken_for_one(app: Any, kind: str) -> None:
    async with client(app) as c:
        resp = await c.get(f"/v1/db/{kind}")
    assert_problem(resp, 500)


async def test_integrity_error_is_not_an_outage(app: Any) -> None:
    async with client(app) as c:
        resp = await c.get("/v1/db/integrity")
    assert_problem(resp, 500)


async def test_concurrent_append_is_409(app: Any) -> None:
    async with client(app) as c:
        resp = await c.get("/v1/concurrent")
    assert "retry" in assert_problem(resp, 409)["detail"]
    assert resp.headers["ETag"] == '"4"'


async def test_openapi_documents_errors_as_problem_json(app: Any) -> None:
    async with client(app) as c:
        schema = (await c.get("/openapi.json")).json()
    operation = schema["paths"]["/v1/profiles"]["post"]
    for code in ("4XX", "5XX"):
        content = operation["responses"][code]["content"]
        assert list(content) == [PROBLEM_JSON]
        assert content[PROBLEM_JSON]["schema"] == {"$ref": "#/components/schemas/ProblemDetails"}
    assert "422" not in operation["responses"]
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    assert "ProblemDetails" in schema["components"]["schemas"]
    put = schema["paths"]["/v1/things/{thing_id}"]["put"]
    assert any(p["name"] == "If-Match" and p["in"] == "header" for p in put["parameters"])


# -- correlation id -------------------------------------------------------------------------------


async def test_correlation_id_is_echoed_and_in_context(app: Any) -> None:
    async with client(app) as c:
        resp = await c.get("/v1/items/1", headers={"X-Correlation-Id": "req-abc-123"})
    assert resp.headers["X-Correlation-Id"] == "req-abc-123"
    assert resp.json()["correlation_id"] == "req-abc-123"
    assert context.correlation_id.get() is None  # reset after the request


async def test_correlation_id_is_generated_when_absent_or_unsafe(app: Any) -> None:
    async with client(app) as c:
        plain = await c.get("/v1/items/1")
        unsafe = await c.get("/v1/items/1", headers={"X-Correlation-Id": "bad id\twith spaces"})
    for resp in (plain, unsafe):
        generated = resp.headers["X-Correlation-Id"]
        assert str(uuid.UUID(generated)) == generated
        assert resp.json()["correlation_id"] == generated


async def test_concurrent_requests_keep_their_own_correlation_id(app: Any) -> None:
    async with client(app) as c:
        responses = await asyncio.gather(
            *(c.get("/v1/items/1", headers={"X-Correlation-Id": f"c-{i}"}) for i in range(20))
        )
    assert [r.json()["correlation_id"] for r in responses] == [f"c-{i}" for i in range(20)]


async def test_access_log_has_route_status_and_correlation_id(
    app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="shared.web"):
        async with client(app) as c:
            await c.get("/v1/items/7", headers={"X-Correlation-Id": "corr-log"})
    record = next(r for r in caplog.records if getattr(r, "route", None) == "/v1/items/{item_id}")
    assert record.__dict__["status"] == 200
    line = json.loads(JsonFormatter("testsvc").format(record))
    assert line["path"] == "/v1/items/7"
    assert line["service"] == "testsvc"


def test_json_log_lines_carry_the_correlation_id() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("testsvc"))
    logger = logging.getLogger("shared.tests.json")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    token = context.correlation_id.set("corr-1")
    try:
        logger.info("hello %s", "world", extra={"profile_id": "p-1"})
        try:
            raise ValueError("bad")
        except ValueError:
            logger.exception("failed")
    finally:
        context.correlation_id.reset(token)
        logger.removeHandler(handler)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "hello world"
    assert first["correlation_id"] == "corr-1"
    assert first["profile_id"] == "p-1"
    assert (first["level"], first["service"], first["logger"]) == ("INFO", "testsvc", "shared.tests.json")
    assert second["exc_type"] == "ValueError" and "Traceback" in second["exc"]


# -- the admin clock ------------------------------------------------------------------------------


async def test_clock_route_absent_in_production() -> None:
    runtime = FakeRuntime(settings=FakeSettings(env="production", auth_secret=SECRET))
    app = make_app(router, runtime=runtime)[0]
    async with client(app) as c:
        put = await c.put("/v1/admin/clock", json={"offset_seconds": 60}, headers=ops_token())
        get = await c.get("/v1/admin/clock")
        schema = (await c.get("/openapi.json")).json()
    assert_problem(put, 404)
    assert_problem(get, 404)
    assert "/v1/admin/clock" not in schema["paths"]
    assert runtime.clock.offset == timedelta(0)


async def test_clock_put_needs_ops(app: Any, runtime: FakeRuntime) -> None:
    async with client(app) as c:
        anonymous = await c.put("/v1/admin/clock", json={"offset_seconds": 60})
        officer = await c.put("/v1/admin/clock", json={"offset_seconds": 60}, headers=ops_token("officer"))
    assert_problem(anonymous, 401)
    assert_problem(officer, 403)
    assert runtime.clock.offset == timedelta(0)


async def test_clock_put_offset_moves_now(app: Any, runtime: FakeRuntime) -> None:
    async with client(app) as c:
        resp = await c.put("/v1/admin/clock", json={"offset_seconds": 60 * 86400}, headers=ops_token())
        read = await c.get("/v1/admin/clock")
    assert resp.status_code == 200, resp.text
    assert runtime.clock.now() == T0 + timedelta(days=60)
    assert resp.json() == {"now": "2025-04-30T12:00:00Z", "offset_seconds": 5184000.0}
    assert read.json() == resp.json()


async def test_clock_put_now_sets_the_time(app: Any, runtime: FakeRuntime) -> None:
    target = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    async with client(app) as c:
        resp = await c.put("/v1/admin/clock", json={"now": "2026-01-02T03:04:05Z"}, headers=ops_token())
    assert resp.status_code == 200, resp.text
    assert runtime.clock.now() == target
    assert runtime.clock.offset == target - T0


async def test_clock_put_wakes_waiters(app: Any, runtime: FakeRuntime) -> None:
    waiter = asyncio.create_task(runtime.clock.wait_for_change(5))
    await asyncio.sleep(0.01)
    async with client(app) as c:
        await c.put("/v1/admin/clock", json={"offset_seconds": 3600}, headers=ops_token())
    assert await asyncio.wait_for(waiter, 1) is True


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"offset_seconds": 1, "now": "2026-01-01T00:00:00Z"},
        {"now": "2026-01-01T00:00:00"},
        {"offset_seconds": "soon"},
        {"offset_seconds": 1e300},
        {"shift": 3},
    ],
)
async def test_clock_put_rejects_bad_bodies(app: Any, runtime: FakeRuntime, payload: dict[str, Any]) -> None:
    async with client(app) as c:
        resp = await c.put("/v1/admin/clock", json=payload, headers=ops_token())
    assert_problem(resp, 422)
    assert runtime.clock.offset == timedelta(0)


# -- ETag / If-Match ------------------------------------------------------------------------------


def test_etag_header() -> None:
    assert etag_header(0) == '"0"'
    assert etag_header(17) == '"17"'
    with pytest.raises(ValueError):
        etag_header(-1)


async def test_if_match_required(app: Any) -> None:
    VERSIONS["t1"] = 3
    async with client(app) as c:
        resp = await c.put("/v1/things/t1")
        delete = await c.delete("/v1/things/t1")
    assert "If-Match" in assert_problem(resp, 428)["detail"]
    assert_problem(delete, 428)


@pytest.mark.parametrize("value", ["3", 'W/"3"', "*", '"3", "4"', '"-1"', '"abc"', '"03"'])
async def test_if_match_malformed(app: Any, value: str) -> None:
    VERSIONS["t2"] = 3
    async with client(app) as c:
        resp = await c.put("/v1/things/t2", headers={"If-Match": value})
    assert_problem(resp, 400)
    assert VERSIONS["t2"] == 3


async def test_if_match_stale_is_412_with_current_etag(app: Any) -> None:
    VERSIONS["t3"] = 5
    async with client(app) as c:
        resp = await c.put("/v1/things/t3", headers={"If-Match": '"4"'})
    body = assert_problem(resp, 412)
    assert resp.headers["ETag"] == '"5"'
    assert body["current_version"] == 5
    assert VERSIONS["t3"] == 5


async def test_if_match_current_succeeds(app: Any) -> None:
    VERSIONS["t4"] = 2
    async with client(app) as c:
        etag = (await c.get("/v1/things/t4")).headers["ETag"]
        resp = await c.put("/v1/things/t4", headers={"If-Match": etag})
        again = await c.put("/v1/things/t4", headers={"If-Match": etag})
    assert etag == '"2"'
    assert resp.status_code == 200 and resp.json() == {"version": 3}
    assert_problem(again, 412)
