"""The draws unit of work: the platform's transaction (state + outbox) with the draws repository."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from draws_service.adapters.repository import SqlDrawsRepository
from shared.envelope import Envelope
from shared.events.catalogue import Event
from shared.uow import UnitOfWork, wrapped_uow


class DrawsUnitOfWork:
    def __init__(self, inner: UnitOfWork) -> None:
        self.inner = inner
        self.rounds = SqlDrawsRepository(inner.session)

    def publish(self, event: Event) -> Envelope:
        return self.inner.publish(event)

    async def commit(self) -> None:
        await self.inner.commit()


def draws_uow(
    platform_uow: Callable[[], UnitOfWork],
) -> Callable[[], AbstractAsyncContextManager[DrawsUnitOfWork]]:
    """A factory of draws units of work over the runtime's `uow()`."""
    return wrapped_uow(platform_uow, DrawsUnitOfWork)
