"""The compatibility check of event schemas against the recorded (published) ones."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from shared.events.catalogue import CATALOGUE, PROFILE_TOPIC, Event, ProfileExpired
from shared.events.compat import (
    check,
    current_schemas,
    data_schema,
    incompatibilities,
    load_snapshot,
    not_recorded,
    updated_snapshot,
)
from shared.events.registry import EventRegistry


def test_the_catalogue_is_compatible_with_the_recorded_schemas() -> None:
    recorded = load_snapshot()
    assert recorded, "shared/events/schemas.json is missing: run `make event-schemas`"
    assert check(recorded, CATALOGUE) == []


def test_every_current_schema_is_recorded_as_it_is() -> None:
    assert not_recorded(load_snapshot(), CATALOGUE) == [], "run `make event-schemas` and commit"


# -- what the check catches: a stand-in event type and its changes ---------------------------------


class Thing(Event):
    topic: ClassVar[str] = PROFILE_TOPIC
    producer: ClassVar[str] = "profile"
    key_field: ClassVar[str] = "thing_id"

    thing_id: str
    size: int
    at: datetime
    note: str | None = None


def _variant(version: int = 1, **fields: Any) -> type[Event]:
    """`Thing` with other fields (a name: (type, default or ...)), under the same type name."""
    annotations = {name: spec[0] for name, spec in fields.items()}
    defaults = {name: spec[1] for name, spec in fields.items() if spec[1] is not ...}
    namespace: dict[str, Any] = {
        "__annotations__": annotations, "__qualname__": "Thing", "version": version,
        "topic": PROFILE_TOPIC, "producer": "profile", "key_field": "thing_id", **defaults,
    }  # fmt: skip
    variant: type[Event] = type("Thing", (Event,), namespace)
    return variant


BASE: dict[str, Any] = {
    "thing_id": (str, ...), "size": (int, ...), "at": (datetime, ...), "note": (str | None, None),
}  # fmt: skip
RECORDED = current_schemas([Thing])


def problems_of(*events: type[Event], registry: EventRegistry | None = None) -> list[str]:
    return check(RECORDED, events, registry or EventRegistry(events))


def test_the_same_schema_is_compatible() -> None:
    assert problems_of(_variant(**BASE)) == []


def test_an_optional_field_added_or_a_type_widened_is_compatible() -> None:
    assert problems_of(_variant(**BASE, colour=(str | None, None))) == []
    assert problems_of(_variant(**{**BASE, "size": (int | None, ...)})) == []
    assert problems_of(_variant(**{**BASE, "size": (float, ...)})) == []


def test_a_removed_required_field_is_incompatible() -> None:
    fields = {k: v for k, v in BASE.items() if k != "size"}
    assert problems_of(_variant(**fields)) == ["ee.profile.Thing.v1: the required field `size` was removed"]


def test_a_removed_optional_field_is_incompatible_since_unknown_fields_are_refused() -> None:
    fields = {k: v for k, v in BASE.items() if k != "note"}
    assert problems_of(_variant(**fields)) == ["ee.profile.Thing.v1: the field `note` was removed"]


def test_a_retyped_field_is_incompatible() -> None:
    assert problems_of(_variant(**{**BASE, "size": (str, ...)})) == [
        "ee.profile.Thing.v1: the required field `size` changed type from integer to string"
    ]
    assert problems_of(_variant(**{**BASE, "at": (str, ...)})) == [
        "ee.profile.Thing.v1: the required field `at` changed type from string:date-time to string"
    ]
    assert problems_of(_variant(**{**BASE, "note": (str, "")})) == [
        "ee.profile.Thing.v1: the field `note` changed type from null | string to string"
    ]


def test_a_new_required_field_is_incompatible() -> None:
    assert problems_of(_variant(**BASE, colour=(str, ...))) == [
        "ee.profile.Thing.v1: the new field `colour` is required (old messages lack it)"
    ]


def test_a_new_version_with_an_upcaster_is_accepted() -> None:
    v2 = _variant(version=2, **{**BASE, "size": (str, ...)})
    registry = EventRegistry((v2,))
    registry.register_upcaster("ee.profile.Thing.v1", lambda data: {**data, "size": str(data["size"])})
    assert problems_of(v2, registry=registry) == []


def test_a_new_version_without_an_upcaster_is_incompatible() -> None:
    v2 = _variant(version=2, **{**BASE, "size": (str, ...)})
    assert problems_of(v2) == [
        "ee.profile.Thing.v1: no upcaster to v2, so messages of the recorded ee.profile.Thing.v1 could no "
        "longer be read; register one with REGISTRY.register_upcaster('ee.profile.Thing.v1', fn)"
    ]


def test_an_event_type_dropped_from_the_catalogue_is_incompatible() -> None:
    problems = problems_of(ProfileExpired)
    assert len(problems) == 1 and "no longer in the catalogue" in problems[0]


def test_the_update_keeps_old_versions_beside_the_new_one() -> None:
    v2 = _variant(version=2, **BASE)
    snapshot = updated_snapshot(RECORDED, [v2])
    assert set(snapshot) == {"ee.profile.Thing.v1", "ee.profile.Thing.v2"}
    assert snapshot["ee.profile.Thing.v1"] == data_schema(Thing)


def test_the_real_catalogue_changed_incompatibly_fails() -> None:
    """A deliberately incompatible edit of a real event: `ProfileExpired.expired_at` retyped."""
    changed = _variant(profile_id=(str, ...), owner=(str, ...), expired_at=(int, ...))
    name = "ee.profile.ProfileExpired.v1"
    problems = incompatibilities(name, load_snapshot()[name], data_schema(changed))
    assert problems == [
        f"{name}: the required field `expired_at` changed type from string:date-time to integer"
    ]
