"""The subscriptions API against a real PostgreSQL and Kafka: create (the secret shown once, stored
encrypted), read, change with If-Match, rotate, delete; role scoping; unsafe URLs refused with 422;
every change an event on `ee.notifications.events`."""

from __future__ import annotations

import asyncio

import orjson
import pytest
import sqlalchemy as sa
from notifications_harness import Service

from notifications_service.adapters import repository
from notifications_service.adapters.tables import deliveries, subscriptions
from notifications_service.adapters.uow import SqlDeliveries
from shared.db import idempotency_keys
from shared.envelope import decode
from shared.events.catalogue import NOTIFICATIONS_TOPIC
from shared.testing import KafkaReader

pytestmark = pytest.mark.infra

HOOK = "http://127.0.0.1:9/hooks/ee"


async def test_create_shows_the_secret_once_and_stores_it_encrypted(service: Service) -> None:
    partner = service.as_("portal-1", "partner")
    created = await service.subscribe(
        partner, HOOK, ["ee.draws.Invited", "ee.applications.*"], description="ITAs"
    )
    assert created["secret"].startswith("whsec_")
    assert created["event_types"] == ["ee.draws.Invited", "ee.applications.*"]
    assert created["enabled"] is True and created["version"] == 1

    read = await service.client.get(f"/v1/webhooks/subscriptions/{created['id']}", headers=partner)
    assert read.status_code == 200
    assert "secret" not in read.json()
    assert read.headers["ETag"] == '"1"'

    async with service.runtime.uow() as uow:
        row = (
            await uow.session.execute(sa.select(subscriptions).where(subscriptions.c.id == created["id"]))
        ).one()
    assert created["secret"].encode() not in row.secret
    assert created["secret"][6:].encode() not in row.secret


