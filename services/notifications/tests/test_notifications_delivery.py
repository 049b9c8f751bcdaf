"""Deliveries end to end with real Kafka, PostgreSQL and receiver processes on loopback that verify every
signature with `standardwebhooks`: an ITA reaches its partner; a receiver down then up gets everything,
each webhook-id once after dedupe, in per-candidate order; a province never hears of another
province's nominee; 410 disables and ops is told; the log, retry and replay."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from notifications_harness import Receiver, Service, invited, publish

from notifications_service.adapters.tables import delivery_attempts
from shared.events.catalogue import (
    Applied,
    Approved,
    Event,
    InvitationDeadlineApproaching,
    NominationIssued,
    NominationWithdrawn,
    RoundOfInvitationsHeld,
)
from shared.testing import wait_until

pytestmark = pytest.mark.infra
Json = dict[str, Any]


def _now() -> datetime:
    return datetime.now().astimezone()


def _by_id(records: list[Json]) -> dict[str, Json]:
    first: dict[str, Json] = {}
    for record in records:
        first.setdefault(record["webhook_id"], record)
    return first


@pytest.fixture
def tmp_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path


async def _subscribe_receiver(
    service: Service, rcv: Receiver, path: str, who: dict[str, str], types: list[str], **extra: Any
) -> Json:
    created = await service.subscribe(who, rcv.url(path), types, **extra)
    rcv.routes[path] = created["secret"]
    return created


async def test_an_ita_reaches_the_partner(service: Service, tmp_dir: Path) -> None:
    rcv = Receiver(tmp_dir, {})
    partner = service.as_("portal-ita", "partner")
    created = await _subscribe_receiver(service, rcv, "/portal", partner, ["ee.draws.Invited"])
    ops = await _subscribe_receiver(service, rcv, "/ops", service.as_("ops-ita", "ops"), ["ee.draws.*"])
    await rcv.start()
    try:
        mine, theirs = invited("portal-ita"), invited("portal-other")
        await publish(service.settings, [theirs, mine], "ee/draws")
        await wait_until(
            lambda: len(rcv.accepted("/ops")) >= 2, timeout=30, message="ops never got both ITAs"
        )
        await wait_until(
            lambda: len(rcv.accepted("/portal")) >= 1, timeout=30, message="no ITA at the partner"
        )
    finally:
        await rcv.stop()
    (record,) = rcv.accepted("/portal")  # signature verified by the receiver, only its own ITA
    body = record["body"]
    assert body["type"] == "ee.draws.Invited.v1" and body["specversion"] == "1.0"
    assert (
        body["data"]["profile_id"] == mine.profile_id and body["data"]["invitation_id"] == mine.invitation_id
    )
    assert record["webhook_id"].startswith("msg_")
    latency_ms = (record["received_at"] - datetime.fromisoformat(body["time"]).timestamp()) * 1000
    print(f"ITA published -> received by the partner: {latency_ms:.1f} ms (measured in make bench)")
    assert not any("error" in r for r in rcv.records())

    log = await service.client.get(f"/v1/webhooks/subscriptions/{created['id']}/deliveries", headers=partner)
    assert log.status_code == 200
    (delivery,) = log.json()["items"]
    assert delivery["id"] == record["webhook_id"] and delivery["status"] == "delivered"
    assert delivery["attempts"] == 1 and delivery["last_status_code"] == 204
    assert delivery["attempt_log"][0]["latency_ms"] > 0
    assert ops["id"] != created["id"]


def _journey(owner: str, profile_id: str) -> list[Event]:
    """Four events of one candidate on one topic (one partition): their order is the candidate's order."""
    now, invitation = _now(), str(uuid.uuid4())
    base = {"profile_id": profile_id, "owner": owner, "invitation_id": invitation}
    return [
        InvitationDeadlineApproaching(**base, deadline=now + timedelta(days=30), days_before=30),
        InvitationDeadlineApproaching(**base, deadline=now + timedelta(days=7), days_before=7),
        Applied(**base, application_id=f"a-{profile_id}", program="fsw", applied_at=now),
        Approved(**base, application_id=f"a-{profile_id}", decided_at=now),
    ]


async def _failed_attempts(service: Service) -> int:
    async with service.runtime.uow() as uow:
        query = sa.select(sa.func.count()).where(delivery_attempts.c.status_code.is_(None))
        return int((await uow.session.execute(query)).scalar_one())


