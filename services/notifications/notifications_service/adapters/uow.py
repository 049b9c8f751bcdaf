"""The notifications unit of work: the platform's transaction with the subscriptions and deliveries
repositories over its session (`notifications_service.application.ports`)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any

from notifications_service.adapters import repository
from notifications_service.adapters.repository import SubscriptionRepository
from notifications_service.adapters.secrets import SecretBox
from notifications_service.application.ports import Row, Target
from shared.db import Transaction
from shared.uow import ServiceUnitOfWork, UnitOfWork, wrapped_uow


class SqlDeliveries:
    """`application.ports.Deliveries` in the unit of work's transaction (the SQL is
    `adapters.repository`'s): the fan-out's per-batch statements on its asyncpg connection, the rest
    through an ORM session on that same connection, made on first use."""

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    @property
    def session(self) -> Any:
        return self._tx.session

    def pending_row(self, subscription_id: str, event_id: str, ordering_key: str, now: datetime) -> Row:
        return repository.pending_delivery_row(subscription_id, event_id, ordering_key, now)

    async def record_events(self, rows: Sequence[Row]) -> None:
        await repository.record_events(await self._tx.connection(), rows)

    async def enabled_targets(self) -> list[Target]:
        return await repository.enabled_targets(await self._tx.connection())

    async def nominating_provinces(self, profile_ids: Iterable[str]) -> dict[str, str | None]:
        return await repository.nominating_provinces(await self._tx.connection(), profile_ids)

    async def save_nominations(self, changes: dict[str, str | None], now: datetime) -> None:
        await repository.save_nominations(self.session, changes, now)

    async def forget_person(self, profile_id: str, keep_event_id: str) -> None:
        await repository.forget_person(self.session, profile_id, keep_event_id)

    async def add_deliveries(self, rows: Sequence[Row]) -> int:
        return await repository.add_deliveries(await self._tx.connection(), rows)

    async def update_deliveries(self, rows: Sequence[Row]) -> None:
        await repository.update_deliveries(self.session, rows)

    async def add_attempts(self, rows: Sequence[Row]) -> None:
        await repository.add_attempts(self.session, rows)

    async def delivery_log(
        self, subscription_id: str, status: str | None, limit: int, before: int | None
    ) -> list[Row]:
        return await repository.delivery_log(self.session, subscription_id, status, limit, before)

    async def delivery_row(self, delivery_id: str) -> Row | None:
        return await repository.delivery_row(self.session, delivery_id)

    async def requeue(self, delivery_ids: Sequence[str], now: datetime) -> None:
        await repository.requeue(self.session, delivery_ids, now)

    async def events_between(self, since: datetime, until: datetime, after: int, limit: int) -> list[Row]:
        return await repository.events_between(self.session, since, until, after, limit)

    async def upsert_pending(self, rows: Sequence[Row], now: datetime) -> int:
        return await repository.upsert_pending(await self._tx.connection(), rows, now)


class NotificationsUnitOfWork(ServiceUnitOfWork):
    """The platform unit of work (`inner`) with `subscriptions` and `deliveries` over it."""

    def __init__(self, inner: UnitOfWork, box: SecretBox) -> None:
        super().__init__(inner)
        self._box = box
        self.deliveries = SqlDeliveries(inner.tx)

    @functools.cached_property
    def subscriptions(self) -> SubscriptionRepository:
        # Made when first asked for: its session would otherwise be opened for every fan-out batch.
        return SubscriptionRepository(self.inner.session, self._box)


def notifications_uow(
    platform_uow: Callable[[], UnitOfWork], box: SecretBox
) -> Callable[[], AbstractAsyncContextManager[NotificationsUnitOfWork]]:
    """A factory of notifications units of work over the runtime's `uow()`."""
    return wrapped_uow(platform_uow, lambda uow: NotificationsUnitOfWork(uow, box))
