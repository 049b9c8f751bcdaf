"""What the handlers, reactions and the scheduled review need from storage, as protocols.

They reach the repository through the unit of work they run in (`uow.profiles`), never by importing
an adapter; `profile_service.adapters.uow` provides it over the platform's unit of work.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Protocol

from profile_service.domain.profile import Profile


class Profiles(Protocol):
    """Profile aggregates (event-sourced) and the due-date queue of the scheduled review."""

    async def get(self, profile_id: str) -> Profile | None: ...
    async def save(self, profile: Profile) -> None: ...
    async def reschedule(self, profile: Profile) -> None: ...
    async def current_version(self, profile_id: str) -> int | None: ...
    async def due(self, now: datetime, limit: int, after: str = "") -> list[str]: ...
    async def erasable(self, closed_before: datetime, limit: int) -> list[str]: ...
    async def forget(self, profile: Profile) -> None: ...
    async def history(self, profile_id: str) -> list[dict[str, Any]]: ...
    async def data_key_created_at(self, profile_id: str) -> datetime | None: ...


class Clock(Protocol):
    def now(self) -> datetime: ...


class UnitOfWork(Protocol):
    """One transaction with the profile repository."""

    @property
    def profiles(self) -> Profiles: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def session(self) -> Any: ...

    async def commit(self) -> None: ...


UowFactory = Callable[[], AbstractAsyncContextManager[UnitOfWork]]
