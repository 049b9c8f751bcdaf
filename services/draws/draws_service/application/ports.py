"""What the command handlers need from the outside world, as protocols the adapters implement."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from draws_service.domain import Candidate, Invitation, RoundRecord
from shared.events.catalogue import Event


@dataclass(frozen=True, slots=True)
class PoolSelection:
    """One consistent answer of the ranking service: the top eligible candidates at one position."""

    position: dict[str, Any]
    pool_size: int
    eligible_count: int
    candidates: list[Candidate]


class Ranking(Protocol):
    async def select(
        self, *, program: str | None, category: str | None, size: int, exclude: Collection[str]
    ) -> PoolSelection: ...


class Categories(Protocol):
    def version_in_force(self, code: str, on: date) -> str | None:
        """The label of the category's version in force on `on` (e.g. `2026-Version 3`), if any."""
        ...


@dataclass(frozen=True, slots=True)
class StoredRound:
    """A round as stored: its record plus what the service keeps about how it was held."""

    record: RoundRecord
    request_hash: str
    pool_position: dict[str, Any]
    pool_size: int
    eligible_count: int


@dataclass(frozen=True, slots=True)
class InvitationPage:
    items: list[Invitation]
    next_after: int | None


AfterChunk = Callable[[int], Any]
"""Called with the number of invitations written so far after each bulk chunk (a fault-injection seam)."""


class DrawsRepository(Protocol):
    async def lock_rounds(self) -> None: ...
    async def round_by_key(self, key: str) -> StoredRound | None: ...
    async def round_by_id(self, round_id: str) -> StoredRound | None: ...  # None for a non-UUID too
    async def round_by_number(self, number: int) -> StoredRound | None: ...
    async def list_rounds(self, *, limit: int, before: int | None) -> list[RoundRecord]: ...
    async def next_round_number(self) -> int: ...
    async def open_profile_ids(self) -> set[str]: ...
    async def add_round(self, stored: StoredRound, idempotency_key: str) -> None: ...
    async def add_invitations(
        self, invitations: Sequence[Invitation], after_chunk: AfterChunk | None = None
    ) -> None: ...
    async def invitations(self, round_id: str, *, limit: int, after: int) -> InvitationPage: ...
    async def close_invitation(self, invitation_id: str, status: str, closed_at: datetime) -> bool: ...


class UnitOfWork(Protocol):
    """One database transaction: the draws tables plus the outbox (`shared.uow`)."""

    @property
    def rounds(self) -> DrawsRepository: ...

    def publish(self, event: Event) -> Any: ...
    async def commit(self) -> None: ...


UnitOfWorkFactory = Callable[[], AbstractAsyncContextManager[UnitOfWork]]
"""Opens one database transaction; rolled back on exit unless committed."""
