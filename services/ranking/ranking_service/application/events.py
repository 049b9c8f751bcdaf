"""The profile and invitation facts the ranking domain applies, from the wire models: the one place
the service translates them (the projection's consumer and the replay read through it)."""

from __future__ import annotations

from typing import Final

from ranking_service.domain.candidate import HANDLED_EVENTS
from shared.events.mapping import EventMapper

EVENTS: Final = EventMapper(HANDLED_EVENTS)
