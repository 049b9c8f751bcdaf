"""A webhook subscription (pure): who it belongs to, where and what it delivers, its secrets, whether
it is enabled, and the failure streak that disables it.

Every change records the domain event (`domain.events`) of it (published through the outbox with the
change). Secrets are opaque strings here (`whsec_...`); storing them encrypted is the adapters' job.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from notifications_service.domain.errors import FieldProblem, InvalidSubscription
from notifications_service.domain.events import (
    SubscriptionCreated,
    SubscriptionDeleted,
    SubscriptionDisabled,
    SubscriptionFact,
    SubscriptionSecretRotated,
    SubscriptionUpdated,
    Who,
)
from notifications_service.domain.scope import SUBSCRIBER_ROLES, Audience, EventTypes, pattern_problem

MAX_EVENT_TYPES = 50
MAX_CANDIDATES = 10_000
MAX_DESCRIPTION = 500
MAX_OVERLAP = timedelta(days=7)
GONE_REASON = "the endpoint answered 410 Gone"


@dataclass(frozen=True)
class Subscriber:
    sub: str
    role: str
    province: str | None = None


@dataclass(frozen=True)
class Spec:
    """What a subscriber chooses: the URL (already checked by `domain.urls`), the event types, a
    description and, for a province, the candidates it follows."""

    url: str
    event_types: tuple[str, ...]
    description: str = ""
    candidates: tuple[str, ...] = ()


def check_spec(spec: Spec, subscriber: Subscriber, types: EventTypes) -> Spec:
    problems: list[FieldProblem] = []
    if not spec.event_types:
        problems.append(FieldProblem("event_types", "name at least one event type, ee.<service>.* or *"))
    if len(spec.event_types) > MAX_EVENT_TYPES:
        problems.append(FieldProblem("event_types", f"at most {MAX_EVENT_TYPES} entries"))
    for i, pattern in enumerate(spec.event_types):
        problem = pattern_problem(pattern, subscriber.role, types)
        if problem:
            problems.append(FieldProblem(f"event_types.{i}", problem))
    if len(spec.description) > MAX_DESCRIPTION:
        problems.append(FieldProblem("description", f"at most {MAX_DESCRIPTION} characters"))
    if spec.candidates and subscriber.role != "province":
        problems.append(FieldProblem("candidates", "only a province follows candidates by id"))
    if len(spec.candidates) > MAX_CANDIDATES:
        problems.append(FieldProblem("candidates", f"at most {MAX_CANDIDATES:,} profile ids"))
    if problems:
        raise InvalidSubscription(problems)
    return replace(
        spec,
        event_types=tuple(dict.fromkeys(spec.event_types)),
        candidates=tuple(dict.fromkeys(spec.candidates)),
    )


def check_subscriber(subscriber: Subscriber) -> None:
    if subscriber.role not in SUBSCRIBER_ROLES:
        raise InvalidSubscription([FieldProblem("role", f"a {subscriber.role} cannot subscribe to webhooks")])
    if subscriber.role == "province" and not subscriber.province:
        raise InvalidSubscription([FieldProblem("province", "a province token needs its `province` claim")])


@dataclass
class Subscription:
    id: str
    subscriber: Subscriber
    spec: Spec
    secret: str
    created_at: datetime
    updated_at: datetime
    previous_secret: str | None = None
    previous_valid_until: datetime | None = None
    enabled: bool = True
    disabled_reason: str | None = None
    failing_since: datetime | None = None
    deleted: bool = False
    version: int = 1
    pending: list[SubscriptionFact] = field(default_factory=list)

    @classmethod
    def create(
        cls,
        subscription_id: str,
        subscriber: Subscriber,
        spec: Spec,
        secret: str,
        now: datetime,
        types: EventTypes,
    ) -> Subscription:
        """A new subscription; `types`: the event types its spec may name."""
        check_subscriber(subscriber)
        spec = check_spec(spec, subscriber, types)
        subscription = cls(subscription_id, subscriber, spec, secret, now, now)
        subscription.pending.append(
            SubscriptionCreated(
                **subscription._who(),
                url=spec.url,
                event_types=list(spec.event_types),
                description=spec.description,
                candidates=list(spec.candidates),
                created_at=now,
            )
        )
        return subscription

    @property
    def audience(self) -> Audience:
        return Audience(
            self.subscriber.sub,
            self.subscriber.role,
            self.subscriber.province,
            frozenset(self.spec.candidates),
        )

    def signing_secrets(self, now: datetime) -> list[str]:
        """The current secret, and the previous one while its overlap lasts (both sign)."""
        secrets = [self.secret]
        if self.previous_secret and self.previous_valid_until and now < self.previous_valid_until:
            secrets.append(self.previous_secret)
        return secrets

    def update(self, spec: Spec | None, enabled: bool | None, now: datetime, types: EventTypes) -> None:
        if spec is not None:
            self.spec = check_spec(spec, self.subscriber, types)
        if enabled is not None and enabled != self.enabled:
            self.enabled = enabled
            self.disabled_reason = None if enabled else "disabled by its owner"
            self.failing_since = None
        self._changed(now)
        self.pending.append(
            SubscriptionUpdated(
                **self._who(),
                url=self.spec.url,
                event_types=list(self.spec.event_types),
                description=self.spec.description,
                candidates=list(self.spec.candidates),
                enabled=self.enabled,
                updated_at=now,
            )
        )

    def rotate(self, new_secret: str, overlap: timedelta, now: datetime) -> None:
        if overlap < timedelta(0) or overlap > MAX_OVERLAP:
            raise InvalidSubscription(
                [FieldProblem("overlap_seconds", f"from 0 to {int(MAX_OVERLAP.total_seconds())} seconds")]
            )
        self.previous_secret = self.secret if overlap else None
        self.previous_valid_until = now + overlap if overlap else None
        self.secret = new_secret
        self._changed(now)
        self.pending.append(
            SubscriptionSecretRotated(
                **self._who(), previous_valid_until=self.previous_valid_until, rotated_at=now
            )
        )

    def delete(self, now: datetime) -> None:
        self.deleted = True
        self.enabled = False
        self._changed(now)
        self.pending.append(SubscriptionDeleted(**self._who(), deleted_at=now))

    # -- outcomes of deliveries ------------------------------------------------------------------

    def delivered(self) -> bool:
        """A delivery succeeded: the failure streak ends. True when something changed."""
        if self.failing_since is None:
            return False
        self.failing_since = None
        return True

    def failed(self, now: datetime, disable_after: timedelta) -> bool:
        """A delivery attempt failed. Starts the streak, or disables the subscription (and tells ops,
        through SubscriptionDisabled) once it has failed for `disable_after`. True when changed."""
        if not self.enabled:
            return False
        if self.failing_since is None:
            self.failing_since = now
            return True
        if now - self.failing_since >= disable_after:
            days = disable_after.total_seconds() / 86400
            self._disable(f"every delivery failed for {days:g} days", now)
            return True
        return False

    def gone(self, now: datetime) -> bool:
        """The receiver answered 410: disabled at once."""
        if not self.enabled:
            return False
        self._disable(GONE_REASON, now)
        return True

    def _disable(self, reason: str, now: datetime) -> None:
        self.enabled = False
        self.disabled_reason = reason
        self._changed(now)
        self.pending.append(
            SubscriptionDisabled(
                **self._who(), reason=reason, failing_since=self.failing_since, disabled_at=now
            )
        )

    def _changed(self, now: datetime) -> None:
        self.updated_at = now
        self.version += 1

    def _who(self) -> Who:
        return {
            "subscription_id": self.id,
            "subscriber": self.subscriber.sub,
            "role": self.subscriber.role,
            "province": self.subscriber.province,
        }


def unique(values: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))
