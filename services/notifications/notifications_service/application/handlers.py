"""Command handlers: each runs in one unit of work (the subscription row, its event in the outbox and
any deliveries commit together). Ownership is checked here: ops acts on every subscription, a partner
or province only on its own."""

from __future__ import annotations

import random
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from notifications_service.application.errors import StaleVersion, not_found
from notifications_service.application.events import EVENT_TYPES, EVENTS
from notifications_service.application.ports import SecretBox, Target, UnitOfWork, UowFactory
from notifications_service.domain.retry import Attempt, Verdict, due_at, next_delay_s, verdict_of
from notifications_service.domain.scope import Audience, matches, may_see
from notifications_service.domain.subscription import Spec, Subscriber, Subscription, check_subscriber
from notifications_service.settings import NotificationsSettings
from shared.crypto import CryptoError
from shared.problem import Problem

MAX_REPLAY_WINDOW = timedelta(days=31)
REPLAY_PAGE = 5000

OnSaved = Callable[[AsyncSession, Subscription, str | None], Awaitable[None]]
"""Called in a command's transaction before its commit, with the subscription as saved and the new
secret (create, rotate; else None): the API records its Idempotency-Key there."""
OnQueued = Callable[[AsyncSession, int], Awaitable[None]]
"""Called in a retry's or replay's transaction before its commit, with how many deliveries it queued."""

SEALED_SECRET: Final = "secret_sealed"


async def _nothing(*_: object) -> None:
    return None


class Clock(Protocol):
    def now(self) -> datetime: ...


class UrlChecker(Protocol):
    async def check(self, url: str) -> Any: ...


@dataclass(frozen=True)
class Created:
    subscription: Subscription
    secret: str


@dataclass(frozen=True)
class Outcome:
    """One attempt at a due delivery, as the dispatcher saw it."""

    delivery_id: str
    subscription_id: str
    attempts_before: int
    failing_since: datetime | None
    attempt: Attempt
    at: datetime


def may_access(subscriber: Subscriber, subscription: Subscription) -> bool:
    """Ops reach every subscription; a partner or province only its own."""
    owner = subscription.subscriber
    return subscriber.role == "ops" or (owner.sub == subscriber.sub and owner.role == subscriber.role)


