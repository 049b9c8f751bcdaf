"""What the command handlers need from storage, as protocols the adapters implement.

Handlers reach every repository through the unit of work they run in (`uow.invitations`,
`uow.profile_facts`), never by importing an adapter.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Protocol

from applications_service.domain.documents import ProfileFacts
from applications_service.domain.invitation import Invitation


class Invitations(Protocol):
    """Invitation aggregates (event-sourced) and the lookups the commands need."""

    async def get(self, invitation_id: str) -> Invitation | None: ...
    async def exists(self, invitation_id: str) -> bool: ...
    async def save(self, invitation: Invitation) -> None: ...
    async def invitation_of_application(self, application_id: str) -> str | None: ...
    async def due(self, now: datetime, limit: int, after: str = "") -> list[str]: ...


class ProfileFactsStore(Protocol):
    """The read model of the profile service's facts (newest per profile)."""

    async def get(self, profile_id: str) -> ProfileFacts | None: ...
    async def upsert(self, profile_id: str, owner: str, facts: ProfileFacts, as_of: datetime) -> None: ...
    async def forget(self, profile_id: str) -> None: ...


class UnitOfWork(Protocol):
    """One transaction with the service's repositories (`applications_service.adapters.uow`)."""

    @property
    def invitations(self) -> Invitations: ...

    @property
    def profile_facts(self) -> ProfileFactsStore: ...

    @property
    def session(self) -> Any: ...

    async def commit(self) -> None: ...


UowFactory = Callable[[], AbstractAsyncContextManager[UnitOfWork]]
