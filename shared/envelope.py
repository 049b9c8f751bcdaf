"""The CloudEvents 1.0 envelope every message carries, and its JSON codec.

JSON on the wire (structured mode), encoded with orjson. Extension attributes follow the CloudEvents
naming rule (lower-case letters and digits only): `aggregateid`, `aggregateversion`, `correlationid`,
`causationid`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import orjson

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"
REQUIRED_ATTRIBUTES = ("specversion", "id", "source", "type", "time", "data")


class EnvelopeError(ValueError):
    """A message that is not a valid envelope: it goes to the dead-letter topic."""


@dataclass(frozen=True, slots=True)
class Envelope:
    id: str
    source: str
    type: str
    time: datetime
    data: dict[str, Any]
    subject: str | None = None
    aggregateid: str | None = None
    aggregateversion: int | None = None
    correlationid: str | None = None
    causationid: str | None = None
    datacontenttype: str = CONTENT_TYPE
    dataschema: str | None = None
    specversion: str = SPEC_VERSION
    extensions: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """`ProfileUpdated` for `ee.profile.ProfileUpdated.v1`."""
        return self.type.rsplit(".", 2)[-2]

    def with_data(self, type_: str, data: dict[str, Any]) -> Envelope:
        return replace(self, type=type_, data=data, dataschema=schema_uri(type_))


def schema_uri(event_type: str) -> str:
    return f"urn:ee:schema:{event_type}"


def new_event_id() -> str:
    return str(uuid.uuid4())


def encode(envelope: Envelope) -> bytes:
    body: dict[str, Any] = {
        "specversion": envelope.specversion,
        "id": envelope.id,
        "source": envelope.source,
        "type": envelope.type,
        "time": envelope.time,
        "datacontenttype": envelope.datacontenttype,
        "dataschema": envelope.dataschema or schema_uri(envelope.type),
    }
    optional = {
        "subject": envelope.subject,
        "aggregateid": envelope.aggregateid,
        "aggregateversion": envelope.aggregateversion,
        "correlationid": envelope.correlationid,
        "causationid": envelope.causationid,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    body.update(envelope.extensions)
    body["data"] = envelope.data
    return orjson.dumps(body, option=orjson.OPT_UTC_Z)


_KNOWN = frozenset(
    {
        "specversion",
        "id",
        "source",
        "type",
        "time",
        "data",
        "subject",
        "aggregateid",
        "aggregateversion",
        "correlationid",
        "causationid",
        "datacontenttype",
        "dataschema",
    }
)


def decode(raw: bytes | str) -> Envelope:
    """Parse and check a structured-mode CloudEvent; raise EnvelopeError saying what is wrong."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise EnvelopeError(f"not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise EnvelopeError("a CloudEvent must be a JSON object")
    missing = [name for name in REQUIRED_ATTRIBUTES if name not in body]
    if missing:
        raise EnvelopeError(f"missing CloudEvents attributes: {', '.join(missing)}")
    if body["specversion"] != SPEC_VERSION:
        raise EnvelopeError(f"unsupported specversion {body['specversion']!r}")
    if not isinstance(body["data"], dict):
        raise EnvelopeError("data must be a JSON object")
    try:
        time = datetime.fromisoformat(str(body["time"]).replace("Z", "+00:00"))
    except ValueError as exc:
        raise EnvelopeError(f"time is not an RFC 3339 timestamp: {body['time']!r}") from exc
    version = body.get("aggregateversion")
    if version is not None and not isinstance(version, int):
        raise EnvelopeError("aggregateversion must be an integer")
    return Envelope(
        id=str(body["id"]),
        source=str(body["source"]),
        type=str(body["type"]),
        time=time,
        data=body["data"],
        subject=body.get("subject"),
        aggregateid=body.get("aggregateid"),
        aggregateversion=version,
        correlationid=body.get("correlationid"),
        causationid=body.get("causationid"),
        datacontenttype=body.get("datacontenttype", CONTENT_TYPE),
        dataschema=body.get("dataschema"),
        extensions={k: v for k, v in body.items() if k not in _KNOWN},
    )