async def test_receiver_down_then_up_gets_everything_once_in_order(service: Service, tmp_dir: Path) -> None:
    rcv = Receiver(tmp_dir, {})
    partner = service.as_("portal-outage", "partner")
    created = await _subscribe_receiver(service, rcv, "/outage", partner, ["ee.applications.*"])
    journeys: dict[str, list[Event]] = {f"p-out-{i}-{uuid.uuid4().hex[:6]}": [] for i in range(25)}
    events: list[Event] = []
    for profile_id in journeys:
        journey = _journey("portal-outage", profile_id)
        journeys[profile_id] = journey
        events += journey
    failed_before = await _failed_attempts(service)

    # The receiver is down: every attempt is refused; retries are scheduled (backoff with jitter).
    await publish(service.settings, events, "ee/applications")

    async def retried() -> bool:
        return await _failed_attempts(service) - failed_before >= 3 * len(journeys)

    await wait_until(retried, timeout=60, interval=0.1, message="the attempts never failed and retried")
    pending = await service.client.get(
        f"/v1/webhooks/subscriptions/{created['id']}/deliveries",
        headers=partner,
        params={"status": "pending"},
    )
    heads = pending.json()["items"]
    assert heads and all(item["last_error"] for item in heads if item["attempts"])

    await rcv.start()
    try:
        await wait_until(
            lambda: len(_by_id(rcv.accepted("/outage"))) >= len(events),
            timeout=60,
            message=lambda: f"{len(_by_id(rcv.accepted('/outage')))} of {len(events)} arrived",
        )
        first = _by_id(rcv.accepted("/outage"))
        assert len(first) == len(events)  # each webhook-id once after dedupe, none missing
        # per candidate, the first arrivals are in the candidate's order
        arrivals: dict[str, list[str]] = {}
        for record in rcv.accepted("/outage"):
            data = record["body"]["data"]
            key = (record["body"]["type"], data.get("days_before"))
            seen = arrivals.setdefault(data["profile_id"], [])
            if f"{key}" not in seen:
                seen.append(f"{key}")
        for profile_id, journey in journeys.items():
            expected = [f"{(e.event_type(), getattr(e, 'days_before', None))}" for e in journey]
            assert arrivals[profile_id] == expected, profile_id

        # A replay of the window sends them all again, under the same webhook-ids.
        since = min(datetime.fromisoformat(r["body"]["time"]) for r in first.values()) - timedelta(seconds=1)
        answer = await service.client.post(
            f"/v1/webhooks/subscriptions/{created['id']}/replay", headers=partner,
            json={"since": since.isoformat(), "until": (_now() + timedelta(seconds=5)).isoformat()},
        )  # fmt: skip
        assert answer.status_code == 202 and answer.json()["queued"] == len(events)
        total = len(rcv.accepted("/outage"))
        await wait_until(lambda: len(rcv.accepted("/outage")) >= total + len(events), timeout=60,
                         message="the replay did not arrive")  # fmt: skip
        assert set(_by_id(rcv.accepted("/outage"))) == set(first)

        # One delivery retried by hand: once more, same id.
        one = next(iter(first))
        retry = await service.client.post(
            f"/v1/webhooks/subscriptions/{created['id']}/deliveries/{one}/retry", headers=partner
        )
        assert retry.status_code == 202
        await wait_until(
            lambda: sum(r["webhook_id"] == one for r in rcv.accepted("/outage")) >= 3,
            timeout=30, message="the retried delivery did not arrive",
        )  # fmt: skip
    finally:
        await rcv.stop()
    assert not any("error" in r for r in rcv.records())


