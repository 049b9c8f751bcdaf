"""The event registry: catalogue lookups, unknown types, and upcasting old versions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest
from pydantic import ValidationError

from shared.envelope import Envelope, schema_uri
from shared.events import CATALOGUE, EVENT_TOPICS, REGISTRY, Event, EventRegistry, UnknownEventType
from shared.events.catalogue import ProfileWithdrawn

T0 = datetime(2026, 6, 1, tzinfo=UTC)


def envelope(type_: str, data: dict[str, Any]) -> Envelope:
    return Envelope(id="e-1", source="ee/test", type=type_, time=T0, data=data, subject="k")


# A test-only family, never in the catalogue: ee.test.Greeting, now at version 3.
# v1 {"name": "Ada Lovelace"} -> v2 {"given": "Ada", "family": "Lovelace"} -> v3 adds "language".
class Greeting(Event):
    topic: ClassVar[str] = "ee.test.events"
    producer: ClassVar[str] = "test"
    version: ClassVar[int] = 3

    given: str
    family: str
    language: str

    def key(self) -> str:
        return self.family


def v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    given, _, family = data["name"].partition(" ")
    return {"given": given, "family": family}


def v2_to_v3(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "language": "en"}


@pytest.fixture
def registry() -> EventRegistry:
    registry = EventRegistry(events=(Greeting,))
    registry.register_upcaster("ee.test.Greeting.v1", v1_to_v2)
    registry.register_upcaster("ee.test.Greeting.v2", v2_to_v3)
    return registry


def test_an_old_version_is_upcast_through_the_chain_to_the_current_one(registry: EventRegistry) -> None:
    old = envelope("ee.test.Greeting.v1", {"name": "Ada Lovelace"})
    event = registry.parse(old)
    assert event == Greeting(given="Ada", family="Lovelace", language="en")

    upcast = registry.upcast(old)
    assert upcast.type == "ee.test.Greeting.v3"
    assert upcast.dataschema == schema_uri("ee.test.Greeting.v3")
    assert (upcast.id, upcast.subject, upcast.time) == (old.id, old.subject, old.time)  # the rest is kept
    assert old.data == {"name": "Ada Lovelace"}  # the original is untouched


def test_the_middle_of_the_chain_upcasts_from_where_it_is(registry: EventRegistry) -> None:
    event = registry.parse(envelope("ee.test.Greeting.v2", {"given": "Grace", "family": "Hopper"}))
    assert event == Greeting(given="Grace", family="Hopper", language="en")


def test_the_current_version_passes_unchanged(registry: EventRegistry) -> None:
    current = envelope("ee.test.Greeting.v3", {"given": "A", "family": "B", "language": "fr"})
    assert registry.upcast(current) is current
    assert registry.parse(current) == Greeting(given="A", family="B", language="fr")


def test_a_missing_upcaster_makes_the_type_unreadable() -> None:
    registry = EventRegistry(events=(Greeting,))
    registry.register_upcaster("ee.test.Greeting.v2", v2_to_v3)
    with pytest.raises(UnknownEventType, match="no upcaster from v1"):
        registry.parse(envelope("ee.test.Greeting.v1", {"name": "Ada Lovelace"}))


def test_a_newer_version_than_this_build_knows_is_unknown(registry: EventRegistry) -> None:
    assert not registry.knows("ee.test.Greeting.v4")
    with pytest.raises(UnknownEventType):
        registry.parse(envelope("ee.test.Greeting.v4", {}))


@pytest.mark.parametrize("type_", ["ee.test.Farewell.v1", "no-version-here", "ee.test.Greeting.vX", ""])
def test_unknown_or_malformed_types_are_unknown(registry: EventRegistry, type_: str) -> None:
    assert not registry.knows(type_)
    with pytest.raises(UnknownEventType):
        registry.parse(envelope(type_, {}))


def test_data_that_does_not_match_the_model_is_a_validation_error(registry: EventRegistry) -> None:
    with pytest.raises(ValidationError):
        registry.parse(envelope("ee.test.Greeting.v3", {"given": "A"}))
    with pytest.raises(ValidationError):  # the catalogue forbids unknown fields
        extra = {"given": "A", "family": "B", "language": "x", "y": 1}
        registry.parse(envelope("ee.test.Greeting.v3", extra))


def test_the_shared_registry_knows_the_whole_catalogue_and_not_the_test_family() -> None:
    assert not REGISTRY.knows("ee.test.Greeting.v3")
    for model in CATALOGUE:
        assert REGISTRY.knows(model.event_type())
        assert REGISTRY.model_for(model.event_type()) is model
    event = ProfileWithdrawn(profile_id="p-1", owner="o", withdrawn_at=T0)
    assert REGISTRY.parse(envelope(event.event_type(), event.model_dump(mode="json"))) == event


def test_the_catalogue_is_consistent() -> None:
    types = [e.event_type() for e in CATALOGUE]
    assert len(types) == len(set(types)), "every event type is unique"
    for event in CATALOGUE:
        assert event.topic in EVENT_TOPICS
        assert event.event_type() == f"ee.{event.producer}.{event.__name__}.v{event.version}"
        assert event.topic == f"ee.{event.producer}.events"
