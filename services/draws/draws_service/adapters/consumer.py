"""The consumer keeping the open-invitations table current from `ee.applications.events`."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from draws_service.adapters.repository import SqlDrawsRepository
from draws_service.application.invitations import CLOSING_EVENTS, close_invitation
from shared.consumer import Delivery, IdempotentConsumer
from shared.events.catalogue import APPLICATIONS_TOPIC
from shared.settings import ServiceSettings
from shared.uow import SupportsNow, UnitOfWork

CONSUMER_NAME = "draws-open-invitations"


async def on_invitation_closed(uow: UnitOfWork, delivery: Delivery) -> None:
    await close_invitation(SqlDrawsRepository(uow.session), delivery.event)


def open_invitations_consumer(
    settings: ServiceSettings, sessions: async_sessionmaker[AsyncSession], clock: SupportsNow
) -> IdempotentConsumer:
    return IdempotentConsumer(
        CONSUMER_NAME,
        settings,
        sessions,
        clock,
        topics=[APPLICATIONS_TOPIC],
        handlers=dict.fromkeys(CLOSING_EVENTS, on_invitation_closed),
        group_id="draws",
    )