async def test_a_province_never_receives_another_provinces_nominee(service: Service, tmp_dir: Path) -> None:
    rcv = Receiver(tmp_dir, {})
    on = await _subscribe_receiver(service, rcv, "/on", service.as_("ontario", "province", "ON"), ["*"],
                                   candidates=["p-followed-on"])  # fmt: skip
    await _subscribe_receiver(service, rcv, "/bc", service.as_("bc", "province", "BC"), ["*"])
    await _subscribe_receiver(
        service, rcv, "/ops", service.as_("ops-prov", "ops"), ["ee.profile.*", "ee.draws.*"]
    )
    tag = uuid.uuid4().hex[:6]
    p_on, p_bc, p_none, p_moved = (f"p-{name}-{tag}" for name in ("on", "bc", "none", "moved"))
    await rcv.start()
    try:
        nominations = [
            NominationIssued(profile_id=p_on, owner="portal-1", province="ON", nominated_at=_now()),
            NominationIssued(profile_id=p_bc, owner="portal-1", province="BC", nominated_at=_now()),
            NominationIssued(profile_id=p_moved, owner="portal-1", province="BC", nominated_at=_now()),
        ]
        await publish(service.settings, nominations, "ee/profile")
        # p_moved goes from BC to ON (same key, so in this order).
        moved = [
            NominationWithdrawn(profile_id=p_moved, owner="portal-1", province="BC", withdrawn_at=_now()),
            NominationIssued(profile_id=p_moved, owner="portal-1", province="ON", nominated_at=_now()),
        ]
        await publish(service.settings, moved, "ee/profile")
        await wait_until(
            lambda: len(rcv.accepted("/ops")) >= 5, timeout=30, message="nominations not fanned out"
        )
        held = RoundOfInvitationsHeld(
            round_id=f"r-{tag}", round_number=400, round_type="pnp", size=4, invitations_count=4,
            cutoff_crs=700, tie_break_at=_now(), held_at=_now(),
        )  # fmt: skip
        itas = [invited("portal-1", p) for p in (p_on, p_bc, p_none, p_moved, "p-followed-on")]
        await publish(service.settings, [held, *itas], "ee/draws")
        await wait_until(lambda: len(rcv.accepted("/ops")) >= 11, timeout=30, message="ops did not get all")
        await wait_until(lambda: len(rcv.accepted("/bc")) >= 5, timeout=30, message="BC did not get its own")
        await wait_until(lambda: len(rcv.accepted("/on")) >= 6, timeout=30, message="ON did not get its own")
    finally:
        await rcv.stop()

    def heard(path: str) -> list[tuple[str, str | None]]:
        return sorted(
            (r["body"]["type"].split(".")[2], r["body"]["data"].get("profile_id")) for r in rcv.accepted(path)
        )

    round_held = ("RoundOfInvitationsHeld", None)
    on_expected = [("NominationIssued", p_on), ("NominationIssued", p_moved), round_held]
    assert heard("/on") == sorted(
        [*on_expected, ("Invited", p_on), ("Invited", p_moved), ("Invited", "p-followed-on")]
    )
    bc_expected = [
        ("NominationIssued", p_bc),
        ("NominationIssued", p_moved),
        ("NominationWithdrawn", p_moved),
    ]
    assert heard("/bc") == sorted([*bc_expected, round_held, ("Invited", p_bc)])
    for record in rcv.accepted("/on") + rcv.accepted("/bc"):
        assert "document" not in record["body"]["data"] and "owner" not in record["body"]["data"]
    assert on["candidates"] == ["p-followed-on"]


async def test_410_disables_the_subscription_and_ops_is_told(service: Service, tmp_dir: Path) -> None:
    gone = Receiver(tmp_dir, {}, status=410)
    ops_rcv = Receiver(tmp_dir, {})
    partner = service.as_("portal-gone", "partner")
    created = await _subscribe_receiver(service, gone, "/gone", partner, ["ee.draws.Invited"])
    await _subscribe_receiver(service, ops_rcv, "/ops", service.as_("ops-410", "ops"), ["ee.notifications.*"])
    await gone.start()
    await ops_rcv.start()
    try:
        await publish(service.settings, [invited("portal-gone")], "ee/draws")
        path = f"/v1/webhooks/subscriptions/{created['id']}"

        async def disabled() -> bool:
            return (await service.client.get(path, headers=partner)).json()["enabled"] is False

        await wait_until(disabled, timeout=30, message="410 did not disable the subscription")
        await wait_until(
            lambda: any(
                r["body"]["data"]["subscription_id"] == created["id"]
                for r in ops_rcv.accepted("/ops")
                if r["body"]["type"].endswith("SubscriptionDisabled.v1")
            ),
            timeout=30,
            message="ops never heard of the disabled subscription",
        )
        answer = (await service.client.get(path, headers=partner)).json()
        assert "410" in answer["disabled_reason"]
    finally:
        await gone.stop()
        await ops_rcv.stop()


