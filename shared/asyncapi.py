"""The published event contracts: an AsyncAPI 3.0 document generated from the event catalogue.

Every topic is a channel, every event type and version a message whose payload is the CloudEvents
envelope with the event's JSON Schema as `data`; the Kafka key and the ordering guarantees are said
on each message. The whole document is committed as `docs/asyncapi.json` (a test compares it with the
catalogue); each service serves the part for the topics it owns at `GET /asyncapi.json`.

    python -m shared.asyncapi write            # regenerate docs/asyncapi.json (make asyncapi)
    python -m shared.asyncapi check            # exit 1 when docs/asyncapi.json is stale
    python -m shared.asyncapi show --service draws
"""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from shared.envelope import CONTENT_TYPE, SPEC_VERSION, schema_uri
from shared.events.catalogue import CATALOGUE, EVENT_TOPICS, Event

ASYNCAPI_VERSION: Final = "3.0.0"
DOCUMENT_VERSION: Final = "1"
DOC_PATH: Final = Path(__file__).resolve().parents[1] / "docs" / "asyncapi.json"
KAFKA_BINDING_VERSION: Final = "0.5.0"
ENVELOPE_SCHEMA: Final = "CloudEventsEnvelope"

ORDERING: Final = (
    "Kafka keeps the order of the records of one partition, and a record's partition is chosen by its "
    "key, so the events with one key are read in the order they were published; nothing is ordered "
    "across keys. Event-sourced streams also carry `aggregateid` and a gapless `aggregateversion`. "
    "Delivery is at least once: consumers deduplicate on the envelope's `id`."
)


def producer_topics(service: str, events: Iterable[type[Event]] = CATALOGUE) -> tuple[str, ...]:
    """The topics `service` publishes to (owns), in the catalogue's order."""
    return tuple(dict.fromkeys(e.topic for e in events if e.producer == service))


def _channel_id(topic: str) -> str:
    """`ee.profile.events` -> `profileEvents`."""
    parts = topic.split(".")[1:]
    return parts[0] + "".join(p.capitalize() for p in parts[1:])


