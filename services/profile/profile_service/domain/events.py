"""The events of a profile's stream.

The profile's own catalogue events, plus the facts it learns from the draws and applications services
(Invited, InvitationDeclined, InvitationExpired, Applied). Those are stored in the stream, so that
replaying it rebuilds the lock, but never republished: their producers own them.
"""

from __future__ import annotations

from typing import Final

from shared.events.catalogue import (
    Applied,
    Event,
    InvitationDeclined,
    InvitationExpired,
    Invited,
    NominationIssued,
    NominationWithdrawn,
    PersonalDataErased,
    ProfileCreated,
    ProfileExpired,
    ProfileRemovedFromPool,
    ProfileSubmitted,
    ProfileUpdated,
    ProfileWithdrawn,
)

RECEIVED_EVENTS: Final[tuple[type[Event], ...]] = (Invited, InvitationDeclined, InvitationExpired, Applied)
STREAM_EVENTS: Final[tuple[type[Event], ...]] = (
    ProfileCreated,
    ProfileUpdated,
    ProfileSubmitted,
    ProfileRemovedFromPool,
    ProfileWithdrawn,
    ProfileExpired,
    NominationIssued,
    NominationWithdrawn,
    PersonalDataErased,
    *RECEIVED_EVENTS,
)


def is_published(event: Event) -> bool:
    """Our own catalogue events go to Kafka; the facts received from other services do not."""
    return event.producer == "profile"
