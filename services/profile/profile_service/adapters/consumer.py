"""The profile service's Kafka consumer: invitations (draws) and their outcome (applications)."""

from __future__ import annotations

from profile_service.adapters.uow import ProfileUnitOfWork
from profile_service.application.reactions import HANDLERS, Reaction
from shared.consumer import Delivery, Handler, IdempotentConsumer
from shared.events.catalogue import APPLICATIONS_TOPIC, DRAWS_TOPIC
from shared.runtime import ServiceRuntime
from shared.uow import UnitOfWork

CONSUMER_NAME = "profile-invitations"


def invitations_consumer(runtime: ServiceRuntime) -> IdempotentConsumer:
    """One consumer group over both topics: every message is keyed by profile, so a profile's Invited
    and its outcome are applied in order per topic, and an outcome that overtakes its Invited is
    ignored by the aggregate rather than lost (it only acts on the invitation it holds)."""
    return IdempotentConsumer(
        CONSUMER_NAME,
        runtime.settings,
        runtime.session_factory,
        runtime.clock,
        topics=[DRAWS_TOPIC, APPLICATIONS_TOPIC],
        handlers={name: _over_profile_uow(react) for name, react in HANDLERS.items()},
        group_id="profile",
    )


def _over_profile_uow(react: Reaction) -> Handler:
    """The reaction, run over the profile unit of work wrapping the consumer's."""

    async def handle(uow: UnitOfWork, delivery: Delivery) -> None:
        await react(ProfileUnitOfWork(uow), delivery)

    return handle