def _hoist_defs(schema: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    """Move pydantic's `$defs` into the document's components (refs already point there)."""
    schema = copy.deepcopy(schema)
    for name, definition in schema.pop("$defs", {}).items():
        schemas.setdefault(name, definition)
    return schema


def event_schema(event: type[Event]) -> dict[str, Any]:
    """The JSON Schema of an event's `data` (what `model_validate` accepts), refs into components."""
    return event.model_json_schema(ref_template="#/components/schemas/{model}", mode="validation")


def envelope_schema() -> dict[str, Any]:
    """CloudEvents 1.0 (structured mode, JSON) with the project's extension attributes."""
    return {
        "type": "object",
        "description": (
            "A CloudEvents 1.0 event in structured mode: the Kafka record's value is this JSON object "
            "(encoded by shared.envelope). Unknown extension attributes are kept and ignored."
        ),
        "required": ["specversion", "id", "source", "type", "time", "data"],
        "properties": {
            "specversion": {"type": "string", "const": SPEC_VERSION},
            "id": {"type": "string", "description": "Unique per event; consumers deduplicate on it."},
            "source": {"type": "string", "description": "`ee/<service>`", "examples": ["ee/profile"]},
            "type": {
                "type": "string",
                "description": "`ee.<producer>.<EventName>.v<version>`",
                "examples": ["ee.profile.ProfileUpdated.v1"],
            },
            "time": {"type": "string", "format": "date-time", "description": "Business time, UTC."},
            "datacontenttype": {"type": "string", "const": CONTENT_TYPE},
            "dataschema": {
                "type": "string",
                "description": "`urn:ee:schema:<type>`",
                "examples": [schema_uri("ee.profile.ProfileUpdated.v1")],
            },
            "subject": {"type": "string", "description": "The Kafka message key."},
            "aggregateid": {"type": "string", "description": "The event-sourced stream, when there is one."},
            "aggregateversion": {
                "type": "integer",
                "minimum": 1,
                "description": "The event's version in its stream (gapless, starting at 1).",
            },
            "correlationid": {"type": "string", "description": "The request or job that caused it."},
            "causationid": {"type": "string", "description": "The id of the event that caused it."},
            "data": {"type": "object"},
        },
    }


def _message(event: type[Event]) -> dict[str, Any]:
    event_type = event.event_type()
    key_field = event.key_field
    return {
        "name": event.event_name(),
        "title": f"{event.event_name()} v{event.version}",
        "summary": (event.__doc__ or "").strip().split("\n\n")[0] or f"{event.event_name()} (catalogue)",
        "contentType": CONTENT_TYPE,
        "payload": {
            "allOf": [
                {"$ref": f"#/components/schemas/{ENVELOPE_SCHEMA}"},
                {
                    "type": "object",
                    "properties": {
                        "type": {"const": event_type},
                        "source": {"const": f"ee/{event.producer}"},
                        "dataschema": {"const": schema_uri(event_type)},
                        "subject": {"description": f"The event's `{key_field}`."},
                        "data": {"$ref": f"#/components/schemas/{event_type}"},
                    },
                },
            ]
        },
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": f"`data.{key_field}`"},
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
        "x-ee-event-type": event_type,
        "x-ee-version": event.version,
        "x-ee-key": key_field,
    }


def asyncapi_document(
    topics: Iterable[str] | None = None,
    events: Iterable[type[Event]] = CATALOGUE,
    *,
    title: str | None = None,
) -> dict[str, Any]:
    """The AsyncAPI 3.0 document for `topics` (default: every event topic)."""
    catalogue = tuple(events)
    wanted = tuple(topics) if topics is not None else EVENT_TOPICS
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    schemas: dict[str, Any] = {ENVELOPE_SCHEMA: envelope_schema()}
    for topic in wanted:
        on_topic = [e for e in catalogue if e.topic == topic]
        if not on_topic:
            continue
        channel = _channel_id(topic)
        producers = sorted({e.producer for e in on_topic})
        refs: dict[str, Any] = {}
        for event in on_topic:
            event_type = event.event_type()
            messages[event_type] = _message(event)
            schemas[event_type] = _hoist_defs(event_schema(event), schemas)
            refs[event_type] = {"$ref": f"#/components/messages/{event_type}"}
        channels[channel] = {
            "address": topic,
            "title": topic,
            "description": (
                f"Events published by the {', '.join(producers)} service. The real topic name has the "
                f"deployment's `EE_TOPIC_PREFIX` in front; failed records go to `{topic}.dlq` with the "
                f"reason in headers. {ORDERING}"
            ),
            "messages": refs,
            "bindings": {
                "kafka": {
                    "topic": topic,
                    "topicConfiguration": {"retention.ms": -1, "cleanup.policy": ["delete"]},
                    "bindingVersion": KAFKA_BINDING_VERSION,
                }
            },
        }
        operations[f"publish{channel[0].upper()}{channel[1:]}"] = {
            "action": "send",
            "title": f"{', '.join(producers)} publishes to {topic}",
            "channel": {"$ref": f"#/channels/{channel}"},
            "messages": [{"$ref": f"#/channels/{channel}/messages/{name}"} for name in refs],
        }
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "id": "urn:ee:express-entry:events",
        "info": {
            "title": title or "Express Entry events",
            "version": DOCUMENT_VERSION,
            "description": (
                "The events the Express Entry services publish on Kafka, generated from the event "
                "catalogue (shared/events/catalogue.py). Each message is a CloudEvents 1.0 JSON envelope "
                "whose `type` names the event and its version; a new version of an event comes with an "
                "upcaster from the previous one, so consumers read old messages as the current version. "
                + ORDERING
            ),
            "license": {"name": "See the repository"},
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": {
            "kafka": {
                "host": "127.0.0.1:9092",
                "protocol": "kafka",
                "description": "The local broker (`KAFKA_BOOTSTRAP_SERVERS` elsewhere).",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schemas, "messages": messages},
    }


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def asyncapi_router(service: str) -> APIRouter:
    """`GET /asyncapi.json`: the contract of the topics `service` publishes to."""
    router = APIRouter(tags=["operations"])
    document = asyncapi_document(producer_topics(service), title=f"Express Entry events: {service}")

    @router.get(
        "/asyncapi.json",
        summary="AsyncAPI 3.0 document of the events this service publishes",
        response_class=JSONResponse,
    )
    async def asyncapi() -> JSONResponse:
        return JSONResponse(document)

    return router


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "check"
    if command == "write":
        DOC_PATH.write_text(render(asyncapi_document()))
        print(f"wrote {DOC_PATH}")
        return 0
    if command == "check":
        current = DOC_PATH.read_text() if DOC_PATH.exists() else ""
        if current != render(asyncapi_document()):
            print(f"{DOC_PATH} is not what the catalogue gives: run `make asyncapi`", file=sys.stderr)
            return 1
        print(f"{DOC_PATH} matches the catalogue")
        return 0
    if command == "show":
        service = argv[2] if len(argv) > 2 and argv[1] == "--service" else None
        topics = producer_topics(service) if service else None
        sys.stdout.write(render(asyncapi_document(topics)))
        return 0
    print("usage: python -m shared.asyncapi write|check|show [--service NAME]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