async def test_changes_need_if_match_and_are_events(service: Service) -> None:
    ops = service.as_("ops-1", "ops")
    created = await service.subscribe(ops, HOOK, ["*"])
    path = f"/v1/webhooks/subscriptions/{created['id']}"

    missing = await service.client.patch(path, headers=ops, json={"description": "x"})
    assert missing.status_code == 428
    assert missing.headers["content-type"].startswith("application/problem+json")
    stale = await service.client.patch(path, headers={**ops, "If-Match": '"7"'}, json={"description": "x"})
    assert stale.status_code == 412 and stale.headers["ETag"] == '"1"'

    changed = await service.client.patch(
        path, headers={**ops, "If-Match": '"1"'}, json={"description": "all of it", "enabled": False}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["enabled"] is False and changed.headers["ETag"] == '"2"'

    rotated = await service.client.post(
        f"{path}/secret/rotate", headers={**ops, "If-Match": '"2"'}, json={"overlap_seconds": 3600}
    )
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["secret"] != created["secret"]
    assert rotated.json()["previous_secret_valid_until"] is not None

    deleted = await service.client.delete(path, headers={**ops, "If-Match": '"3"'})
    assert deleted.status_code == 204
    assert (await service.client.get(path, headers=ops)).status_code == 404

    wanted = [
        "SubscriptionCreated",
        "SubscriptionUpdated",
        "SubscriptionSecretRotated",
        "SubscriptionDeleted",
    ]
    topic = service.settings.topic(NOTIFICATIONS_TOPIC)

    async def names() -> list[str]:
        async with KafkaReader(service.settings, topic) as reader:
            records = await reader.drain(quiet_s=0.3)
        envelopes = [decode(r.value) for r in records if r.value]
        return [e.name for e in envelopes if e.data["subscription_id"] == created["id"]]

    for _ in range(50):
        seen = await names()
        if seen == wanted:
            break
        await asyncio.sleep(0.2)
    assert seen == wanted
    async with KafkaReader(service.settings, topic) as reader:
        raw = b"".join(r.value or b"" for r in await reader.drain(quiet_s=0.3))
    assert created["secret"][6:].encode() not in raw and b"whsec_" not in raw


@pytest.mark.parametrize(
    "url",
    [
        "https://10.0.0.7/hook",
        "https://172.16.3.4/hook",
        "https://192.168.1.10/hook",
        "http://169.254.169.254/latest/meta-data/",
        "https://[fe80::1]/hook",
        "https://[::ffff:10.1.2.3]/hook",
        "https://100.100.100.200/hook",
        "https://0.0.0.0/hook",
        "http://example.com/hook",
        "ftp://127.0.0.1/hook",
        "https://user:pw@127.0.0.1/hook",
    ],
)
async def test_unsafe_urls_are_422(service: Service, url: str) -> None:
    answer = await service.client.post(
        "/v1/webhooks/subscriptions",
        headers=service.as_("portal-1", "partner"),
        json={"url": url, "event_types": ["ee.draws.Invited"]},
    )
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert problem["errors"][0]["field"] == "url"
    assert problem["detail"]


async def test_unresolvable_host_is_422(service: Service) -> None:
    answer = await service.client.post(
        "/v1/webhooks/subscriptions",
        headers=service.as_("portal-1", "partner"),
        json={"url": "https://no-such-host.invalid/hook", "event_types": ["*"]},
    )
    assert answer.status_code == 422
    assert "resolve" in answer.json()["detail"]


async def test_event_types_are_checked_against_the_catalogue_and_the_role(service: Service) -> None:
    partner = service.as_("portal-1", "partner")
    cases = [
        (["ee.draws.Invted"], "event_types.0"),
        (["ee.notifications.*"], "event_types.0"),
        (["ee.draws.RoundOfInvitationsHeld"], "event_types.0"),
        ([], "event_types"),
    ]
    for types, field in cases:
        answer = await service.client.post(
            "/v1/webhooks/subscriptions", headers=partner, json={"url": HOOK, "event_types": types}
        )
        assert answer.status_code == 422, (types, answer.text)
        assert answer.json()["errors"][0]["field"] == field
    province = service.as_("ontario", "province", "ON")
    ok = await service.subscribe(province, HOOK, ["ee.draws.RoundOfInvitationsHeld"], candidates=["p-1"])
    assert ok["province"] == "ON"


async def test_roles_and_ownership(service: Service) -> None:
    officer = await service.client.get("/v1/webhooks/subscriptions", headers=service.as_("o-1", "officer"))
    assert officer.status_code == 403
    candidate = await service.client.get(
        "/v1/webhooks/subscriptions", headers=service.as_("c-1", "candidate")
    )
    assert candidate.status_code == 403
    assert (await service.client.get("/v1/webhooks/subscriptions")).status_code == 401

    mine = await service.subscribe(service.as_("portal-a", "partner"), HOOK, ["ee.draws.Invited"])
    other = service.as_("portal-b", "partner")
    answer = await service.client.get(f"/v1/webhooks/subscriptions/{mine['id']}", headers=other)
    assert answer.status_code == 404  # not yours: as if it did not exist
    listed = await service.client.get("/v1/webhooks/subscriptions", headers=other)
    assert mine["id"] not in [s["id"] for s in listed.json()]
    everyone = await service.client.get("/v1/webhooks/subscriptions", headers=service.as_("ops-1", "ops"))
    assert mine["id"] in [s["id"] for s in everyone.json()]
    log = await service.client.get(f"/v1/webhooks/subscriptions/{mine['id']}/deliveries", headers=other)
    assert log.status_code == 404


async def test_bad_bodies_are_422_not_500(service: Service) -> None:
    partner = service.as_("portal-1", "partner")
    for body in ({"url": HOOK}, {"url": HOOK, "event_types": "x"}, {"url": 3, "event_types": ["*"]},
                 {"url": HOOK, "event_types": ["*"], "extra": 1}):  # fmt: skip
        answer = await service.client.post("/v1/webhooks/subscriptions", headers=partner, json=body)
        assert answer.status_code == 422, answer.text
    raw = await service.client.post(
        "/v1/webhooks/subscriptions",
        headers={**partner, "Content-Type": "application/json"},
        content=b"{nope",
    )
    assert raw.status_code == 400  # the platform's answer to JSON that does not parse
    assert raw.headers["content-type"].startswith("application/problem+json")
    replay = await service.client.post(
        "/v1/webhooks/subscriptions/none/replay", headers=partner, json={"since": "2026-01-02T00:00:00Z",
                                                                          "until": "2026-01-01T00:00:00Z"},
    )  # fmt: skip
    assert replay.status_code == 422
    assert orjson.loads(replay.content)["status"] == 422


async def test_a_batch_fanned_out_lands_whole_once_and_in_the_order_given(service: Service) -> None:
    """500 events × 10 subscriptions is 5,000 deliveries (as columns: more rows than one multi-row
    INSERT could bind): all land, none twice, and their `seq` follows the order given, which keeps
    each candidate's deliveries in event order."""
    now = service.runtime.clock.now()
    rows = [
        {"id": f"msg_bulk{i:04d}", "subscription_id": f"bulk-{i % 10}", "event_id": f"e-{i}",
         "ordering_key": "k", "status": "delivered", "attempts": 1, "next_attempt_at": now, "created_at": now}
        for i in reversed(range(5_000))  # ids descending: an order of their own would not be the one given
    ]  # fmt: skip
    async with service.runtime.uow() as uow:
        store = SqlDeliveries(uow.tx)
        assert await store.add_deliveries(rows) == 5_000
        assert await store.add_deliveries([*rows[:10], *rows]) == 0
        stored = await uow.session.execute(
            sa.select(deliveries.c.id).where(deliveries.c.id.like("msg_bulk%")).order_by(deliveries.c.seq)
        )
        assert list(stored.scalars()) == [row["id"] for row in rows]
        await uow.session.execute(sa.delete(deliveries).where(deliveries.c.id.like("msg_bulk%")))
        await uow.commit()


async def test_a_large_fan_out_refreshes_the_table_statistics_the_dispatcher_plans_with(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once enough deliveries were added, the planner's row counts are those of the table as it is
    (ANALYZE in the fan-out's transaction), not of the quiet table autovacuum last saw."""
    monkeypatch.setattr(repository, "ANALYZE_AFTER_ROWS", 100, raising=False)
    monkeypatch.setattr(repository, "_added_since_analyze", 0, raising=False)
    now = service.runtime.clock.now()
    rows = [
        {"id": f"msg_stats{i:04d}", "subscription_id": "stats", "event_id": f"e-stats-{i}",
         "ordering_key": "k", "status": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now}
        for i in range(150)
    ]  # fmt: skip
    counted = sa.text("SELECT reltuples::bigint, (SELECT count(*) FROM deliveries) FROM pg_class "
                      "WHERE oid = 'deliveries'::regclass")  # fmt: skip
    try:
        async with service.runtime.uow() as uow:
            assert await SqlDeliveries(uow.tx).add_deliveries(rows) == 150
            await uow.commit()
        async with service.runtime.uow() as uow:
            planned, actual = (await uow.session.execute(counted)).one()
        assert planned == actual
    finally:
        async with service.runtime.uow() as uow:
            await uow.session.execute(sa.delete(deliveries).where(deliveries.c.id.like("msg_stats%")))
            await uow.commit()


# -- Idempotency-Key: a retried command gets the first answer, secrets sealed in the table ----------


async def _stored_answers(service: Service, scope: str) -> list[dict[str, object]]:
    async with service.runtime.uow() as uow:
        rows = await uow.session.execute(
            sa.select(idempotency_keys.c.response).where(idempotency_keys.c.scope.startswith(scope))
        )
        return [row.response for row in rows]


async def test_a_retried_creation_gets_the_same_subscription_and_secret_never_stored_in_clear(
    service: Service,
) -> None:
    partner = service.as_("portal-idem", "partner")
    body = {"url": HOOK, "event_types": ["ee.draws.Invited"], "description": "retried"}
    key = {"Idempotency-Key": "create-portal-idem-1"}
    first = await service.client.post("/v1/webhooks/subscriptions", headers={**partner, **key}, json=body)
    assert first.status_code == 201, first.text
    created = first.json()
    again = await service.client.post("/v1/webhooks/subscriptions", headers={**partner, **key}, json=body)
    assert again.status_code == 201, again.text
    assert again.json() == created  # the same id and the same secret
    assert again.headers["Idempotent-Replayed"] == "true" and again.headers["ETag"] == '"1"'
    assert again.headers["Location"] == f"/v1/webhooks/subscriptions/{created['id']}"
    assert again.headers["Cache-Control"] == "no-store"
    listed = await service.client.get("/v1/webhooks/subscriptions", headers=partner)
    assert [s["id"] for s in listed.json()] == [created["id"]]  # one subscription, not two

    other_body = await service.client.post(
        "/v1/webhooks/subscriptions", headers={**partner, **key}, json={**body, "description": "other"}
    )
    assert other_body.status_code == 422 and other_body.json()["title"] == "Idempotency-Key reused"
    someone_else = service.as_("portal-idem-2", "partner")
    theirs = await service.client.post(
        "/v1/webhooks/subscriptions", headers={**someone_else, **key}, json=body
    )
    assert theirs.status_code == 201 and theirs.json()["id"] != created["id"]  # keys are per caller

    # Rotation with a key: the retry gets the same new secret; the creation's replay keeps the first
    # answer (the original secret, version 1), like every replay: the answer as it was given.
    path = f"/v1/webhooks/subscriptions/{created['id']}/secret/rotate"
    rotate_key = {"Idempotency-Key": "rotate-portal-idem-1", "If-Match": '"1"'}
    rotated = await service.client.post(path, headers={**partner, **rotate_key}, json={"overlap_seconds": 0})
    assert rotated.status_code == 200, rotated.text
    rotated_again = await service.client.post(
        path, headers={**partner, **rotate_key}, json={"overlap_seconds": 0}
    )
    assert rotated_again.status_code == 200 and rotated_again.json() == rotated.json()
    assert rotated.json()["secret"] != created["secret"]
    after_rotation = await service.client.post(
        "/v1/webhooks/subscriptions", headers={**partner, **key}, json=body
    )
    assert after_rotation.status_code == 201 and after_rotation.json() == created

    stored = await _stored_answers(service, "notifications.")
    text = orjson.dumps(stored)
    assert len(stored) >= 3 and b"secret_sealed" in text
    for secret in (created["secret"], rotated.json()["secret"], theirs.json()["secret"]):
        assert secret[6:].encode() not in text
    assert b"whsec_" not in text


async def test_update_delete_retry_and_replay_take_an_idempotency_key(service: Service) -> None:
    ops = service.as_("ops-idem", "ops")
    created = await service.subscribe(ops, HOOK, ["*"])
    path = f"/v1/webhooks/subscriptions/{created['id']}"
    update_key = {"Idempotency-Key": "update-ops-idem-1", "If-Match": '"1"'}
    changed = await service.client.patch(path, headers={**ops, **update_key}, json={"description": "x"})
    assert changed.status_code == 200 and changed.headers["ETag"] == '"2"', changed.text
    retried = await service.client.patch(path, headers={**ops, **update_key}, json={"description": "x"})
    assert retried.status_code == 200 and retried.json() == changed.json()  # not a 412
    assert retried.headers["Idempotent-Replayed"] == "true" and retried.headers["ETag"] == '"2"'

    window = {"since": "2026-01-01T00:00:00Z", "until": "2026-01-02T00:00:00Z"}
    replay_key = {"Idempotency-Key": "replay-ops-idem-1"}
    queued = await service.client.post(f"{path}/replay", headers={**ops, **replay_key}, json=window)
    assert queued.status_code == 202, queued.text
    queued_again = await service.client.post(f"{path}/replay", headers={**ops, **replay_key}, json=window)
    assert queued_again.status_code == 202 and queued_again.json() == queued.json()
    assert queued_again.headers["Idempotent-Replayed"] == "true"

    delete_key = {"Idempotency-Key": "delete-ops-idem-1", "If-Match": '"2"'}
    deleted = await service.client.delete(path, headers={**ops, **delete_key})
    assert deleted.status_code == 204
    deleted_again = await service.client.delete(path, headers={**ops, **delete_key})
    assert deleted_again.status_code == 204 and deleted_again.headers["Idempotent-Replayed"] == "true"
    without_key = await service.client.delete(path, headers={**ops, "If-Match": '"2"'})
    assert without_key.status_code == 404


async def test_every_command_on_someone_elses_subscription_is_404(service: Service) -> None:
    mine = await service.subscribe(service.as_("portal-own-a", "partner"), HOOK, ["ee.draws.Invited"])
    other = {**service.as_("portal-own-b", "partner"), "If-Match": '"1"'}
    path = f"/v1/webhooks/subscriptions/{mine['id']}"
    window = {"since": "2026-01-01T00:00:00Z", "until": "2026-01-02T00:00:00Z"}
    answers = [
        await service.client.patch(path, headers=other, json={"description": "x"}),
        await service.client.post(f"{path}/secret/rotate", headers=other, json={"overlap_seconds": 0}),
        await service.client.post(f"{path}/replay", headers=other, json=window),
        await service.client.post(f"{path}/deliveries/d-1/retry", headers=other),
        await service.client.delete(path, headers=other),
    ]
    assert [a.status_code for a in answers] == [404] * 5, [a.text for a in answers]
    read = await service.client.get(path, headers=service.as_("portal-own-a", "partner"))
    assert read.status_code == 200 and read.json()["version"] == 1  # untouched
