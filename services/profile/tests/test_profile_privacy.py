"""Personal data in the profile service (docs/PRIVACY.md), on the real PostgreSQL and Kafka.

Unique markers are written into a profile's identity (names, email, UCI, passport number) and its job
offer's employer. They must never appear in the event store, the snapshots or on Kafka (sealed under
the candidate's data key); the owner reads them back, and so do officers and ops; after erasure they
are nowhere: not in a pg_dump of the database, not in the topic's log segments, not in the logs.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from profile_harness import Service, example_document, running_service, settings_overrides

from profile_service.adapters.keystore import KeyStore, keyring
from profile_service.adapters.repository import ProfileRepository
from profile_service.adapters.tables import data_keys
from profile_service.adapters.uow import profile_uow
from profile_service.application.scheduler import erase_due
from profile_service.keys import key_status, rewrap_all
from profile_service.settings import ProfileSettings
from shared.crypto import CryptoError, generate_kek
from shared.db import event_store, snapshots
from shared.events.catalogue import PROFILE_TOPIC
from shared.personal import REDACTED
from shared.testing import KafkaReader, SettingsFactory, wait_until
from shared.testing_privacy import kafka_segment_files, markers_in, pg_dump_text

pytestmark = pytest.mark.infra

KEK_OLD = generate_kek()


@pytest.fixture(scope="module")
async def service(make_settings: SettingsFactory) -> AsyncIterator[Service]:
    settings = make_settings(ProfileSettings, kek=KEK_OLD, erasure_retention_days=30, **settings_overrides())
    async with running_service(settings) as running:
        yield running


def personal_document(tag: str) -> tuple[dict[str, Any], list[str]]:
    markers = [f"Fam{tag}", f"Given{tag}", f"mail{tag}", f"PP{tag}", f"Employer{tag}"]
    doc = example_document(
        identity={
            "family_name": markers[0],
            "given_names": markers[1],
            "email": f"{markers[2]}@example.org",
            "uci": "1234567890",
            "passport_number": markers[3],
        },
        job_offer={
            "noc_code": "21231",
            "teer": 1,
            "employer": markers[4],
            "full_time": True,
            "non_seasonal": True,
            "duration_months": None,
            "lmia_or_exempt": True,
            "canadian_armed_forces": False,
        },
    )
    return doc, markers


def new_tag() -> str:
    return "MK" + uuid.uuid4().hex[:10].upper()


async def stream_rows(service: Service, profile_id: str) -> bytes:
    async with service.runtime.engine.connect() as conn:
        events = (
            (
                await conn.execute(
                    sa.select(event_store.c.envelope).where(event_store.c.stream_id == profile_id)
                )
            )
            .scalars()
            .all()
        )
        states = (
            (await conn.execute(sa.select(snapshots.c.state).where(snapshots.c.stream_id == profile_id)))
            .scalars()
            .all()
        )
    return orjson.dumps([*events, *states])


async def kafka_values(service: Service, profile_id: str, at_least: int) -> bytes:
    async with KafkaReader(service.settings, service.settings.topic(PROFILE_TOPIC)) as reader:
        records = await reader.read(at_least, timeout=20)
    mine = [r.value or b"" for r in records if r.key == profile_id.encode()]
    return b"\n".join(mine)


async def test_personal_fields_are_sealed_in_events_snapshots_and_on_kafka(service: Service) -> None:
    tag = new_tag()
    document, markers = personal_document(tag)
    me = f"cand-{tag.lower()}"
    created = await service.create(me, document)
    profile_id = created["id"]
    assert created["document"]["identity"]["family_name"] == markers[0]
    version = created["version"]
    for n in range(9):  # past a snapshot (every 8 versions)
        changed = {**document, "sibling_in_canada": n % 2 == 0}
        response = await service.client.put(
            f"/v1/profiles/{profile_id}",
            json=changed,
            headers={**service.auth(me), "If-Match": f'"{version}"'},
        )
        assert response.status_code == 200, response.text
        version = response.json()["version"]
    stored = await stream_rows(service, profile_id)
    assert b'"sealed":"v1.' in stored and REDACTED.encode() in stored
    assert markers_in(stored, markers) == []
    body = await service.get(me, profile_id)
    assert body["document"]["identity"]["passport_number"] == markers[3]
    assert body["document"]["job_offer"]["employer"] == markers[4]
    published = await kafka_values(service, profile_id, at_least=10)
    assert profile_id.encode() in published and b'"sealed":"v1.' in published
    assert markers_in(published, markers) == []


async def test_owner_exports_everything_decrypted_and_staff_see_the_identity(service: Service) -> None:
    tag = new_tag()
    document, markers = personal_document(tag)
    me = f"cand-{tag.lower()}"
    profile_id = (await service.create(me, document))["id"]
    await service.submit(me, profile_id)
    response = await service.client.get(f"/v1/profiles/{profile_id}/export", headers=service.auth(me))
    assert response.status_code == 200, response.text
    export = response.json()
    assert export["document"]["identity"]["family_name"] == markers[0]
    assert [item["type"] for item in export["history"]] == [
        "ee.profile.ProfileCreated.v1",
        "ee.profile.ProfileSubmitted.v1",
    ]
    assert all(item["data"]["document"]["job_offer"]["employer"] == markers[4] for item in export["history"])
    assert export["encryption"]["personal_fields_sealed"] is True
    other = await service.client.get(f"/v1/profiles/{profile_id}/export", headers=service.auth("other"))
    assert other.status_code == 404
    for role in ("officer", "ops"):
        staff = await service.client.get(f"/v1/admin/profiles/{profile_id}", headers=service.auth("s", role))
        assert staff.status_code == 200
        assert staff.json()["document"]["identity"]["email"].startswith(markers[2])
    for role in ("province", "partner"):
        headers = service.auth("x", role, "ON" if role == "province" else None)
        denied = await service.client.get(f"/v1/admin/profiles/{profile_id}", headers=headers)
        assert denied.status_code == 403


async def test_ops_erasure_leaves_no_marker_in_the_database_kafka_or_logs(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    tag = new_tag()
    document, markers = personal_document(tag)
    me = f"cand-{tag.lower()}"
    created = await service.create(me, document, headers={"Idempotency-Key": f"k-{tag}"})
    profile_id = created["id"]
    await service.submit(me, profile_id)
    # Positive control: the stored response of the idempotent create holds the markers in plain text,
    # so the dump below would find them if erasure left them.
    assert markers_in(await pg_dump_text(service.settings.database_url), markers) != []

    ops = {**service.auth("ops-1", "ops"), "If-Match": await staff_etag(service, profile_id)}
    erased = await service.client.post(f"/v1/admin/profiles/{profile_id}/erase", headers=ops)
    assert erased.status_code == 200, erased.text
    # Repeating it is harmless: nothing is written, so its If-Match (now stale) is not held against it.
    again = await service.client.post(f"/v1/admin/profiles/{profile_id}/erase", headers=ops)
    assert again.status_code == 200 and again.json() == erased.json()

    published = await kafka_values(service, profile_id, at_least=4)
    types = [orjson.loads(v)["type"] for v in published.split(b"\n")]
    assert types[-2:] == ["ee.profile.ProfileWithdrawn.v1", "ee.profile.PersonalDataErased.v1"]
    for path in (f"/v1/profiles/{profile_id}", f"/v1/profiles/{profile_id}/export"):
        assert (await service.client.get(path, headers=service.auth(me))).status_code == 404
    dump = await pg_dump_text(service.settings.database_url)
    assert profile_id.encode() in dump  # the stream stays, redacted
    assert markers_in(dump, markers) == []
    segments = kafka_segment_files(service.settings.topic_prefix)
    assert segments, "no log segment of this run's topics found"
    on_disk = b"".join(path.read_bytes() for path in segments)
    assert profile_id.encode() in on_disk
    assert markers_in(on_disk, markers) == []
    assert markers_in(caplog.text.encode(), markers) == []
    # The aggregate replays without its key: personal fields redacted, the rest intact.
    async with service.runtime.uow() as uow:
        profile = await ProfileRepository(uow).get(profile_id)
        key_row = (
            await uow.session.execute(
                sa.select(data_keys.c.wrapped, data_keys.c.erased_at).where(
                    data_keys.c.profile_id == profile_id
                )
            )
        ).one()
    assert profile is not None and profile.erased_at is not None and profile.status.value == "withdrawn"
    assert profile.document["identity"] is None and profile.document["job_offer"]["employer"] == REDACTED
    assert profile.submitted_at is not None and profile.expires_at is not None
    assert key_row.wrapped is None and key_row.erased_at is not None


async def test_withdrawn_profile_is_erased_once_the_retention_has_passed(service: Service) -> None:
    tag = new_tag()
    document, markers = personal_document(tag)
    me = f"cand-{tag.lower()}"
    created = await service.create(me, document)
    profile_id = created["id"]
    withdrawn = await service.client.post(
        f"/v1/profiles/{profile_id}/withdraw",
        headers={**service.auth(me), "If-Match": f'"{created["version"]}"'},
    )
    assert withdrawn.status_code == 200
    retention = timedelta(days=service.settings.erasure_retention_days)
    assert await erase_due(profile_uow(service.runtime.uow), retention) == 0
    service.clock.advance(retention + timedelta(minutes=1))

    async def erased() -> bool:
        async with service.runtime.uow() as uow:
            profile = await ProfileRepository(uow).get(profile_id)
        return profile is not None and profile.erased_at is not None

    await wait_until(erased, timeout=20, message="the erasure job never erased the withdrawn profile")
    assert markers_in(await stream_rows(service, profile_id), markers) == []


async def test_ops_cannot_erase_an_invited_profile(service: Service) -> None:
    from datetime import timedelta as td

    from shared.events.catalogue import Invited

    me = f"cand-{new_tag().lower()}"
    profile_id = (await service.create(me, personal_document(new_tag())[0]))["id"]
    await service.submit(me, profile_id)
    now = service.clock.now()
    await service.publish(
        Invited(
            profile_id=profile_id,
            owner=me,
            invitation_id=f"ita-{profile_id}",
            round_id="r-1",
            round_number=1,
            program="fsw",
            crs=480,
            citizenship="IN",
            invited_at=now,
            deadline=now + td(days=60),
        ),
        source="ee/draws",
    )
    await service.wait_for_status(me, profile_id, "invited")
    refused = await service.client.post(
        f"/v1/admin/profiles/{profile_id}/erase",
        headers={**service.auth("ops-1", "ops"), "If-Match": await staff_etag(service, profile_id)},
    )
    assert refused.status_code == 409, refused.text


async def staff_etag(service: Service, profile_id: str) -> str:
    read = await service.client.get(f"/v1/admin/profiles/{profile_id}", headers=service.auth("ops-1", "ops"))
    assert read.status_code == 200, read.text
    return read.headers["ETag"]


async def test_erasure_takes_if_match_and_an_idempotency_key(service: Service) -> None:
    """The rule of every command, for ops too: 428 without If-Match, 412 when stale (nothing erased),
    and a retry with the same Idempotency-Key gets the first answer."""
    me = f"cand-{new_tag().lower()}"
    profile_id = (await service.create(me, personal_document(new_tag())[0]))["id"]
    await service.submit(me, profile_id)
    path, ops = f"/v1/admin/profiles/{profile_id}/erase", service.auth("ops-1", "ops")
    missing = await service.client.post(path, headers=ops)
    assert missing.status_code == 428, missing.text
    stale = await service.client.post(path, headers={**ops, "If-Match": '"1"'})
    assert stale.status_code == 412, stale.text
    assert stale.json()["current_version"] == 2
    owned = f"/v1/profiles/{profile_id}"
    assert (await service.client.get(owned, headers=service.auth(me))).status_code == 200

    key = {"Idempotency-Key": f"erase-{profile_id}", "If-Match": '"2"'}
    erased = await service.client.post(path, headers={**ops, **key})
    assert erased.status_code == 200, erased.text
    replayed = await service.client.post(path, headers={**ops, **key})
    assert replayed.status_code == 200 and replayed.json() == erased.json()
    assert replayed.headers["Idempotent-Replayed"] == "true"
    other = await service.client.post(f"/v1/admin/profiles/{new_tag()}/erase", headers={**ops, **key})
    assert other.status_code == 422 and other.json()["title"] == "Idempotency-Key reused"
    assert (await service.client.get(owned, headers=service.auth(me))).status_code == 404


async def test_an_event_sealed_under_a_rotated_kek_still_reads(service: Service) -> None:
    tag = new_tag()
    document, markers = personal_document(tag)
    me = f"cand-{tag.lower()}"
    profile_id = (await service.create(me, document))["id"]
    events_before = await stream_rows(service, profile_id)
    kek_new = generate_kek()
    rotated = service.settings.model_copy(update={"kek": f"{kek_new},{KEK_OLD}"})
    async with service.runtime.uow() as uow:
        key_before = await KeyStore(uow.session, keyring(rotated.kek)).get(profile_id)  # old KEK unwraps
    assert key_before is not None
    assert await rewrap_all(rotated, batch_size=2) >= 1
    status = await key_status(rotated)
    assert set(status) - {"erased"} == {rotated.keyring().current_id}  # every data key under the new KEK
    async with service.runtime.uow() as uow:
        only_new = KeyStore(uow.session, keyring(kek_new))
        assert await only_new.get(profile_id) == key_before
        with pytest.raises(CryptoError):
            await KeyStore(uow.session, keyring(KEK_OLD)).get(profile_id)
        repository = ProfileRepository(uow)
        repository.keys = only_new
        profile = await repository.get(profile_id)
    # Rotate back, so that the running service (KEK_OLD only) reads every profile again.
    assert await rewrap_all(service.settings.model_copy(update={"kek": f"{KEK_OLD},{kek_new}"})) >= 1
    assert profile is not None and profile.document["identity"]["family_name"] == markers[0]
    assert await stream_rows(service, profile_id) == events_before  # the events were not touched
