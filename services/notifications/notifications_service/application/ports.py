"""What the handlers and the fan-out need from storage and the secret box, as protocols.

They reach storage through the unit of work they run in (`uow.subscriptions`, `uow.deliveries`),
never by importing an adapter; `notifications_service.adapters.uow` provides them over the
platform's unit of work, and `adapters.secrets.SecretBox` is the secret box.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from notifications_service.domain.subscription import Subscriber, Subscription
from shared.events.catalogue import Event

Row = dict[str, Any]


@dataclass(frozen=True)
class Target:
    """What the fan-out needs of an enabled subscription."""

    id: str
    subscriber: str
    role: str
    province: str | None
    event_types: tuple[str, ...]
    candidates: frozenset[str]


class Subscriptions(Protocol):
    async def get(self, subscription_id: str, *, lock: bool = False) -> Subscription | None: ...
    async def list(self, subscriber: Subscriber | None) -> list[Subscription]: ...
    async def add(self, subscription: Subscription) -> None: ...
    async def save(self, subscription: Subscription) -> None: ...


class Deliveries(Protocol):
    """The events heard, the nominations standing, and the deliveries of events to subscriptions."""

    def pending_row(self, subscription_id: str, event_id: str, ordering_key: str, now: datetime) -> Row: ...
    async def record_events(self, rows: Sequence[Row]) -> None:
        """Log events heard (one already logged is left alone); each row: event_id, type, time,
        ordering_key, and envelope as the CloudEvent's JSON (bytes, as on the wire)."""

    async def enabled_targets(self) -> list[Target]: ...
    async def nominating_provinces(self, profile_ids: Iterable[str]) -> dict[str, str | None]: ...
    async def save_nominations(self, changes: dict[str, str | None], now: datetime) -> None: ...
    async def forget_person(self, profile_id: str, keep_event_id: str) -> None: ...
    async def add_deliveries(self, rows: Sequence[Row]) -> int: ...
    async def update_deliveries(self, rows: Sequence[Row]) -> None: ...
    async def add_attempts(self, rows: Sequence[Row]) -> None: ...
    async def delivery_log(
        self, subscription_id: str, status: str | None, limit: int, before: int | None
    ) -> list[Row]: ...
    async def delivery_row(self, delivery_id: str) -> Row | None: ...
    async def requeue(self, delivery_ids: Sequence[str], now: datetime) -> None: ...
    async def events_between(self, since: datetime, until: datetime, after: int, limit: int) -> list[Row]: ...
    async def upsert_pending(self, rows: Sequence[Row], now: datetime) -> int: ...


class SecretBox(Protocol):
    """Subscription secrets: new ones, and sealed (AES-256-GCM) at rest."""

    def new_secret(self) -> str: ...
    def seal_text(self, secret: str, context: str) -> str: ...
    def open_text(self, sealed: str, context: str) -> str: ...
    def open(self, sealed: bytes, subscription_id: str) -> str: ...


class Clock(Protocol):
    def now(self) -> datetime: ...


class UnitOfWork(Protocol):
    """One transaction with the subscriptions, the deliveries and the outbox."""

    @property
    def subscriptions(self) -> Subscriptions: ...

    @property
    def deliveries(self) -> Deliveries: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def session(self) -> Any: ...

    def publish(self, event: Event) -> object: ...
    def after_commit(self, callback: Callable[[], None]) -> None: ...
    async def commit(self) -> None: ...


UowFactory = Callable[[], AbstractAsyncContextManager[UnitOfWork]]
