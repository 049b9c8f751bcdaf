"""The draws unit of work: the platform's transaction (state + outbox) with the draws repository."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from draws_service.adapters.repository import SqlDrawsRepository
from shared.uow import ServiceUnitOfWork, UnitOfWork, wrapped_uow


class DrawsUnitOfWork(ServiceUnitOfWork):
    """The platform unit of work (`inner`) with `rounds` over it."""

    def __init__(self, inner: UnitOfWork) -> None:
        super().__init__(inner)
        self.rounds = SqlDrawsRepository(inner.session)


def draws_uow(
    platform_uow: Callable[[], UnitOfWork],
) -> Callable[[], AbstractAsyncContextManager[DrawsUnitOfWork]]:
    """A factory of draws units of work over the runtime's `uow()`."""
    return wrapped_uow(platform_uow, DrawsUnitOfWork)