async def test_five_days_of_failures_disable_and_ops_is_told(service: Service, tmp_dir: Path) -> None:
    failing = Receiver(tmp_dir, {}, status=503)
    ops_rcv = Receiver(tmp_dir, {})
    partner = service.as_("portal-503", "partner")
    created = await _subscribe_receiver(service, failing, "/down", partner, ["ee.draws.Invited"])
    await _subscribe_receiver(service, ops_rcv, "/ops", service.as_("ops-503", "ops"), ["ee.notifications.*"])
    path = f"/v1/webhooks/subscriptions/{created['id']}"
    await failing.start()
    await ops_rcv.start()
    try:
        await publish(service.settings, [invited("portal-503")], "ee/draws")

        async def failing_since() -> bool:
            return (await service.client.get(path, headers=partner)).json()["failing_since"] is not None

        await wait_until(failing_since, timeout=30, message="the 503s never started a failure streak")
        assert (await service.client.get(path, headers=partner)).json()["enabled"] is True
        service.runtime.clock.set_offset(timedelta(days=5, hours=1))  # the retries go on meanwhile
        try:

            async def disabled() -> bool:
                return (await service.client.get(path, headers=partner)).json()["enabled"] is False

            await wait_until(disabled, timeout=30, message="five days of failures did not disable it")
            await wait_until(
                lambda: any(
                    r["body"]["data"]["subscription_id"] == created["id"]
                    and r["body"]["type"].endswith("SubscriptionDisabled.v1")
                    for r in ops_rcv.accepted("/ops")
                ),
                timeout=30,
                message="ops never heard of it",
            )
        finally:
            service.runtime.clock.set_offset(timedelta(0))
        answer = (await service.client.get(path, headers=partner)).json()
        assert "5 days" in answer["disabled_reason"]
        log = await service.client.get(f"{path}/deliveries", headers=partner)
        (delivery,) = log.json()["items"]
        assert delivery["last_status_code"] == 503 and len(delivery["attempt_log"]) >= 2
    finally:
        await failing.stop()
        await ops_rcv.stop()


async def test_personal_data_erased_drops_the_persons_events_and_webhook_payloads(
    service: Service, tmp_dir: Path
) -> None:
    """docs/PRIVACY.md: on PersonalDataErased the candidate's earlier events and their deliveries go;
    the erasure itself reaches the subscriber, so that it drops its own copies."""
    from notifications_service.adapters.tables import deliveries, events
    from shared.events.catalogue import PersonalDataErased

    rcv = Receiver(tmp_dir, {})
    partner = service.as_("portal-erase", "partner")
    await _subscribe_receiver(service, rcv, "/portal", partner, ["ee.draws.Invited", "ee.profile.*"])
    gone, kept = invited("portal-erase"), invited("portal-erase")
    await rcv.start()
    try:
        await publish(service.settings, [gone, kept], "ee/draws")
        await wait_until(lambda: len(rcv.accepted("/portal")) >= 2, timeout=30, message="no ITAs delivered")
        erased = PersonalDataErased(
            profile_id=gone.profile_id, owner=gone.owner, reason="ops", erased_at=_now()
        )
        await publish(service.settings, [erased], "ee/profile")
        await wait_until(
            lambda: len(rcv.accepted("/portal")) >= 3, timeout=30, message="erasure not delivered"
        )
    finally:
        await rcv.stop()
    assert rcv.accepted("/portal")[-1]["body"]["type"] == "ee.profile.PersonalDataErased.v1"
    async with service.runtime.uow() as uow:
        rows = (
            await uow.session.execute(
                sa.select(events.c.type, events.c.ordering_key).where(
                    events.c.ordering_key.in_([gone.profile_id, kept.profile_id])
                )
            )
        ).all()
        left = (
            (
                await uow.session.execute(
                    sa.select(events.c.type)
                    .select_from(deliveries)
                    .join(events, events.c.event_id == deliveries.c.event_id)
                    .where(events.c.ordering_key == gone.profile_id)
                )
            )
            .scalars()
            .all()
        )
    assert sorted(rows) == sorted(
        [("ee.profile.PersonalDataErased.v1", gone.profile_id), ("ee.draws.Invited.v1", kept.profile_id)]
    )
    assert left and set(left) == {"ee.profile.PersonalDataErased.v1"}  # only the erasure's own deliveries
