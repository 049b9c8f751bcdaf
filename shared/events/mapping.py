"""Domain events (frozen dataclasses, `shared.domain_events`) to and from the catalogue's wire models.

Written once for every service: a service builds one `EventMapper` over the domain events its streams
and consumers hold, and translates at the edge (the event-sourced repository on save and load, the
consumer handlers on receipt). A domain event maps to the catalogue event of the same class name, field
for field; a mapper refuses, when built, a class whose fields differ from its wire model's (by name,
or one optional where the other is required), so the two cannot drift apart unnoticed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import MISSING, Field, fields, is_dataclass
from typing import Any

from shared.domain_events import DomainEvent
from shared.events.catalogue import Event
from shared.events.registry import REGISTRY, EventRegistry


class EventMapper:
    def __init__(
        self, domain_events: Iterable[type[DomainEvent]], registry: EventRegistry = REGISTRY
    ) -> None:
        wire = {model.__name__: model for model in registry.current()}
        self._wire: dict[type[DomainEvent], type[Event]] = {}
        self._domain: dict[type[Event], type[DomainEvent]] = {}
        self._fields: dict[type[Any], tuple[str, ...]] = {}
        for cls in domain_events:
            model = wire.get(cls.__name__)
            if model is None or not is_dataclass(cls):
                raise TypeError(f"{cls.__name__}: not a dataclass named after a catalogue event")
            names = tuple(f.name for f in fields(cls))
            optional = {f.name for f in fields(cls) if _has_default(f)}
            wire_optional = {name for name, info in model.model_fields.items() if not info.is_required()}
            if set(names) != set(model.model_fields) or optional != wire_optional:
                raise TypeError(
                    f"{cls.__name__}: fields {sorted(names)} (optional {sorted(optional)}) differ from the "
                    f"wire model's {sorted(model.model_fields)} (optional {sorted(wire_optional)})"
                )
            self._wire[cls] = model
            self._domain[model] = cls
            self._fields[cls] = self._fields[model] = names

    @property
    def wire_models(self) -> tuple[type[Event], ...]:
        """The wire models of the mapped domain events (the types a consumer of them subscribes to)."""
        return tuple(self._domain)

    def knows(self, event: Event) -> bool:
        return type(event) in self._domain

    def domain_type(self, model: type[Event]) -> type[DomainEvent]:
        """The domain event class of a wire model this mapper knows (KeyError for another)."""
        return self._domain[model]

    def to_wire(self, event: DomainEvent) -> Event:
        """The wire model of `event` (validated, as if the domain had built it)."""
        cls = type(event)
        return self._wire[cls](**{name: getattr(event, name) for name in self._fields[cls]})

    def to_domain(self, event: Event) -> DomainEvent:
        """The domain event of a wire model this mapper knows (KeyError for another)."""
        model = type(event)
        return self._domain[model](**{name: getattr(event, name) for name in self._fields[model]})


def _has_default(field: Field[Any]) -> bool:
    return field.default is not MISSING or field.default_factory is not MISSING
