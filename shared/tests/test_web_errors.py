"""The one mapper of `shared.errors` to problem+json, through the app factory."""

from __future__ import annotations

from typing import Any

import asyncpg.exceptions
import sqlalchemy.exc
from fastapi import APIRouter

from shared.errors import NotFound, StaleVersion, TransitionNotAllowed, Unavailable, Unprocessable
from shared.tests.fake_runtime import client, make_app
from shared.web import PROBLEM_JSON

router = APIRouter(prefix="/v1")


class Locked(TransitionNotAllowed):
    title = "Thing locked"
    slug = "thing-locked"


@router.get("/missing")
async def missing() -> None:
    raise NotFound("There is no thing t-1 among yours; check the id.")


@router.get("/locked")
async def locked() -> None:
    raise Locked("Thing t-1 is locked until Monday.", extensions={"state": "locked"})


@router.get("/stale")
async def stale() -> None:
    raise StaleVersion(2, 5, what="thing")


@router.get("/invalid")
async def invalid() -> None:
    raise Unprocessable("1 field is invalid.", errors=[("size", "Must be 1 or more.")])


@router.get("/later")
async def later() -> None:
    raise Unavailable("The peer is not answering; retry in 7 seconds.", retry_after=7)


def _data_error(cause: Exception) -> sqlalchemy.exc.DBAPIError:
    """How SQLAlchemy's asyncpg dialect reports a value PostgreSQL refuses (SQLSTATE class 22)."""
    driver = Exception(f"{type(cause).__name__}: {cause}")
    driver.sqlstate = getattr(cause, "sqlstate", None)  # type: ignore[attr-defined]
    driver.__cause__ = cause
    return sqlalchemy.exc.DBAPIError("SELECT ...", {}, driver)


@router.get("/nul")
async def nul() -> None:
    raise _data_error(asyncpg.exceptions.CharacterNotInRepertoireError("invalid byte sequence for encoding"))


@router.get("/range")
async def out_of_range() -> None:
    raise _data_error(asyncpg.exceptions.NumericValueOutOfRangeError("integer out of range"))


async def get(path: str) -> Any:
    app, _ = make_app(router)
    async with client(app) as http:
        return await http.get(path)


async def test_a_not_found_is_a_404_problem() -> None:
    response = await get("/v1/missing")
    assert response.status_code == 404 and response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["type"] == "urn:ee:problem:not-found" and body["title"] == "Not found"
    assert body["detail"] == "There is no thing t-1 among yours; check the id."


async def test_a_subclass_gives_its_title_type_and_extensions() -> None:
    body = (await get("/v1/locked")).json()
    assert body["status"] == 409 and body["title"] == "Thing locked"
    assert body["type"] == "urn:ee:problem:thing-locked" and body["state"] == "locked"


async def test_a_stale_version_is_412_with_the_current_etag() -> None:
    response = await get("/v1/stale")
    assert response.status_code == 412 and response.headers["ETag"] == '"5"'
    body = response.json()
    assert body["current_version"] == 5 and body["expected_version"] == 2
    assert "thing" in body["detail"]


async def test_field_errors_and_retry_after() -> None:
    invalid = (await get("/v1/invalid")).json()
    assert invalid["status"] == 422
    assert invalid["errors"] == [{"field": "size", "message": "Must be 1 or more."}]
    later = await get("/v1/later")
    assert later.status_code == 503 and later.headers["Retry-After"] == "7"


async def test_a_value_the_database_refuses_is_a_422_not_a_500_nor_an_outage() -> None:
    """A NUL byte in a string or an integer out of range is the request's fault (SQLSTATE class 22):
    before, the first was a 500 and the second a 503 "database unavailable"."""
    for path in ("/v1/nul", "/v1/range"):
        response = await get(path)
        assert response.status_code == 422, (path, response.text)
        body = response.json()
        assert body["title"] == "Value not accepted" and "Retry-After" not in response.headers
