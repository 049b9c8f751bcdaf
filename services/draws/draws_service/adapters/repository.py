"""The draws tables through SQLAlchemy Core: bulk writes, keyset pages, one advisory lock for rounds."""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Row, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from draws_service.adapters.tables import invitations, rounds
from draws_service.application.ports import AfterChunk, InvitationPage, StoredRound
from draws_service.domain import Invitation, RoundRecord, RoundType

ROUNDS_LOCK: Final = 0x4545_4452_4157_5301
"""`pg_advisory_xact_lock` key serialising rounds ("EEDRAWS" + 1); distinct from the outbox relay's."""
CHUNK: Final = 2_000
"""Invitations per COPY (one round trip each)."""


class SqlDrawsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def lock_rounds(self) -> None:
        """Serialise rounds: held until this transaction ends (commit or rollback)."""
        await self.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ROUNDS_LOCK})

    async def round_by_key(self, key: str) -> StoredRound | None:
        return await self._one_round(rounds.c.idempotency_key == key)

    async def round_by_id(self, round_id: str) -> StoredRound | None:
        if not _is_uuid(round_id):
            return None
        return await self._one_round(rounds.c.round_id == round_id)

    async def round_by_number(self, number: int) -> StoredRound | None:
        return await self._one_round(rounds.c.round_number == number)

    async def list_rounds(self, *, limit: int, before: int | None) -> list[RoundRecord]:
        query = select(rounds).order_by(rounds.c.round_number.desc()).limit(limit)
        if before is not None:
            query = query.where(rounds.c.round_number < before)
        result = await self.session.execute(query)
        return [_stored(row).record for row in result]

    async def next_round_number(self) -> int:
        current = await self.session.scalar(select(func.coalesce(func.max(rounds.c.round_number), 0)))
        return int(current or 0) + 1

    async def open_profile_ids(self) -> set[str]:
        result = await self.session.execute(
            select(invitations.c.profile_id).where(invitations.c.status == "open")
        )
        return set(result.scalars())

    async def add_round(self, stored: StoredRound, idempotency_key: str) -> None:
        await self.session.execute(insert(rounds).values(**_round_row(stored, idempotency_key)))

    async def add_invitations(
        self, items: Sequence[Invitation], after_chunk: AfterChunk | None = None
    ) -> None:
        """Bulk-write with COPY in chunks, inside this session's transaction."""
        copy = await self._copier()
        written = 0
        for chunk in _chunks(items, CHUNK):
            await copy(
                "invitations", records=[_invitation_record(i) for i in chunk], columns=INVITATION_COLUMNS
            )
            written += len(chunk)
            if after_chunk is not None:
                outcome = after_chunk(written)
                if inspect.isawaitable(outcome):
                    await outcome

    async def invitations(self, round_id: str, *, limit: int, after: int) -> InvitationPage:
        query = (
            select(invitations, rounds.c.round_number)
            .join(rounds, rounds.c.round_id == invitations.c.round_id)
            .where(invitations.c.round_id == round_id, invitations.c.rank > after)
            .order_by(invitations.c.rank)
            .limit(limit + 1)
        )
        rows = list(await self.session.execute(query))
        items = [_invitation(row) for row in rows[:limit]]
        return InvitationPage(items, items[-1].rank if len(rows) > limit else None)

    async def close_invitation(self, invitation_id: str, status: str, closed_at: datetime) -> bool:
        if not _is_uuid(invitation_id):
            return False
        result = await self.session.execute(
            update(invitations)
            .where(invitations.c.invitation_id == invitation_id, invitations.c.status == "open")
            .values(status=status, closed_at=closed_at)
        )
        return bool(getattr(result, "rowcount", 0))

    async def _copier(self) -> Any:
        """asyncpg's `copy_records_to_table` on the connection of this session's transaction."""
        connection = await self.session.connection()
        raw = await connection.get_raw_connection()
        return raw.driver_connection.copy_records_to_table  # type: ignore[union-attr]

    async def _one_round(self, condition: Any) -> StoredRound | None:
        row = (await self.session.execute(select(rounds).where(condition))).first()
        return None if row is None else _stored(row)


def _chunks(items: Sequence[Invitation], size: int) -> Iterator[Sequence[Invitation]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _round_row(stored: StoredRound, idempotency_key: str) -> dict[str, Any]:
    record = stored.record
    return {
        "round_id": record.round_id,
        "round_number": record.round_number,
        "round_type": record.round_type.code,
        "category_version": record.category_version,
        "size": record.size,
        "invitations_count": record.invitations_count,
        "cutoff_crs": record.cutoff_crs,
        "tie_break_at": record.tie_break_at,
        "held_at": record.held_at,
        "idempotency_key": idempotency_key,
        "request_hash": stored.request_hash,
        "pool_position": stored.pool_position,
        "pool_size": stored.pool_size,
        "eligible_count": stored.eligible_count,
    }


def _stored(row: Row[Any]) -> StoredRound:
    record = RoundRecord(
        round_id=str(row.round_id),
        round_number=row.round_number,
        round_type=RoundType(row.round_type),
        category_version=row.category_version,
        held_at=row.held_at,
        size=row.size,
        invitations_count=row.invitations_count,
        cutoff_crs=row.cutoff_crs,
        tie_break_at=row.tie_break_at,
    )
    return StoredRound(record, row.request_hash, row.pool_position, row.pool_size, row.eligible_count)


INVITATION_COLUMNS: Final = (
    "invitation_id", "round_id", "rank", "profile_id", "owner", "program", "crs", "citizenship",
    "submitted_at", "invited_at", "deadline",
)  # fmt: skip


def _invitation_record(i: Invitation) -> tuple[Any, ...]:
    """One row for COPY, in `INVITATION_COLUMNS` order."""
    return (
        uuid.UUID(i.invitation_id), uuid.UUID(i.round_id), i.rank, i.profile_id, i.owner, i.program, i.crs,
        i.citizenship, i.submitted_at, i.invited_at, i.deadline,
    )  # fmt: skip


def _invitation(row: Row[Any]) -> Invitation:
    return Invitation(
        invitation_id=str(row.invitation_id),
        round_id=str(row.round_id),
        round_number=row.round_number,
        rank=row.rank,
        profile_id=row.profile_id,
        owner=row.owner,
        program=row.program,
        crs=row.crs,
        citizenship=row.citizenship,
        submitted_at=row.submitted_at,
        invited_at=row.invited_at,
        status=row.status,
    )
