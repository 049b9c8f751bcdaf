"""Idempotency-Key: header parsing (pure) and the stored responses (real PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.idempotency import (
    REPLAYED_HEADER,
    IdempotencyKeys,
    StoredResponse,
    parse_idempotency_key,
    request_fingerprint,
)
from shared.problem import Problem
from shared.testing import PlatformDatabase


def test_fingerprint_ignores_key_order_but_not_content() -> None:
    a = request_fingerprint("post", "/v1/profiles", {"age": 30, "name": "A"})
    assert a == request_fingerprint("POST", "/v1/profiles", {"name": "A", "age": 30})
    assert a != request_fingerprint("POST", "/v1/profiles", {"name": "A", "age": 31})
    assert a != request_fingerprint("PUT", "/v1/profiles", {"name": "A", "age": 30})


def test_parse_idempotency_key() -> None:
    assert parse_idempotency_key(None) is None
    assert parse_idempotency_key("3f1c-ab") == "3f1c-ab"
    for bad in ("has space", "x" * 256, "naïve"):
        with pytest.raises(Problem) as err:
            parse_idempotency_key(bad)
        assert err.value.status == 400
    with pytest.raises(Problem) as missing:
        parse_idempotency_key(None, required=True)
    assert missing.value.status == 428


def test_stored_response_is_marked_replayed() -> None:
    response = StoredResponse(201, {"id": "p-1"}).to_response()
    assert response.status_code == 201
    assert response.headers[REPLAYED_HEADER] == "true"


@pytest.mark.infra
async def test_same_key_same_request_replays(platform_db: PlatformDatabase) -> None:
    keys = IdempotencyKeys("test.create")
    fingerprint = request_fingerprint("POST", "/v1/things", {"n": 1})
    async with platform_db.sessions() as session, session.begin():
        assert await keys.lookup(session, "k-1", fingerprint, caller="alice") is None
        body = {"id": "t-1", "at": datetime(2025, 1, 1, tzinfo=UTC)}
        await keys.save(session, "k-1", fingerprint, 201, body, caller="alice")
    async with platform_db.sessions() as session:
        stored = await keys.lookup(session, "k-1", fingerprint, caller="alice")
        assert stored is not None
        assert (stored.status_code, stored.body) == (201, {"id": "t-1", "at": "2025-01-01T00:00:00+00:00"})
        # another caller's identical key is a different key
        assert await keys.lookup(session, "k-1", fingerprint, caller="bob") is None


@pytest.mark.infra
async def test_same_key_different_request_is_422(platform_db: PlatformDatabase) -> None:
    keys = IdempotencyKeys("test.reuse")
    async with platform_db.sessions() as session, session.begin():
        await keys.save(session, "k-2", request_fingerprint("POST", "/v1/x", {"n": 1}), 201, {"ok": True})
    async with platform_db.sessions() as session:
        with pytest.raises(Problem) as err:
            await keys.lookup(session, "k-2", request_fingerprint("POST", "/v1/x", {"n": 2}))
    assert err.value.status == 422


@pytest.mark.infra
async def test_racing_saves_one_wins_the_other_gets_409(platform_db: PlatformDatabase) -> None:
    keys = IdempotencyKeys("test.race")
    fingerprint = request_fingerprint("POST", "/v1/race", None)
    first_saved = asyncio.Event()
    outcomes: list[Any] = []

    async def first() -> None:
        async with platform_db.sessions() as session, session.begin():
            await keys.save(session, "k-3", fingerprint, 201, {"winner": 1})
            first_saved.set()
            await asyncio.sleep(0.2)  # the second save blocks on our uncommitted row meanwhile
        outcomes.append("committed")

    async def second() -> None:
        await first_saved.wait()
        async with platform_db.sessions() as session:
            try:
                async with session.begin():
                    await keys.save(session, "k-3", fingerprint, 201, {"winner": 2})
            except Problem as exc:
                outcomes.append(exc.status)

    await asyncio.wait_for(asyncio.gather(first(), second()), 10)
    assert sorted(outcomes, key=str) == [409, "committed"]
    async with platform_db.sessions() as session:
        stored = await keys.lookup(session, "k-3", fingerprint)
    assert stored is not None and stored.body == {"winner": 1}


@pytest.mark.infra
async def test_purge_old_keys(platform_db: PlatformDatabase) -> None:
    keys = IdempotencyKeys("test.purge")
    old = datetime.now(UTC) - timedelta(days=2)
    async with platform_db.sessions() as session, session.begin():
        await keys.save(session, "old", "h", 200, None, now=old)
        await keys.save(session, "new", "h", 200, None)
        assert await IdempotencyKeys.purge(session, datetime.now(UTC) - timedelta(days=1)) >= 1
    async with platform_db.sessions() as session:
        assert await keys.lookup(session, "old", "h") is None
        assert await keys.lookup(session, "new", "h") is not None
