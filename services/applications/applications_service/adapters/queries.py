"""Reads of the query tables, and the profile facts read model's writes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from applications_service.domain.documents import ProfileFacts
from applications_service.domain.standard import Decided, OpenApplication
from shared.db import driver_connection

from .tables import invitations, profile_facts

Row = dict[str, Any]

# Six calendar months are never shorter than 181 days: a safe SQL pre-filter for the at-risk queue,
# whose exact test is the domain's.
_SHORTEST_STANDARD = timedelta(days=181)


# One profile event per statement, on every profile update of the whole pool: a fixed statement on the
# asyncpg connection (prepared once per connection), not an INSERT built and compiled per event (that
# was a third of the service's CPU under 150 updates/s).
_UPSERT_PROFILE_FACTS_SQL = (
    "INSERT INTO profile_facts AS f (profile_id, owner, eligible_programs, authorized_to_work_in_canada, "
    "has_valid_job_offer, family_size, document, as_of) "
    "VALUES ($1, $2, $3::text::jsonb, $4, $5, $6, $7::text::jsonb, $8) "
    "ON CONFLICT (profile_id) DO UPDATE SET owner = EXCLUDED.owner, "
    "eligible_programs = EXCLUDED.eligible_programs, "
    "authorized_to_work_in_canada = EXCLUDED.authorized_to_work_in_canada, "
    "has_valid_job_offer = EXCLUDED.has_valid_job_offer, family_size = EXCLUDED.family_size, "
    "document = EXCLUDED.document, as_of = EXCLUDED.as_of "
    "WHERE f.as_of <= EXCLUDED.as_of"
)


async def upsert_profile_facts(
    session: AsyncSession, profile_id: str, owner: str, facts: ProfileFacts, as_of: datetime
) -> None:
    """Keep the newest facts per profile; an older event arriving late changes nothing."""
    connection = await driver_connection(session)
    await connection.execute(
        _UPSERT_PROFILE_FACTS_SQL,
        profile_id,
        owner,
        orjson.dumps(list(facts.eligible_programs)).decode(),
        facts.authorized_to_work_in_canada,
        facts.has_valid_job_offer,
        facts.family_size,
        None if facts.document is None else orjson.dumps(facts.document).decode(),
        as_of,
    )


async def delete_profile_facts(session: AsyncSession, profile_id: str) -> None:
    await session.execute(sa.delete(profile_facts).where(profile_facts.c.profile_id == profile_id))


# Every application reads them (and every decision and landing the invitation of its application):
# asyncpg directly (shared.db.driver_connection), JSON columns as text parsed once.
_PROFILE_FACTS_SQL = (
    "SELECT eligible_programs::text, authorized_to_work_in_canada, has_valid_job_offer, family_size, "
    "document::text FROM profile_facts WHERE profile_id = $1"
)
_INVITATION_OF_APPLICATION_SQL = "SELECT invitation_id FROM invitations WHERE application_id = $1"


async def get_profile_facts(session: AsyncSession, profile_id: str) -> ProfileFacts | None:
    connection = await driver_connection(session)
    row = await connection.fetchrow(_PROFILE_FACTS_SQL, profile_id)
    if row is None:
        return None
    programs, authorized, job_offer, family_size, document = row
    return ProfileFacts(
        eligible_programs=tuple(orjson.loads(programs)),
        authorized_to_work_in_canada=authorized,
        has_valid_job_offer=job_offer,
        family_size=family_size,
        document=None if document is None else orjson.loads(document),
    )


async def invitation_of_application(session: AsyncSession, application_id: str) -> str | None:
    connection = await driver_connection(session)
    found: str | None = await connection.fetchval(_INVITATION_OF_APPLICATION_SQL, application_id)
    return found


async def invitation_row(session: AsyncSession, invitation_id: str) -> Row | None:
    result = await session.execute(sa.select(invitations).where(invitations.c.invitation_id == invitation_id))
    row = result.mappings().first()
    return dict(row) if row is not None else None


async def application_row(session: AsyncSession, application_id: str) -> Row | None:
    result = await session.execute(
        sa.select(invitations).where(invitations.c.application_id == application_id)
    )
    row = result.mappings().first()
    return dict(row) if row is not None else None


async def invitations_of_profile(session: AsyncSession, profile_id: str) -> list[Row]:
    """A profile's invitations, newest first."""
    result = await session.execute(
        sa.select(invitations)
        .where(invitations.c.profile_id == profile_id)
        .order_by(invitations.c.invited_at.desc(), invitations.c.invitation_id.desc())
    )
    return [dict(row) for row in result.mappings()]


async def counts_by_state(session: AsyncSession) -> dict[str, int]:
    result = await session.execute(
        sa.select(invitations.c.state, sa.func.count()).group_by(invitations.c.state)
    )
    return {state: int(count) for state, count in result.all()}


async def decisions(session: AsyncSession) -> list[Decided]:
    result = await session.execute(
        sa.select(invitations.c.applied_at, invitations.c.decided_at).where(
            invitations.c.decided_at.is_not(None), invitations.c.applied_at.is_not(None)
        )
    )
    return [Decided(applied_at, decided_at) for applied_at, decided_at in result.all()]


async def open_applications_near_standard(session: AsyncSession, now: datetime) -> Sequence[OpenApplication]:
    """Applications awaiting a decision that may be due within the at-risk window (a superset)."""
    result = await session.execute(
        sa.select(
            invitations.c.application_id,
            invitations.c.invitation_id,
            invitations.c.profile_id,
            invitations.c.applied_at,
        )
        .where(
            invitations.c.state == "applied",
            invitations.c.applied_at <= now + timedelta(days=30) - _SHORTEST_STANDARD,
        )
        .order_by(invitations.c.applied_at)
    )
    return [OpenApplication(*row) for row in result.all()]
