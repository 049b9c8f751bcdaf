"""The applications service's own series on `/metrics` (`shared.metrics` serves them)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from prometheus_client.core import Metric
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.clock import Clock
from shared.metrics import gauge

from .tables import invitations

# A reminder (not an expiry) is what falls due: an open invitation's next step has come and its
# deadline has not passed (past it, the invitation expires instead); likewise for an issued COPR and
# the end of its expiry day.
_NOW = sa.bindparam("now", type_=sa.DateTime(timezone=True))
_COPR_END = sa.func.timezone("UTC", sa.cast(invitations.c.copr_expires_on + 1, sa.DateTime))
_REMINDERS_DUE = (
    sa.select(sa.func.count())
    .select_from(invitations)
    .where(
        invitations.c.next_due_at <= _NOW,
        sa.or_(
            sa.and_(invitations.c.state == "open", invitations.c.deadline >= _NOW),
            sa.and_(invitations.c.state == "copr_issued", _COPR_END > _NOW),
        ),
    )
)


async def reminders_due(engine: AsyncEngine, now: datetime) -> int:
    """Reminders whose time has come (by the business clock) and that the clock job has not sent yet."""
    async with engine.connect() as conn:
        return int((await conn.execute(_REMINDERS_DUE, {"now": now})).scalar_one())


async def applications_metrics(service: str, engine: AsyncEngine, clock: Clock) -> list[Metric]:
    """`ee_applications_reminders_due`: stays above 0 when the clock job is not keeping up (or down)."""
    due = gauge(
        "ee_applications_reminders_due",
        "Deadline and COPR reminders due by the service clock and not sent yet",
    )
    due.add_metric([service], await reminders_due(engine, clock.now()))
    return [due]
