"""The events of a profile's stream (domain events: `shared.domain_events`, never the wire models).

The profile's own events (published), plus the facts it learns from the draws and applications services
(Invited, InvitationDeclined, InvitationExpired, Applied). Those are stored in the stream, so that
replaying it rebuilds the lock, but never republished: their producers own them.
"""

from __future__ import annotations

from typing import Final

from shared.domain_events import (
    Applied,
    DomainEvent,
    InvitationDeclined,
    InvitationExpired,
    Invited,
    NominationIssued,
    NominationWithdrawn,
    PersonalDataErased,
    ProfileCreated,
    ProfileExpired,
    ProfileFact,
    ProfileRemovedFromPool,
    ProfileSubmitted,
    ProfileUpdated,
    ProfileWithdrawn,
)

RECEIVED_EVENTS: Final[tuple[type[DomainEvent], ...]] = (
    Invited, InvitationDeclined, InvitationExpired, Applied,
)  # fmt: skip
STREAM_EVENTS: Final[tuple[type[DomainEvent], ...]] = (
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


def is_published(event: DomainEvent) -> bool:
    """Our own events go to Kafka; the facts received from other services do not."""
    return isinstance(event, ProfileFact)
