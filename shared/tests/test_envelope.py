"""The CloudEvents envelope: encoding, decoding, what a bad message is told, and `envelope_for`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest

from shared.envelope import Envelope, EnvelopeError, decode, encode, schema_uri
from shared.events import REGISTRY
from shared.events.catalogue import Invited, ProfileSubmitted
from shared.messages import envelope_for

T0 = datetime(2026, 2, 3, 4, 5, 6, 789000, tzinfo=UTC)


def full_envelope() -> Envelope:
    return Envelope(
        id="6f1c3a52-2b1e-4a6e-9c1f-0b6f3c2d1e00",
        source="ee/profile",
        type="ee.profile.ProfileWithdrawn.v1",
        time=T0,
        data={"profile_id": "p-1", "owner": "alice", "withdrawn_at": "2026-02-03T04:05:06Z", "n": [1, 2]},
        subject="p-1",
        aggregateid="p-1",
        aggregateversion=7,
        correlationid="corr",
        causationid="cause",
        dataschema=schema_uri("ee.profile.ProfileWithdrawn.v1"),
        extensions={"traceparent": "00-abc-def-01"},
    )


def test_encode_then_decode_gives_the_same_envelope() -> None:
    original = full_envelope()
    assert decode(encode(original)) == original
    assert decode(encode(original).decode()) == original  # str input too


def test_the_wire_form_is_structured_cloudevents_json() -> None:
    body = orjson.loads(encode(full_envelope()))
    assert body["specversion"] == "1.0"
    assert body["datacontenttype"] == "application/json"
    assert body["time"] == "2026-02-03T04:05:06.789000Z"
    assert body["aggregateversion"] == 7
    assert body["traceparent"] == "00-abc-def-01"  # extensions are top-level attributes


def test_optional_attributes_are_left_out_when_absent() -> None:
    minimal = Envelope(id="1", source="ee/x", type="ee.x.Y.v1", time=T0, data={})
    body = orjson.loads(encode(minimal))
    assert "subject" not in body and "aggregateid" not in body and "correlationid" not in body
    assert body["dataschema"] == "urn:ee:schema:ee.x.Y.v1"
    assert decode(encode(minimal)).dataschema == "urn:ee:schema:ee.x.Y.v1"


def test_time_in_another_offset_is_the_same_instant() -> None:
    body = orjson.loads(encode(full_envelope()))
    body["time"] = "2026-02-03T06:05:06.789+02:00"
    decoded = decode(orjson.dumps(body))
    assert decoded.time == T0
    assert decoded.time.utcoffset() == timedelta(hours=2)
    assert decoded.time.tzinfo == timezone(timedelta(hours=2))


def test_name_is_the_event_name_without_producer_and_version() -> None:
    assert full_envelope().name == "ProfileWithdrawn"


def _with(**changes: object) -> bytes:
    body = orjson.loads(encode(full_envelope()))
    for key, value in changes.items():
        if value is ...:
            body.pop(key)
        else:
            body[key] = value
    return orjson.dumps(body)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not json", "not JSON"),
        (b"", "not JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'"a string"', "must be a JSON object"),
        (_with(id=..., source=...), "missing CloudEvents attributes: id, source"),
        (_with(data=...), "missing CloudEvents attributes: data"),
        (_with(specversion="0.3"), "unsupported specversion '0.3'"),
        (_with(data=[1, 2]), "data must be a JSON object"),
        (_with(time="yesterday"), "time is not an RFC 3339 timestamp"),
        (_with(aggregateversion="7"), "aggregateversion must be an integer"),
    ],
)
def test_decode_says_what_is_wrong(raw: bytes, message: str) -> None:
    with pytest.raises(EnvelopeError, match=message.replace("(", r"\(")):
        decode(raw)


def test_envelope_error_is_a_value_error() -> None:
    assert issubclass(EnvelopeError, ValueError)


def test_envelope_for_a_catalogue_event() -> None:
    event = ProfileSubmitted(
        profile_id="p-9",
        owner="partner-1",
        document={"age": 29},
        eligible_programs=["fsw", "cec"],
        submitted_at=T0,
        expires_at=T0 + timedelta(days=365),
    )
    env = envelope_for(
        event,
        source="ee/profile",
        time=T0,
        aggregate_id="p-9",
        aggregate_version=3,
        correlation_id="c",
        causation_id="k",
    )
    assert env.type == "ee.profile.ProfileSubmitted.v1"
    assert env.subject == "p-9"  # the Kafka key
    assert env.dataschema == "urn:ee:schema:ee.profile.ProfileSubmitted.v1"
    assert (env.aggregateid, env.aggregateversion, env.correlationid, env.causationid) == ("p-9", 3, "c", "k")
    assert env.data["submitted_at"] == "2026-02-03T04:05:06.789000Z"
    assert len(env.id) == 36
    # Through the wire and back to the same event.
    assert REGISTRY.parse(decode(encode(env))) == event


def test_envelope_for_keys_a_non_candidate_event_by_its_own_key() -> None:
    event = Invited(
        profile_id="p-2",
        owner="o",
        invitation_id="i-1",
        round_id="r-1",
        round_number=300,
        program="cec",
        crs=512,
        citizenship="IN",
        invited_at=T0,
        deadline=T0 + timedelta(days=60),
    )
    assert envelope_for(event, source="ee/draws", time=T0).subject == "p-2"


def test_envelope_for_refuses_a_naive_time() -> None:
    event = Invited(
        profile_id="p-2",
        owner="o",
        invitation_id="i-1",
        round_id="r-1",
        round_number=300,
        program="cec",
        crs=512,
        citizenship="IN",
        invited_at=T0,
        deadline=T0,
    )
    with pytest.raises(ValueError, match="timezone-aware"):
        envelope_for(event, source="ee/draws", time=datetime(2026, 1, 1))
