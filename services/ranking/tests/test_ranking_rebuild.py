"""The rebuild through real Kafka and PostgreSQL: in this process and in worker processes, it ends
with the live projection's pool, positions and dead letters."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from ranking_factories import (
    DOB_394,
    DOB_416,
    DOB_432,
    DOB_INELIGIBLE,
    NOW,
    SENIOR_MANAGER_OFFER,
    ProfileStream,
    declined,
    document,
    invited,
    pid,
)
from ranking_world import World, open_world
from sqlalchemy.engine import make_url

from ranking_service.adapters.database import drop_database
from ranking_service.rebuild import rebuild, rebuild_settings
from ranking_service.settings import RankingSettings
from shared import testing
from shared.db import plain_connection
from shared.events.catalogue import PROFILE_TOPIC

pytestmark = pytest.mark.infra

A, B, C, D, X, LONE = pid(1), pid(2), pid(3), pid(4), pid(9), pid(7)


@pytest.fixture
async def world() -> AsyncIterator[World]:
    async with open_world() as opened:
        yield opened


def submission(profile_id: str, dob: str, minutes: int) -> list[tuple[object, int]]:
    stream = ProfileStream(profile_id)
    at = NOW - timedelta(days=2) + timedelta(minutes=minutes)
    return [stream.created(document(dob), at=at), stream.submitted(document(dob), at=at)]


async def rows(database_url: str) -> dict[str, tuple[bool, str | None, int | None]]:
    conn = await plain_connection(database_url)
    try:
        found = await conn.fetch("SELECT profile_id, in_pool, reason, crs FROM ranking_profiles")
    finally:
        await conn.close()
    return {row["profile_id"]: (row["in_pool"], row["reason"], row["crs"]) for row in found}


async def test_a_rebuild_in_one_or_two_processes_ends_where_the_live_projection_is(world: World) -> None:
    events = [
        *submission(A, DOB_394, 0), *submission(B, DOB_416, 30), *submission(C, DOB_416, 10),
        *submission(D, DOB_432, 50), *submission(X, DOB_INELIGIBLE, 5),
        invited(C, "ita-1"), declined(C, "ita-1"), invited(D, "ita-2"),
        invited(LONE, "ita-3"),  # a profile the log says nothing else about
    ]  # fmt: skip
    profile_topic = world.settings.topic(PROFILE_TOPIC)
    # First, so that A's events after it carry the live position past it.
    await testing.produce(world.settings, profile_topic, [b"not an event"], key=A.encode())
    await world.publish(*events)  # type: ignore[arg-type]
    total = len(events) + 1
    async with world.service() as service:
        await service.wait(lambda view: sum(view.positions.values()) == total, "every record applied")
        await service.wait(lambda view: len(view.pool) == 3, "A, B and C in the pool")
        live = await service.get("/v1/admin/pool/fingerprint")
        live_positions = dict(service.view.positions)

    into = rebuild_settings(world.settings)
    try:
        for workers in (1, 2):
            report = await rebuild(world.settings, into=into, clock=world.clock, workers=workers)
            assert (report.pool_size, report.fingerprint) == (3, live["fingerprint"])
            assert report.matches and report.events == total
            assert report.position == live_positions
            rebuilt = await rows(into.database_url)
            assert rebuilt[LONE] == (False, "invited", None)
            assert rebuilt[D] == (False, "invited", None)  # out of the pool: no earlier score kept
            assert rebuilt[X][:2] == (False, "ineligible")
            assert sorted(rebuilt) == sorted([A, B, C, D, X, LONE])
    finally:
        await drop_database(into.database_url)
    # The record nobody can read: dead-lettered by the live consumer, and again by each rebuild, alike.
    async with testing.KafkaReader(world.settings, world.settings.dlq_topic(PROFILE_TOPIC)) as dlq:
        dead = await dlq.read(3, timeout=30)
    reasons = {dict(record.headers)["reason"] for record in dead}
    assert len(dead) == 3 and len(reasons) == 1
    assert next(iter(reasons)).startswith(b"not a CloudEvents envelope")


async def test_a_rebuild_after_an_erasure_matches_the_live_pool_and_holds_nothing_of_the_person(
    world: World,
) -> None:
    """docs/PRIVACY.md: sealed personal fields are never opened by ranking; after PersonalDataErased the
    live projection and a full rebuild agree on the pool (the erased candidate left it) and neither
    keeps the erased candidate's document."""
    from shared.crypto import new_data_key
    from shared.personal import seal_document

    key = new_data_key()

    def sealed_submission(
        profile_id: str, dob: str, minutes: int, marker: str
    ) -> tuple[ProfileStream, list[tuple[object, int]]]:
        identity = {"family_name": marker, "email": f"{marker}@example.org", "passport_number": marker}
        personal = document(dob, identity=identity, job_offer={**SENIOR_MANAGER_OFFER, "employer": marker})
        readable, sealed = seal_document(personal, key, profile_id)
        stream = ProfileStream(profile_id)
        at = NOW - timedelta(days=2) + timedelta(minutes=minutes)
        return stream, [
            stream.created(readable, at=at, sealed=sealed),
            stream.submitted(readable, at=at, sealed=sealed),
        ]

    _, kept = sealed_submission(A, DOB_416, 0, "MarkerKeptQ7")
    gone_stream, gone = sealed_submission(B, DOB_394, 10, "MarkerGoneQ7")
    events = [*kept, *gone, gone_stream.withdrawn(), gone_stream.erased()]
    await world.publish(*events)  # type: ignore[arg-type]
    async with world.service() as service:
        await service.wait(lambda view: sum(view.positions.values()) == len(events), "every record applied")
        await service.wait(lambda view: len(view.pool) == 1, "only A in the pool")
        live = await service.get("/v1/admin/pool/fingerprint")
    live_documents = await documents(world.settings.database_url)
    into = rebuild_settings(world.settings)
    try:
        report = await rebuild(world.settings, into=into, clock=world.clock, workers=1)
        assert (report.pool_size, report.fingerprint) == (1, live["fingerprint"]) and report.matches
        rebuilt = await rows(into.database_url)
        assert rebuilt[B][:2] == (False, "withdrawn")
        rebuilt_documents = await documents(into.database_url)
    finally:
        await drop_database(into.database_url)
    for found in (live_documents, rebuilt_documents):
        assert found[B] is None  # the erased candidate's document is gone
        assert "identity" in (found[A] or "")  # present, redacted (null)
        assert "Marker" not in "".join(text or "" for text in found.values())


async def documents(database_url: str) -> dict[str, str | None]:
    conn = await plain_connection(database_url)
    try:
        found = await conn.fetch("SELECT profile_id, document::text AS document FROM ranking_profiles")
    finally:
        await conn.close()
    return {row["profile_id"]: row["document"] for row in found}


def test_the_rebuild_goes_into_a_sibling_database_on_the_same_server_by_the_same_socket() -> None:
    live = RankingSettings(database_url="postgresql+asyncpg://ee:ee@/ranking_x?host=/run/postgresql")
    into = make_url(rebuild_settings(live).database_url)
    assert (into.database, into.query, into.username) == (
        "ranking_x_rebuild",
        {"host": "/run/postgresql"},
        "ee",
    )
    with pytest.raises(ValueError, match="another database"):
        rebuild_settings(live, live.database_url)