class NotificationsHandlers:
    def __init__(
        self,
        uow_factory: UowFactory,
        clock: Clock,
        settings: NotificationsSettings,
        urls: UrlChecker,
        box: SecretBox,
        on_new_deliveries: Callable[[], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.uow = uow_factory
        self.clock = clock
        self.settings = settings
        self.urls = urls
        self.box = box
        self.on_new_deliveries = on_new_deliveries
        self.rng = rng or random.Random()

    # -- subscriptions ------------------------------------------------------------------------------

    async def create(self, subscriber: Subscriber, spec: Spec, on_saved: OnSaved = _nothing) -> Created:
        check_subscriber(subscriber)
        await self.urls.check(spec.url)
        secret = self.box.new_secret()
        async with self.uow() as uow:
            subscription = Subscription.create(
                str(uuid.uuid4()), subscriber, spec, secret, self.clock.now(), EVENT_TYPES
            )
            await uow.subscriptions.add(subscription)
            self._publish(uow, subscription)
            await on_saved(uow.session, subscription, secret)
            await uow.commit()
        return Created(subscription, secret)

    # -- answers that hold a secret, as an Idempotency-Key stores them -------------------------------

    def seal_answer(self, answer: dict[str, Any]) -> dict[str, Any]:
        """The answer as stored for replay: its `secret` sealed (AES-256-GCM, the subscription secrets'
        key), bound to the subscription's id; nothing secret stays in clear."""
        if "secret" not in answer:
            return answer
        stored = {k: v for k, v in answer.items() if k != "secret"}
        stored[SEALED_SECRET] = self.box.seal_text(answer["secret"], _answer_context(answer["id"]))
        return stored

    def open_answer(self, stored: dict[str, Any]) -> dict[str, Any]:
        """The answer `seal_answer` stored, its secret opened (409 when it no longer opens: the
        service's secret key changed since)."""
        if SEALED_SECRET not in stored:
            return stored
        answer = {k: v for k, v in stored.items() if k != SEALED_SECRET}
        try:
            answer["secret"] = self.box.open_text(stored[SEALED_SECRET], _answer_context(stored["id"]))
        except CryptoError:
            raise Problem(
                409, "Answer no longer available",
                "The answer recorded for this Idempotency-Key holds a secret that no longer opens (the "
                "service's secret key changed since); read the subscription, and rotate its secret to "
                "get a new one.",
            ) from None  # fmt: skip
        return answer

    async def get(self, subscriber: Subscriber, subscription_id: str) -> Subscription:
        async with self.uow() as uow:
            return await self._load(uow, subscriber, subscription_id, None, lock=False)

    async def list_for(self, subscriber: Subscriber) -> list[Subscription]:
        async with self.uow() as uow:
            return await uow.subscriptions.list(None if subscriber.role == "ops" else subscriber)

    async def update(
        self,
        subscriber: Subscriber,
        subscription_id: str,
        expected: int,
        changes: dict[str, Any],
        on_saved: OnSaved = _nothing,
    ) -> Subscription:
        async with self.uow() as uow:
            subscription = await self._load(uow, subscriber, subscription_id, expected)
            spec = None
            fields = {
                k: v for k, v in changes.items() if k in ("url", "event_types", "description", "candidates")
            }
            if fields:
                current = subscription.spec
                spec = Spec(
                    url=fields.get("url", current.url),
                    event_types=tuple(fields.get("event_types", current.event_types)),
                    description=fields.get("description", current.description),
                    candidates=tuple(fields.get("candidates", current.candidates)),
                )
                if spec.url != current.url:
                    await self.urls.check(spec.url)
            subscription.update(spec, changes.get("enabled"), self.clock.now(), EVENT_TYPES)
            await self._save(uow, subscription, on_saved)
        if changes.get("enabled") and self.on_new_deliveries is not None:
            self.on_new_deliveries()
        return subscription

    async def rotate(
        self,
        subscriber: Subscriber,
        subscription_id: str,
        expected: int,
        overlap: timedelta,
        on_saved: OnSaved = _nothing,
    ) -> Created:
        secret = self.box.new_secret()
        async with self.uow() as uow:
            subscription = await self._load(uow, subscriber, subscription_id, expected)
            subscription.rotate(secret, overlap, self.clock.now())
            await self._save(uow, subscription, on_saved, secret)
        return Created(subscription, secret)

    async def delete(
        self, subscriber: Subscriber, subscription_id: str, expected: int, on_saved: OnSaved = _nothing
    ) -> None:
        async with self.uow() as uow:
            subscription = await self._load(uow, subscriber, subscription_id, expected)
            subscription.delete(self.clock.now())
            await self._save(uow, subscription, on_saved)

    # -- the delivery log, retries, replays --------------------------------------------------------

    async def deliveries(
        self, subscriber: Subscriber, subscription_id: str, status: str | None, limit: int, before: int | None
    ) -> list[dict[str, Any]]:
        async with self.uow() as uow:
            await self._load(uow, subscriber, subscription_id, None, lock=False)
            return await uow.deliveries.delivery_log(subscription_id, status, limit, before)

    async def retry(
        self, subscriber: Subscriber, subscription_id: str, delivery_id: str, on_queued: OnQueued = _nothing
    ) -> dict[str, Any]:
        async with self.uow() as uow:
            await self._load(uow, subscriber, subscription_id, None, lock=False)
            row = await uow.deliveries.delivery_row(delivery_id)
            if row is None or row["subscription_id"] != subscription_id:
                raise not_found("delivery", delivery_id)
            await uow.deliveries.requeue([delivery_id], self.clock.now())
            await on_queued(uow.session, 1)
            await uow.commit()
        self._wake()
        return {**row, "status": "pending"}

    async def replay(
        self,
        subscriber: Subscriber,
        subscription_id: str,
        since: datetime,
        until: datetime,
        on_queued: OnQueued = _nothing,
    ) -> int:
        """Queue every event of [since, until) the subscription asks for and may see: new deliveries,
        and the ones already made sent again (same webhook-id). Scope is judged with today's
        nominations."""
        queued, after = 0, 0
        async with self.uow() as uow:
            subscription = await self._load(uow, subscriber, subscription_id, None, lock=False)
            target = _target(subscription)
            audience = subscription.audience
            now = self.clock.now()
            while True:
                page = await uow.deliveries.events_between(since, until, after, REPLAY_PAGE)
                if not page:
                    break
                after = page[-1]["position"]
                facts = [EVENT_TYPES.facts_of(row["type"], row["envelope"].get("data") or {}) for row in page]
                standing = await uow.deliveries.nominating_provinces(
                    f.profile_id for f in facts if f.profile_id
                )
                rows = [
                    uow.deliveries.pending_row(target.id, row["event_id"], row["ordering_key"], now)
                    for row, fact in zip(page, facts, strict=True)
                    if matches(target.event_types, fact.family)
                    and may_see(audience, fact, standing.get(fact.profile_id or ""))
                ]
                queued += await uow.deliveries.upsert_pending(rows, now)
            await on_queued(uow.session, queued)
            await uow.commit()
        self._wake()
        return queued

    # -- outcomes (the dispatcher) -------------------------------------------------------------------

    async def record_outcomes(self, outcomes: Sequence[Outcome]) -> None:
        """Write what the attempts did: the deliveries, their log, and the subscriptions' state (a 410
        or five days of failures disables one and publishes SubscriptionDisabled)."""
        if not outcomes:
            return
        schedule, jitter = self.settings.retry_schedule_s, self.settings.retry_jitter
        disable_after = timedelta(seconds=self.settings.disable_after_s)
        updates, attempts = [], []
        streaks: dict[str, list[tuple[Verdict, datetime]]] = {}
        for o in outcomes:
            verdict = verdict_of(o.attempt)
            made = o.attempts_before + 1
            status, next_at = "failed", o.at
            if verdict is Verdict.DELIVERED:
                status = "delivered"
            elif verdict is Verdict.RETRY:
                delay = next_delay_s(made, schedule, jitter, o.attempt.retry_after_s, self.rng)
                if delay is not None:
                    status, next_at = "pending", due_at(o.at, delay)
            a = o.attempt
            updates.append({
                "b_id": o.delivery_id, "b_status": status, "b_attempts": made, "b_next": next_at,
                "b_at": o.at, "b_delivered": o.at if status == "delivered" else None,
                "b_code": a.status_code, "b_error": a.error, "b_latency": a.latency_ms,
            })  # fmt: skip
            attempts.append({
                "delivery_id": o.delivery_id, "attempt": made, "at": o.at, "status_code": a.status_code,
                "latency_ms": a.latency_ms, "error": a.error,
            })  # fmt: skip
            if verdict is not Verdict.DELIVERED or o.failing_since is not None:
                streaks.setdefault(o.subscription_id, []).append((verdict, o.at))
        async with self.uow() as uow:
            await uow.deliveries.update_deliveries(updates)
            await uow.deliveries.add_attempts(attempts)
            repo = uow.subscriptions
            for subscription_id, seen in sorted(streaks.items()):
                subscription = await repo.get(subscription_id, lock=True)
                if subscription is None:
                    continue
                changed = False
                for verdict, at in seen:
                    if verdict is Verdict.DELIVERED:
                        changed |= subscription.delivered()
                    elif verdict is Verdict.GONE:
                        changed |= subscription.gone(at)
                    else:
                        changed |= subscription.failed(at, disable_after)
                if changed:
                    await repo.save(subscription)
                    self._publish(uow, subscription)
            await uow.commit()

    # -- plumbing ------------------------------------------------------------------------------------

    async def _load(
        self,
        uow: UnitOfWork,
        subscriber: Subscriber,
        subscription_id: str,
        expected: int | None,
        lock: bool = True,
    ) -> Subscription:
        subscription = await uow.subscriptions.get(subscription_id, lock=lock)
        if subscription is None or not may_access(subscriber, subscription):
            raise not_found("subscription", subscription_id)
        if expected is not None and expected != subscription.version:
            raise StaleVersion(expected, subscription.version, what="subscription")
        return subscription

    async def _save(
        self, uow: UnitOfWork, subscription: Subscription, on_saved: OnSaved, secret: str | None = None
    ) -> None:
        await uow.subscriptions.save(subscription)
        self._publish(uow, subscription)
        await on_saved(uow.session, subscription, secret)
        await uow.commit()

    @staticmethod
    def _publish(uow: UnitOfWork, subscription: Subscription) -> None:
        pending, subscription.pending = subscription.pending, []
        for event in pending:
            uow.publish(EVENTS.to_wire(event))

    def _wake(self) -> None:
        if self.on_new_deliveries is not None:
            self.on_new_deliveries()


def _answer_context(subscription_id: str) -> str:
    return f"idempotent-answer:{subscription_id}"


def _target(subscription: Subscription) -> Target:
    s = subscription.subscriber
    return Target(
        subscription.id, s.sub, s.role, s.province, subscription.spec.event_types,
        frozenset(subscription.spec.candidates),
    )  # fmt: skip


__all__ = ["Audience", "Created", "NotificationsHandlers", "OnQueued", "OnSaved", "Outcome", "may_access"]
