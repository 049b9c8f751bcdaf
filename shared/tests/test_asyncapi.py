"""The AsyncAPI document: generated from the catalogue, valid AsyncAPI 3.0, committed, served."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from shared.asyncapi import DOC_PATH, asyncapi_document, producer_topics, render
from shared.envelope import encode
from shared.events.catalogue import (
    CATALOGUE,
    DRAWS_TOPIC,
    EVENT_TOPICS,
    PROFILE_TOPIC,
    Event,
    Invited,
    ProfileWithdrawn,
    RoundOfInvitationsHeld,
)
from shared.messages import envelope_for
from shared.tests.fake_runtime import FakeRuntime, FakeSettings, client, make_app

SPEC = Path(__file__).parent / "data" / "asyncapi-specs" / "3.0.0.json"
NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def spec() -> Any:
    return jsonschema_rs.validator_for(json.loads(SPEC.read_text()))


def errors(spec: Any, document: dict[str, Any]) -> list[str]:
    return [f"{list(e.instance_path)}: {e.message[:200]}" for e in spec.iter_errors(document)]


def test_committed_document_is_what_the_catalogue_gives() -> None:
    assert DOC_PATH.read_text() == render(asyncapi_document()), (
        "docs/asyncapi.json differs from the event catalogue: run `make asyncapi` and commit it"
    )


def test_document_is_valid_asyncapi_3(spec: Any) -> None:
    assert errors(spec, asyncapi_document()) == []


def test_the_spec_schema_catches_a_broken_document(spec: Any) -> None:
    document = asyncapi_document()
    document["operations"]["publishProfileEvents"]["action"] = "publish"  # AsyncAPI 2 wording
    assert errors(spec, document)


def test_every_event_type_and_version_is_in_the_document() -> None:
    document = asyncapi_document()
    messages = document["components"]["messages"]
    assert set(messages) == {event.event_type() for event in CATALOGUE}
    by_address = {channel["address"]: channel for channel in document["channels"].values()}
    assert set(by_address) == set(EVENT_TOPICS)
    for event in CATALOGUE:
        channel = by_address[event.topic]
        assert event.event_type() in channel["messages"]
        message = messages[event.event_type()]
        assert message["x-ee-version"] == event.version
        assert message["x-ee-key"] == event.key_field
        assert event.key_field in document["components"]["schemas"][event.event_type()]["properties"]
        assert "order" in channel["description"] and f"{event.topic}.dlq" in channel["description"]


def test_a_new_field_shows_up_and_makes_the_document_differ() -> None:
    class ProfileWithdrawnWithReason(ProfileWithdrawn):
        reason: str

        @classmethod
        def event_name(cls) -> str:
            return "ProfileWithdrawn"

        @classmethod
        def event_type(cls) -> str:
            return "ee.profile.ProfileWithdrawn.v1"

    catalogue = tuple(ProfileWithdrawnWithReason if e is ProfileWithdrawn else e for e in CATALOGUE)
    changed = asyncapi_document(events=catalogue)
    schema = changed["components"]["schemas"]["ee.profile.ProfileWithdrawn.v1"]
    assert "reason" in schema["required"]
    assert render(changed) != DOC_PATH.read_text()


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """A message payload with its component refs inlined, to validate a real envelope against."""
    text = json.dumps(schema)
    for name, component in document["components"]["schemas"].items():
        text = text.replace(json.dumps({"$ref": f"#/components/schemas/{name}"}), json.dumps(component))
    resolved: dict[str, Any] = json.loads(text)
    return resolved


@pytest.mark.parametrize(
    "event",
    [
        ProfileWithdrawn(profile_id="p-1", owner="alice", withdrawn_at=NOW),
        RoundOfInvitationsHeld(
            round_id="r-1",
            round_number=1,
            round_type="general",
            size=10,
            invitations_count=10,
            cutoff_crs=480,
            tie_break_at=NOW,
            held_at=NOW,
        ),
        Invited(
            profile_id="p-1",
            owner="alice",
            invitation_id="i-1",
            round_id="r-1",
            round_number=1,
            program="cec",
            crs=480,
            citizenship="IN",
            invited_at=NOW,
            deadline=NOW,
        ),
    ],
    ids=lambda e: type(e).__name__,
)
def test_a_real_envelope_matches_its_message_payload(event: Event) -> None:
    document = asyncapi_document()
    payload = _resolve(document, document["components"]["messages"][event.event_type()]["payload"])
    envelope = envelope_for(event, source=f"ee/{event.producer}", time=NOW, correlation_id="c-1")
    wire = json.loads(encode(envelope))
    assert wire["subject"] == getattr(event, event.key_field)
    validator = jsonschema_rs.validator_for(payload)
    assert list(validator.iter_errors(wire)) == []
    wire["data"].pop(event.key_field)
    assert not validator.is_valid(wire), "a payload without its key field must not validate"


def test_each_service_owns_its_topics() -> None:
    assert producer_topics("profile") == (PROFILE_TOPIC,)
    assert producer_topics("draws") == (DRAWS_TOPIC,)
    assert producer_topics("console") == ()


async def test_each_service_serves_the_topics_it_owns(spec: Any) -> None:
    app, _ = make_app(runtime=FakeRuntime(settings=FakeSettings(service_name="draws")))
    async with client(app) as c:
        response = await c.get("/asyncapi.json")
    assert response.status_code == 200
    document = response.json()
    assert errors(spec, document) == []
    assert [channel["address"] for channel in document["channels"].values()] == [DRAWS_TOPIC]
    assert set(document["components"]["messages"]) == {
        "ee.draws.RoundOfInvitationsHeld.v1",
        "ee.draws.Invited.v1",
    }
