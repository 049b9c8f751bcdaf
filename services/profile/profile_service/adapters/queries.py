"""Reads of the `profiles` query table: listings, nominations, what the scheduler must review."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from profile_service.adapters.tables import profiles


@dataclass(frozen=True, slots=True)
class ProfileRow:
    profile_id: str
    owner: str
    status: str
    version: int
    eligible_programs: list[str]
    submitted_at: datetime | None
    expires_at: datetime | None
    nomination_province: str | None
    nominated_at: datetime | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Page:
    rows: list[ProfileRow]
    total: int


_COLUMNS = [profiles.c[name] for name in ProfileRow.__dataclass_fields__]
Order = list[sa.ColumnElement[object]]


async def _page(
    session: AsyncSession, where: sa.ColumnElement[bool], order: Order, limit: int, offset: int
) -> Page:
    count = sa.select(sa.func.count()).select_from(profiles).where(where)
    total = (await session.execute(count)).scalar_one()
    rows = sa.select(*_COLUMNS).where(where).order_by(*order).limit(limit).offset(offset)
    result = await session.execute(rows)
    return Page([ProfileRow(*row) for row in result.all()], int(total))


async def owned_by(session: AsyncSession, owner: str, limit: int, offset: int) -> Page:
    """The owner's profiles, oldest first."""
    order: Order = [profiles.c.created_at, profiles.c.profile_id]
    return await _page(session, profiles.c.owner == owner, order, limit, offset)


async def nominated_by(session: AsyncSession, province: str, limit: int, offset: int) -> Page:
    """Profiles holding an active nomination from `province`, earliest nomination first."""
    order: Order = [profiles.c.nominated_at, profiles.c.profile_id]
    return await _page(session, profiles.c.nomination_province == province, order, limit, offset)


async def due_profile_ids(session: AsyncSession, now: datetime, limit: int, after: str = "") -> list[str]:
    """Profiles whose expiry or re-check is at or before `now`, by id after `after` (one visit a run)."""
    result = await session.execute(
        sa.select(profiles.c.profile_id)
        .where(profiles.c.due_at <= now, profiles.c.profile_id > after)
        .order_by(profiles.c.profile_id)
        .limit(limit)
    )
    return list(result.scalars())


async def erasable_profile_ids(session: AsyncSession, closed_before: datetime, limit: int) -> list[str]:
    """Profiles that left for good before `closed_before` (their rows go when they are erased)."""
    rows = await session.execute(
        sa.select(profiles.c.profile_id)
        .where(profiles.c.closed_at.is_not(None), profiles.c.closed_at <= closed_before)
        .order_by(profiles.c.closed_at, profiles.c.profile_id)
        .limit(limit)
    )
    return list(rows.scalars())
