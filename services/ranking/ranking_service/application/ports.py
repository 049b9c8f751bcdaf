"""What the application layer needs from storage (implemented in `ranking_service.adapters`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from ranking_service.domain.candidate import CandidateRow
from ranking_service.domain.pool import PoolRow
from ranking_service.domain.view import CandidateInfo
from shared.db import Transaction

Slots = tuple[frozenset[int], int]
"""The rescoring share of one instance: (its partitions of the profile topic, the topic's partition
count). A profile belongs to slot `hash(profile_id) % count` (the store's hash); None: every profile."""


@dataclass(frozen=True, slots=True)
class StoredStanding:
    """A profile's committed standing as a query instance holds it: in the pool (row and details) or not."""

    profile_id: str
    revision: int
    row: PoolRow | None
    info: CandidateInfo | None


@dataclass(frozen=True, slots=True)
class RulesRow:
    """The active-rules state: the version (None: never set, each day the one in force) and its
    revision (0 before any activation, +1 per activation: the ETag an activation wants as If-Match)."""

    version: str | None
    revision: int


class RowStore(Protocol):
    """The projection rows, inside the caller's transaction: what applying a batch needs."""

    async def lock(self, profile_ids: Sequence[str]) -> dict[str, CandidateRow]:
        """The rows of these profiles (those that exist), locked until the transaction ends."""
        ...

    async def save(self, rows: Sequence[CandidateRow], now: datetime) -> None:
        """Insert or replace these rows, in one statement."""
        ...

    async def scoring_rules(self) -> str | None:
        """The active rules version (None: never set), held until the transaction ends against an
        activation (shared; `set_active_rules` waits for every pass holding it)."""
        ...


class ProjectionStore(RowStore, Protocol):
    """The projection table, inside the caller's transaction: what the jobs need besides."""

    async def due(self, now: datetime, limit: int, slots: Slots | None = None) -> list[str]:
        """Profiles (of these slots) whose `rescore_at` has come, earliest first."""
        ...

    async def scored_with_other_rules(
        self, rules_version: str, after: str, limit: int, slots: Slots | None = None
    ) -> list[str]:
        """Active profiles (of these slots) scored with another rules version, by id after `after`."""
        ...

    async def active_rules(self) -> str | None: ...

    async def rules_state(self) -> RulesRow:
        """The active-rules state as committed."""
        ...

    async def lock_rules(self) -> RulesRow:
        """The active-rules state, locked (exclusively, as `set_active_rules` does) until the end of
        the transaction: after every scoring pass in flight has committed."""
        ...

    async def set_active_rules(self, rules_version: str, now: datetime) -> int:
        """Switch the rules, after every scoring pass in flight has committed (exclusive lock); the
        state's new revision."""
        ...

    async def standings(self, profile_ids: Sequence[str]) -> list[StoredStanding]:
        """The committed standing of these profiles (those that exist)."""
        ...

    def pool_rows(self) -> AsyncIterator[tuple[PoolRow, CandidateInfo]]:
        """Every row in the pool, as a pool row and its details (streamed)."""
        ...

    async def positions(self, consumer: str) -> dict[str, int]:
        """The consumer's stored positions: {"topic:partition": next_offset}."""
        ...


RowStoreFactory = Callable[[AsyncSession | Transaction], RowStore]
StoreFactory = Callable[[AsyncSession], ProjectionStore]
