"""The profile's domain events to and from the wire models: the one place the service translates."""

from __future__ import annotations

from typing import Final

from profile_service.domain.events import STREAM_EVENTS
from shared.events.mapping import EventMapper

EVENTS: Final = EventMapper(STREAM_EVENTS)
