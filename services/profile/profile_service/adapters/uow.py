"""The profile unit of work: the platform's transaction with the profile repository."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any

from profile_service.adapters.queries import due_profile_ids, erasable_profile_ids
from profile_service.adapters.repository import ProfileRepository, stream_id
from profile_service.domain.profile import Profile
from shared.uow import ServiceUnitOfWork, UnitOfWork, wrapped_uow


class SqlProfiles:
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow
        self._repository = ProfileRepository(uow)

    async def get(self, profile_id: str) -> Profile | None:
        return await self._repository.get(profile_id)

    async def save(self, profile: Profile) -> None:
        await self._repository.save(profile)

    async def reschedule(self, profile: Profile) -> None:
        await self._repository.reschedule(profile)

    async def current_version(self, profile_id: str) -> int | None:
        return await self._uow.events.current_version(self._uow.session, stream_id(profile_id))

    async def due(self, now: datetime, limit: int, after: str = "") -> list[str]:
        return await due_profile_ids(self._uow.session, now, limit, after)

    async def erasable(self, closed_before: datetime, limit: int) -> list[str]:
        return await erasable_profile_ids(self._uow.session, closed_before, limit)

    async def forget(self, profile: Profile) -> None:
        await self._repository.forget(profile)

    async def history(self, profile_id: str) -> list[dict[str, Any]]:
        return await self._repository.history(profile_id)

    async def data_key_created_at(self, profile_id: str) -> datetime | None:
        return await self._repository.keys.created_at(profile_id)


class ProfileUnitOfWork(ServiceUnitOfWork):
    """The platform unit of work (`inner`) with `profiles` over it."""

    def __init__(self, inner: UnitOfWork) -> None:
        super().__init__(inner)
        self.profiles = SqlProfiles(inner)


def profile_uow(
    platform_uow: Callable[[], UnitOfWork],
) -> Callable[[], AbstractAsyncContextManager[ProfileUnitOfWork]]:
    """A factory of profile units of work over the runtime's `uow()`."""
    return wrapped_uow(platform_uow, ProfileUnitOfWork)
