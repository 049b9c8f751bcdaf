"""A subscription's events (domain events, never the wire models): each has the name and fields of its
catalogue event, and `application.events` translates them when they are published."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, TypedDict

from shared.domain_events import DomainEvent


class Who(TypedDict):
    """The fields every subscription event carries."""

    subscription_id: str
    subscriber: str
    role: str
    province: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscriptionFact(DomainEvent):
    subscription_id: str
    subscriber: str
    role: str
    province: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscriptionCreated(SubscriptionFact):
    url: str
    event_types: list[str]
    description: str
    candidates: list[str] = field(default_factory=list)
    created_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscriptionUpdated(SubscriptionFact):
    url: str
    event_types: list[str]
    description: str
    candidates: list[str] = field(default_factory=list)
    enabled: bool
    updated_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscriptionSecretRotated(SubscriptionFact):
    previous_valid_until: datetime | None
    rotated_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscriptionDisabled(SubscriptionFact):
    """Deliveries stopped: the endpoint answered 410 Gone, or failed for days (ops is told)."""

    reason: str
    failing_since: datetime | None = None
    disabled_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscriptionDeleted(SubscriptionFact):
    deleted_at: datetime


SUBSCRIPTION_EVENTS: Final[tuple[type[SubscriptionFact], ...]] = (
    SubscriptionCreated, SubscriptionUpdated, SubscriptionSecretRotated, SubscriptionDisabled,
    SubscriptionDeleted,
)  # fmt: skip
