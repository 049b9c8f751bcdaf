"""The catalogue as the notifications service uses it, the one place it reads the wire models: the
subscription's domain events translated for the outbox, and the event types scope judges."""

from __future__ import annotations

from typing import Final

from notifications_service.domain.events import SUBSCRIPTION_EVENTS
from notifications_service.domain.scope import EventTypes
from shared.events.catalogue import CATALOGUE, CandidateEvent, Event, RoundOfInvitationsHeld
from shared.events.mapping import EventMapper

EVENTS: Final = EventMapper(SUBSCRIPTION_EVENTS)


def _family(event: type[Event]) -> str:
    return f"ee.{event.producer}.{event.event_name()}"


EVENT_TYPES: Final = EventTypes(
    producers=tuple(dict.fromkeys(event.producer for event in CATALOGUE)),
    families=frozenset(_family(event) for event in CATALOGUE),
    candidate=frozenset(_family(event) for event in CATALOGUE if issubclass(event, CandidateEvent)),
    rounds=frozenset({_family(RoundOfInvitationsHeld)}),
)
