"""The pure rules: URLs refused or accepted, who may see which event and what of it, the retry
schedule, and a subscription's secrets and failure streak."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from notifications_service.application.events import EVENT_TYPES
from notifications_service.domain.errors import InvalidSubscription, UnsafeUrl
from notifications_service.domain.events import SubscriptionDisabled
from notifications_service.domain.retry import Attempt, Verdict, next_delay_s, parse_retry_after, verdict_of
from notifications_service.domain.scope import Audience, matches, may_see, pattern_problem, redact
from notifications_service.domain.subscription import Spec, Subscriber, Subscription
from notifications_service.domain.urls import check_addresses, parse_webhook_url

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
SCHEDULE = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)


# -- URLs -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["https://10.1.2.3/x", "https://192.168.0.1/", "https://172.31.255.255/", "https://169.254.169.254/",
     "https://[fd00:ec2::254]/", "https://[fe80::1]/", "https://100.64.0.1/", "https://224.0.0.1/",
     "https://[::ffff:192.168.1.1]/", "https://0.0.0.0/", "https://[::]/"],
)  # fmt: skip
def test_non_public_addresses_are_refused(url: str) -> None:
    with pytest.raises(UnsafeUrl):
        parse_webhook_url(url, allow_loopback=True)


def test_loopback_only_outside_production_and_http_only_to_loopback() -> None:
    assert parse_webhook_url("http://127.0.0.1:8080/h", allow_loopback=True).port == 8080
    assert parse_webhook_url("http://localhost/h", allow_loopback=True).host == "localhost"
    for url in ("http://127.0.0.1/h", "https://127.0.0.1/h", "https://[::1]/h", "http://localhost/h"):
        with pytest.raises(UnsafeUrl):
            parse_webhook_url(url, allow_loopback=False)
    with pytest.raises(UnsafeUrl, match="https"):
        parse_webhook_url("http://8.8.8.8/h", allow_loopback=True)
    public = parse_webhook_url("https://8.8.8.8/hooks?x=1", allow_loopback=False)
    assert (public.port, public.target) == (443, "/hooks?x=1")


def test_a_host_is_refused_when_any_address_it_resolves_to_is_private() -> None:
    hook = parse_webhook_url("https://partner.example/h", allow_loopback=False)
    assert str(check_addresses(hook, ["8.8.8.8"], allow_loopback=False)) == "8.8.8.8"
    with pytest.raises(UnsafeUrl, match="private"):
        check_addresses(hook, ["8.8.8.8", "10.0.0.1"], allow_loopback=False)
    with pytest.raises(UnsafeUrl, match="resolve"):
        check_addresses(hook, [], allow_loopback=False)


# -- scope ------------------------------------------------------------------------------------------


def _invited(owner: str, profile_id: str = "p-1") -> dict[str, object]:
    return {"profile_id": profile_id, "owner": owner, "document": {"x": 1}, "crs": 500}


def test_a_partner_hears_only_of_its_own_profiles() -> None:
    partner = Audience("portal-1", "partner", None)
    assert may_see(partner, EVENT_TYPES.facts_of("ee.draws.Invited.v1", _invited("portal-1")), None)
    assert not may_see(partner, EVENT_TYPES.facts_of("ee.draws.Invited.v1", _invited("portal-2")), None)
    round_held = EVENT_TYPES.facts_of("ee.draws.RoundOfInvitationsHeld.v1", {"round_id": "r"})
    assert not may_see(partner, round_held, None)


def test_a_province_hears_of_its_nominees_followed_candidates_and_rounds_never_of_others() -> None:
    ontario = Audience("ontario", "province", "ON", frozenset({"p-followed", "p-bc"}))
    event = "ee.draws.Invited.v1"
    assert may_see(ontario, EVENT_TYPES.facts_of(event, _invited("x", "p-nominee")), "ON")
    assert not may_see(ontario, EVENT_TYPES.facts_of(event, _invited("x", "p-nominee")), "BC")
    assert may_see(ontario, EVENT_TYPES.facts_of(event, _invited("x", "p-followed")), None)
    # followed, but BC's nominee
    assert not may_see(ontario, EVENT_TYPES.facts_of(event, _invited("x", "p-bc")), "BC")
    assert not may_see(ontario, EVENT_TYPES.facts_of(event, _invited("x", "p-stranger")), None)
    assert may_see(ontario, EVENT_TYPES.facts_of("ee.draws.RoundOfInvitationsHeld.v1", {}), None)
    assert not may_see(ontario, EVENT_TYPES.facts_of("ee.notifications.SubscriptionDisabled.v1", {}), None)
    assert redact("province", _invited("portal-1")) == {"profile_id": "p-1", "crs": 500}
    assert redact("partner", _invited("portal-1"))["document"] == {"x": 1}


def test_officers_and_candidates_hear_nothing_and_ops_everything() -> None:
    facts = EVENT_TYPES.facts_of("ee.draws.Invited.v1", _invited("c-1"))
    assert not may_see(Audience("o-1", "officer", None), facts, None)
    assert not may_see(Audience("c-1", "candidate", None), facts, None)
    assert may_see(Audience("ops", "ops", None), facts, "ON")


def test_event_type_patterns() -> None:
    assert matches(["ee.draws.*"], "ee.draws.Invited")
    assert not matches(["ee.draws.*"], "ee.drawsX.Invited")
    assert matches(["*"], "ee.notifications.SubscriptionDisabled")
    assert not matches(["ee.draws.Invited"], "ee.draws.RoundOfInvitationsHeld")
    assert pattern_problem("ee.draws.Invited", "partner", EVENT_TYPES) is None
    assert pattern_problem("ee.draws.Invited.v1", "partner", EVENT_TYPES) is not None
    assert pattern_problem("ee.nope.*", "ops", EVENT_TYPES) is not None
    assert pattern_problem("ee.notifications.*", "province", EVENT_TYPES) is not None


# -- retries ----------------------------------------------------------------------------------------


def test_verdicts() -> None:
    assert verdict_of(Attempt(200, None, 1)) is Verdict.DELIVERED
    assert verdict_of(Attempt(204, None, 1)) is Verdict.DELIVERED
    assert verdict_of(Attempt(410, "gone", 1)) is Verdict.GONE
    for code in (500, 502, 503, 408, 429):
        assert verdict_of(Attempt(code, "x", 1)) is Verdict.RETRY
    assert verdict_of(Attempt(None, "refused", 1)) is Verdict.RETRY
    for code in (301, 302, 400, 401, 404):
        assert verdict_of(Attempt(code, "x", 1)) is Verdict.FAILED


def test_schedule_with_jitter_and_retry_after() -> None:
    rng = random.Random(1)
    delays = [next_delay_s(n, SCHEDULE, 0.2, None, rng) for n in range(1, 8)]
    for delay, base in zip(delays, SCHEDULE, strict=True):
        assert delay is not None and base * 0.8 <= delay <= base * 1.2
    assert len({round(d or 0, 6) for d in delays[-2:]}) == 2  # jitter: two 10 h waits differ
    assert next_delay_s(8, SCHEDULE, 0.2, None, rng) is None  # exhausted: failed
    assert next_delay_s(1, SCHEDULE, 0.0, 120.0) == 120.0  # Retry-After longer than the schedule
    assert next_delay_s(2, SCHEDULE, 0.0, 1.0) == 300.0  # never sooner than the schedule
    assert parse_retry_after("30", NOW) == 30.0
    assert parse_retry_after("Fri, 04 Dec 2026 12:01:00 GMT", NOW) == 60.0
    assert parse_retry_after("soon", NOW) is None


# -- subscriptions ----------------------------------------------------------------------------------


def _subscription(role: str = "partner", province: str | None = None) -> Subscription:
    spec = Spec("https://portal.example/h", ("ee.draws.Invited",), "d")
    subscriber = Subscriber("portal-1", role, province)
    return Subscription.create("s-1", subscriber, spec, "whsec_a", NOW, EVENT_TYPES)


def test_rotation_keeps_the_previous_secret_for_the_overlap() -> None:
    subscription = _subscription()
    subscription.rotate("whsec_b", timedelta(hours=1), NOW)
    assert subscription.signing_secrets(NOW + timedelta(minutes=59)) == ["whsec_b", "whsec_a"]
    assert subscription.signing_secrets(NOW + timedelta(hours=1)) == ["whsec_b"]
    assert subscription.version == 2
    with pytest.raises(InvalidSubscription):
        subscription.rotate("whsec_c", timedelta(days=8), NOW)


def test_five_days_of_failures_disable_and_tell_ops_a_success_resets_the_streak() -> None:
    five_days = timedelta(days=5)
    subscription = _subscription()
    subscription.pending.clear()
    assert subscription.failed(NOW, five_days)
    assert not subscription.failed(NOW + timedelta(days=4), five_days)
    assert subscription.delivered() and subscription.failing_since is None
    subscription.failed(NOW + timedelta(days=4), five_days)
    assert not subscription.failed(NOW + timedelta(days=8, hours=23), five_days)
    assert subscription.enabled
    assert subscription.failed(NOW + timedelta(days=9), five_days)
    assert not subscription.enabled
    (event,) = subscription.pending
    assert isinstance(event, SubscriptionDisabled) and "5 days" in event.reason


def test_410_disables_at_once() -> None:
    subscription = _subscription()
    assert subscription.gone(NOW)
    assert not subscription.enabled and subscription.disabled_reason
    assert isinstance(subscription.pending[-1], SubscriptionDisabled)
    assert not subscription.gone(NOW)


def test_who_may_subscribe() -> None:
    with pytest.raises(InvalidSubscription):
        _subscription(role="officer")
    with pytest.raises(InvalidSubscription):
        _subscription(role="province")  # no province claim
    with pytest.raises(InvalidSubscription, match="candidates"):
        Subscription.create(
            "s",
            Subscriber("p", "partner"),
            Spec("https://x.example/", ("*",), "", ("p-1",)),
            "whsec_a",
            NOW,
            EVENT_TYPES,
        )
