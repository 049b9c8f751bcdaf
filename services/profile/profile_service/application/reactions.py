"""What the profile does with the draws and applications services' events (consumer handlers).

An open invitation locks the profile; declining unlocks it (back to the pool if still eligible and
not past its 12 months); an expired invitation means the pool is left for good; an application keeps
the lock for good. A redelivered event changes nothing (the consumer dedupes by event id, and the
aggregate ignores a fact it already holds).
"""

from __future__ import annotations

import logging

from profile_service.adapters.repository import ProfileRepository
from shared.consumer import Delivery
from shared.events.catalogue import Applied, CandidateEvent, InvitationDeclined, InvitationExpired, Invited
from shared.uow import UnitOfWork

log = logging.getLogger(__name__)


async def on_invited(uow: UnitOfWork, delivery: Delivery) -> None:
    event = delivery.event
    assert isinstance(event, Invited)
    repository = ProfileRepository(uow)
    profile = await repository.get(event.profile_id)
    if profile is None:
        _unknown(event, delivery)
    elif profile.invited(event):
        await repository.save(profile)


async def on_invitation_declined(uow: UnitOfWork, delivery: Delivery) -> None:
    event = delivery.event
    assert isinstance(event, InvitationDeclined)
    repository = ProfileRepository(uow)
    profile = await repository.get(event.profile_id)
    if profile is None:
        _unknown(event, delivery)
    elif profile.invitation_declined(event, uow.clock.now()):
        await repository.save(profile)


async def on_invitation_expired(uow: UnitOfWork, delivery: Delivery) -> None:
    event = delivery.event
    assert isinstance(event, InvitationExpired)
    repository = ProfileRepository(uow)
    profile = await repository.get(event.profile_id)
    if profile is None:
        _unknown(event, delivery)
    elif profile.invitation_expired(event):
        await repository.save(profile)


async def on_applied(uow: UnitOfWork, delivery: Delivery) -> None:
    event = delivery.event
    assert isinstance(event, Applied)
    repository = ProfileRepository(uow)
    profile = await repository.get(event.profile_id)
    if profile is None:
        _unknown(event, delivery)
    elif profile.applied(event):
        await repository.save(profile)


def _unknown(event: CandidateEvent, delivery: Delivery) -> None:
    log.warning(
        "%s for unknown profile %s ignored", type(event).__name__, event.profile_id,
        extra={"topic": delivery.topic, "partition": delivery.partition, "offset": delivery.offset},
    )


HANDLERS = {
    "Invited": on_invited,
    "InvitationDeclined": on_invitation_declined,
    "InvitationExpired": on_invitation_expired,
    "Applied": on_applied,
}
