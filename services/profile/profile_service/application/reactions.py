"""What the profile does with the draws and applications services' events (consumer handlers).

An open invitation locks the profile; declining unlocks it (back to the pool if still eligible and
not past its 12 months); an expired invitation means the pool is left for good; an application keeps
the lock for good. A redelivered event changes nothing (the consumer dedupes by event id, and the
aggregate ignores a fact it already holds).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar

from profile_service.application.events import EVENTS
from profile_service.application.ports import UnitOfWork
from profile_service.domain.profile import Profile
from shared.consumer import Delivery
from shared.domain_events import Applied, CandidateFact, InvitationDeclined, InvitationExpired, Invited

log = logging.getLogger(__name__)

E = TypeVar("E", bound=CandidateFact)


Reaction = Callable[[UnitOfWork, Delivery], Awaitable[None]]
"""A consumer handler over the profile unit of work (the adapter wraps the consumer's)."""


def reaction(event_type: type[E], react: Callable[[Profile, E, datetime], bool]) -> Reaction:
    """A handler that applies `event_type` (the delivered wire event, as the domain's) to its profile
    (`react` says whether it changed anything, then the profile is saved); an event for a profile this
    service does not know is logged."""

    async def handle(uow: UnitOfWork, delivery: Delivery) -> None:
        event = EVENTS.to_domain(delivery.event)
        assert isinstance(event, event_type)
        profile = await uow.profiles.get(event.profile_id)
        if profile is None:
            _unknown(event, delivery)
        elif react(profile, event, uow.clock.now()):
            await uow.profiles.save(profile)

    return handle


def _unknown(event: CandidateFact, delivery: Delivery) -> None:
    log.warning(
        "%s for unknown profile %s ignored",
        type(event).__name__,
        event.profile_id,
        extra={"topic": delivery.topic, "partition": delivery.partition, "offset": delivery.offset},
    )


HANDLERS: dict[str, Reaction] = {
    "Invited": reaction(Invited, lambda profile, event, _now: profile.invited(event)),
    "InvitationDeclined": reaction(InvitationDeclined, Profile.invitation_declined),
    "InvitationExpired": reaction(
        InvitationExpired, lambda profile, event, _now: profile.invitation_expired(event)
    ),
    "Applied": reaction(Applied, lambda profile, event, _now: profile.applied(event)),
}
