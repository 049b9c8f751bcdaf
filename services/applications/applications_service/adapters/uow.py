"""The applications unit of work: the platform's transaction with this service's repositories."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime

from applications_service.adapters import queries
from applications_service.adapters.repository import InvitationRepository, due_invitation_ids
from applications_service.domain.documents import ProfileFacts
from applications_service.domain.invitation import Invitation
from shared.uow import ServiceUnitOfWork, UnitOfWork, wrapped_uow


class SqlInvitations:
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow
        self._repository = InvitationRepository(uow)

    async def get(self, invitation_id: str) -> Invitation | None:
        return await self._repository.get(invitation_id)

    async def exists(self, invitation_id: str) -> bool:
        return await self._repository.exists(invitation_id)

    async def save(self, invitation: Invitation) -> None:
        await self._repository.save(invitation)

    async def invitation_of_application(self, application_id: str) -> str | None:
        return await queries.invitation_of_application(self._uow.session, application_id)

    async def due(self, now: datetime, limit: int, after: str = "") -> list[str]:
        return await due_invitation_ids(self._uow, now, limit, after)


class SqlProfileFacts:
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    async def get(self, profile_id: str) -> ProfileFacts | None:
        return await queries.get_profile_facts(self._uow.session, profile_id)

    async def upsert(self, profile_id: str, owner: str, facts: ProfileFacts, as_of: datetime) -> None:
        await queries.upsert_profile_facts(self._uow.session, profile_id, owner, facts, as_of)

    async def forget(self, profile_id: str) -> None:
        await queries.delete_profile_facts(self._uow.session, profile_id)


class ApplicationsUnitOfWork(ServiceUnitOfWork):
    """The platform unit of work (`inner`) with `invitations` and `profile_facts` over it."""

    def __init__(self, inner: UnitOfWork) -> None:
        super().__init__(inner)
        self.invitations = SqlInvitations(inner)
        self.profile_facts = SqlProfileFacts(inner)


def applications_uow(
    platform_uow: Callable[[], UnitOfWork],
) -> Callable[[], AbstractAsyncContextManager[ApplicationsUnitOfWork]]:
    """A factory of applications units of work over the runtime's `uow()`."""
    return wrapped_uow(platform_uow, ApplicationsUnitOfWork)
