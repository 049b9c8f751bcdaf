"""The Kafka consumers: Invited from the draws service, profile facts from the profile service.

Two consumers, so a burst of profile updates never delays an invitation's arrival. Their groups are
joined under the topic prefix (`shared.consumer`), so two test runs (or a test run and `make up`) never
share a group.
"""

from __future__ import annotations

from applications_service.adapters.uow import ApplicationsUnitOfWork, applications_uow
from applications_service.application.events import EVENTS
from applications_service.application.handlers import ApplicationsHandlers
from shared.consumer import Delivery, IdempotentConsumer
from shared.domain_events import Invited, PersonalDataErased, ProfileSubmitted, ProfileUpdated
from shared.events.catalogue import DRAWS_TOPIC, PROFILE_TOPIC
from shared.runtime import ServiceRuntime
from shared.uow import UnitOfWork

INVITATIONS_CONSUMER = "applications.invitations"
PROFILES_CONSUMER = "applications.profiles"


def _handlers(runtime: ServiceRuntime) -> ApplicationsHandlers:
    return ApplicationsHandlers(applications_uow(runtime.uow), runtime.clock)


def invitations_consumer(runtime: ServiceRuntime) -> IdempotentConsumer:
    handlers = _handlers(runtime)

    async def on_invited(uow: UnitOfWork, delivery: Delivery) -> None:
        invited = EVENTS.to_domain(delivery.event)
        assert isinstance(invited, Invited)
        await handlers.receive_invitation(ApplicationsUnitOfWork(uow), invited)

    settings = runtime.settings
    return IdempotentConsumer(
        INVITATIONS_CONSUMER,
        settings,
        runtime.session_factory,
        runtime.clock,
        topics=[DRAWS_TOPIC],
        handlers={"Invited": on_invited},
        group_id=INVITATIONS_CONSUMER,
    )


def profiles_consumer(runtime: ServiceRuntime) -> IdempotentConsumer:
    handlers = _handlers(runtime)

    async def on_profile(uow: UnitOfWork, delivery: Delivery) -> None:
        event = EVENTS.to_domain(delivery.event)
        assert isinstance(event, ProfileUpdated | ProfileSubmitted)
        await handlers.record_profile(ApplicationsUnitOfWork(uow), event)

    async def on_erased(uow: UnitOfWork, delivery: Delivery) -> None:
        erased = EVENTS.to_domain(delivery.event)
        assert isinstance(erased, PersonalDataErased)
        await handlers.forget_person(ApplicationsUnitOfWork(uow), erased)

    settings = runtime.settings
    return IdempotentConsumer(
        PROFILES_CONSUMER,
        settings,
        runtime.session_factory,
        runtime.clock,
        topics=[PROFILE_TOPIC],
        handlers={
            "ProfileUpdated": on_profile,
            "ProfileSubmitted": on_profile,
            "PersonalDataErased": on_erased,
        },
        group_id=PROFILES_CONSUMER,
    )
