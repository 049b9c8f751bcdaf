"""Domain events and their wire models: the same names and fields, a round trip changes nothing."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from shared import domain_events
from shared.domain_events import (
    INVITATION_FACTS,
    PROFILE_FACTS,
    DomainEvent,
    Invited,
    ProfileFact,
    ProfileUpdated,
)
from shared.events import catalogue
from shared.events.mapping import EventMapper

T0 = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


def test_every_shared_domain_event_mirrors_its_catalogue_event_field_for_field() -> None:
    mapper = EventMapper((*PROFILE_FACTS, *INVITATION_FACTS))
    facts = (*PROFILE_FACTS, *INVITATION_FACTS)
    assert {model.__name__ for model in mapper.wire_models} == {e.__name__ for e in facts}
    for cls in facts:
        model = getattr(catalogue, cls.__name__)
        assert {f.name for f in dataclasses.fields(cls)} == set(model.model_fields) != set()


def test_the_module_lists_every_leaf_event_it_defines() -> None:
    leaves = {
        value
        for value in vars(domain_events).values()
        if isinstance(value, type) and issubclass(value, DomainEvent) and not value.__subclasses__()
    }
    assert leaves == set(PROFILE_FACTS) | set(INVITATION_FACTS)


def test_a_round_trip_through_the_wire_model_gives_the_same_event() -> None:
    mapper = EventMapper((ProfileUpdated, Invited))
    updated = ProfileUpdated(
        profile_id="p",
        owner="o",
        document={"a": 1},
        status="in_pool",
        eligible_programs=["fsw"],
        updated_at=T0,
    )
    wire = mapper.to_wire(updated)
    assert isinstance(wire, catalogue.ProfileUpdated)
    assert wire.model_dump() == dataclasses.asdict(updated)
    assert mapper.to_domain(wire) == updated
    assert mapper.knows(wire) and not mapper.knows(
        catalogue.ProfileWithdrawn(profile_id="p", owner="o", withdrawn_at=T0)
    )
    assert isinstance(mapper.to_domain(wire), ProfileFact)


def test_to_wire_validates_as_the_wire_model_does() -> None:
    mapper = EventMapper((ProfileUpdated,))
    bad = ProfileUpdated(
        profile_id="p",
        owner="o",
        document={},
        status="in_pool",
        eligible_programs="fsw",  # type: ignore[arg-type]
        updated_at=T0,
    )
    with pytest.raises(ValueError, match="eligible_programs"):
        mapper.to_wire(bad)


def test_a_mapper_refuses_a_domain_event_whose_fields_differ_from_its_wire_model() -> None:
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class ProfileWithdrawn(DomainEvent):
        profile_id: str
        withdrawn_at: datetime

    with pytest.raises(TypeError, match="owner"):
        EventMapper((ProfileWithdrawn,))

    @dataclasses.dataclass(frozen=True, kw_only=True)
    class NominationIssued(DomainEvent):  # province optional here, required on the wire
        profile_id: str
        owner: str
        province: str = "ON"
        nominated_at: datetime

    with pytest.raises(TypeError, match="optional"):
        EventMapper((NominationIssued,))

    @dataclasses.dataclass(frozen=True, kw_only=True)
    class NotInTheCatalogue(DomainEvent):
        x: int

    with pytest.raises(TypeError, match="NotInTheCatalogue"):
        EventMapper((NotInTheCatalogue,))
