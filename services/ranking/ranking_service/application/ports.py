"""What the application layer needs from storage (implemented in `ranking_service.adapters`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from ranking_service.domain.candidate import CandidateRow
from ranking_service.domain.pool import PoolRow
from ranking_service.domain.view import CandidateInfo


class RowStore(Protocol):
    """The projection rows, inside the caller's transaction: what applying a batch needs."""

    async def lock(self, profile_ids: Sequence[str]) -> dict[str, CandidateRow]:
        """The rows of these profiles (those that exist), locked until the transaction ends."""
        ...

    async def save(self, rows: Sequence[CandidateRow], now: datetime) -> None:
        """Insert or replace these rows, in one statement."""
        ...


class ProjectionStore(RowStore, Protocol):
    """The projection table, inside the caller's transaction: what the jobs need besides."""

    async def due(self, now: datetime, limit: int) -> list[str]:
        """Profiles whose `rescore_at` has come, earliest first."""
        ...

    async def scored_with_other_rules(self, rules_version: str, after: str, limit: int) -> list[str]:
        """Active profiles scored with another rules version, by profile id after `after`."""
        ...

    async def active_rules(self) -> str | None: ...

    async def set_active_rules(self, rules_version: str, now: datetime) -> None: ...

    def pool_rows(self) -> AsyncIterator[tuple[PoolRow, CandidateInfo]]:
        """Every row in the pool, as a pool row and its details (streamed)."""
        ...

    async def positions(self, consumer: str) -> dict[str, int]:
        """The consumer's stored positions: {"topic:partition": next_offset}."""
        ...


RowStoreFactory = Callable[[AsyncSession], RowStore]
StoreFactory = Callable[[AsyncSession], ProjectionStore]
