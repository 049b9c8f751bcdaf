"""Event types by name and version, with upcasters so an old version stays readable.

An upcaster turns the data of version N into version N+1. Reading an old message runs the chain up to
the version the catalogue defines now, so handlers only ever see the current shape.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shared.envelope import Envelope
from shared.events.catalogue import CATALOGUE, Event

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


class UnknownEventType(LookupError):
    """A type this build does not know: skipped and counted (forward compatibility)."""


class EventRegistry:
    def __init__(self, events: tuple[type[Event], ...] = CATALOGUE) -> None:
        self._current: dict[str, type[Event]] = {}
        self._upcasters: dict[tuple[str, int], Upcaster] = {}
        for event in events:
            self.register(event)

    def register(self, event: type[Event]) -> None:
        self._current[self._family(event.event_type())] = event

    def register_upcaster(self, event_type: str, upcaster: Upcaster) -> None:
        """`event_type` is the old one, e.g. `ee.profile.ProfileUpdated.v1` (to v2)."""
        family, version = self._split(event_type)
        self._upcasters[(family, version)] = upcaster

    def has_upcaster(self, event_type: str) -> bool:
        """Whether `event_type` (an old version, e.g. `ee.x.Y.v1`) is upcast to the next version."""
        return self._split(event_type) in self._upcasters

    def current(self) -> tuple[type[Event], ...]:
        """The current version of every event type registered."""
        return tuple(self._current.values())

    def model_for(self, event_type: str) -> type[Event]:
        family, _ = self._split(event_type)
        try:
            return self._current[family]
        except KeyError:
            raise UnknownEventType(event_type) from None

    def knows(self, event_type: str) -> bool:
        try:
            family, version = self._split(event_type)
        except UnknownEventType:
            return False
        model = self._current.get(family)
        return model is not None and version <= model.version

    def upcast(self, envelope: Envelope) -> Envelope:
        """The envelope with its data brought up to the current version of its type."""
        model = self.model_for(envelope.type)
        family, version = self._split(envelope.type)
        if version > model.version:
            raise UnknownEventType(envelope.type)
        data = envelope.data
        while version < model.version:
            upcaster = self._upcasters.get((family, version))
            if upcaster is None:
                raise UnknownEventType(f"{envelope.type}: no upcaster from v{version}")
            data = upcaster(data)
            version += 1
        if data is envelope.data:
            return envelope
        return envelope.with_data(model.event_type(), data)

    def parse(self, envelope: Envelope) -> Event:
        """Validate an envelope's data as its (upcast) catalogue event."""
        upcast = self.upcast(envelope)
        return self.model_for(upcast.type).model_validate(upcast.data)

    @staticmethod
    def _family(event_type: str) -> str:
        return event_type.rsplit(".", 1)[0]

    @staticmethod
    def _split(event_type: str) -> tuple[str, int]:
        family, _, version = event_type.rpartition(".v")
        if not family or not version.isdigit():
            raise UnknownEventType(event_type)
        return family, int(version)


REGISTRY = EventRegistry()
