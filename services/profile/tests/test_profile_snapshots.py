"""Profile snapshots against the real PostgreSQL: a profile loaded from its snapshot and the events
after it is the profile its whole history replays to, and a PUT on a long history still works."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from profile_harness import Service, example_document, running_service, settings_overrides

from profile_service.adapters.repository import ProfileRepository
from profile_service.application.events import EVENTS
from profile_service.domain.profile import Profile
from profile_service.settings import ProfileSettings
from shared.db import snapshots
from shared.events.registry import REGISTRY
from shared.testing import SettingsFactory

pytestmark = pytest.mark.infra


@pytest.fixture(scope="module")
async def service(make_settings: SettingsFactory) -> AsyncIterator[Service]:
    async with running_service(make_settings(ProfileSettings, **settings_overrides())) as running:
        yield running


async def put(service: Service, sub: str, profile_id: str, version: int, sibling: bool) -> int:
    response = await service.client.put(
        f"/v1/profiles/{profile_id}",
        json=example_document(sibling_in_canada=sibling),
        headers={**service.auth(sub), "If-Match": f'"{version}"'},
    )
    assert response.status_code == 200, response.text
    return int(response.json()["version"])


async def loaded_both_ways(service: Service, profile_id: str) -> tuple[Profile | None, Profile]:
    async with service.runtime.uow() as uow:
        from_snapshot = await ProfileRepository(uow).get(profile_id)
        envelopes = await uow.events.load(uow.session, profile_id)
    return from_snapshot, Profile.replay(EVENTS.to_domain(REGISTRY.parse(envelope)) for envelope in envelopes)


async def test_a_long_history_loads_from_its_snapshot_as_the_replay_of_every_event(service: Service) -> None:
    me = f"cand-{uuid.uuid4().hex[:8]}"
    created = await service.create(me)
    profile_id = created["id"]
    await service.submit(me, profile_id)
    nominated = await service.client.post(
        "/v1/provinces/ON/nominations",
        json={"profile_id": profile_id},
        headers=service.auth("on-officer", "province", "ON"),
    )
    assert nominated.status_code == 201
    version = 3
    for n in range(1, 21):
        version = await put(service, me, profile_id, version, sibling=n % 2 == 1)
        from_snapshot, replayed = await loaded_both_ways(service, profile_id)
        assert from_snapshot == replayed, f"version {version}"
    assert version == 23
    async with service.runtime.engine.connect() as conn:
        row = (
            await conn.execute(
                sa.select(snapshots.c.kind, snapshots.c.version).where(snapshots.c.stream_id == profile_id)
            )
        ).one()
    assert (row.kind, row.version) == (ProfileRepository.snapshot_kind, 16)  # every 8 versions: 8, 16
    body = await service.get(me, profile_id)
    assert body["version"] == 23 and body["nomination"]["province"] == "ON"
    assert body["document"]["sibling_in_canada"] is False and body["status"] == "in_pool"


def test_a_snapshot_restores_exactly_the_state_it_was_taken_of() -> None:
    from datetime import UTC, datetime

    now = datetime(2025, 6, 1, 9, 30, 0, 123456, tzinfo=UTC)
    profile = Profile.create("p-1", "alice", example_document(), now)
    profile.submit(now)
    profile.nominate("ON", now)
    profile.pending.clear()
    restored = Profile.restore(profile.snapshot())
    assert restored == profile and restored.submitted_at == now
