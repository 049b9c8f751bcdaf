"""Reading one record for the replay: fast for the common profile events, else as the consumer reads.

The common profile events (created, submitted, updated: the ones carrying a document) are decoded
with orjson and checked field by field against their catalogue shape without building a pydantic
model. Anything that does not match that shape exactly is judged by the consumer's own decision
(`shared.decisions.judge`): dead-lettered with the same reason, skipped as unknown, ignored, or
applied. An event the projection's handler would refuse (`projection.rejection`) is dead-lettered
with the reason the consumer gives after its retries (`shared.decisions.handler_failed`).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import orjson

from ranking_service.application.events import EVENTS
from ranking_service.application.projection import rejection
from shared.decisions import Action, handler_failed, judge
from shared.domain_events import CandidateFact, DomainEvent
from shared.envelope import SPEC_VERSION
from shared.events.catalogue import Event, ProfileCreated, ProfileSubmitted, ProfileUpdated
from shared.events.registry import REGISTRY, UnknownEventType

DOCUMENT_EVENTS: Final = tuple(
    EVENTS.domain_type(model) for model in (ProfileCreated, ProfileSubmitted, ProfileUpdated)
)


@dataclass(slots=True)
class Item:
    """One event, reduced to what the merge needs (not frozen: one is built per record, and a frozen
    dataclass's __init__ costs 1.2 µs against 0.4)."""

    profile_id: str
    owner: str
    event: DomainEvent
    version: int | None
    event_id: str


class DeadRecord(Exception):
    """The consumer would dead-letter this record, with this reason."""

    def __init__(self, reason: str, error: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error = error


_HANDLED_NAMES: Final = frozenset(model.event_name() for model in EVENTS.wire_models)
_REQUIRED: Final = frozenset({"specversion", "id", "source", "type", "time", "data"})
_RFC3339: Final = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2})")
# Exactly the fields of each fast-read event: (required, optional).
_SHAPES: Final[dict[type[Event], tuple[frozenset[str], frozenset[str]]]] = {
    ProfileCreated: (frozenset({"profile_id", "owner", "document", "created_at"}), frozenset({"sealed"})),
    ProfileSubmitted: (
        frozenset({"profile_id", "owner", "document", "eligible_programs", "submitted_at", "expires_at"}),
        frozenset({"sealed"}),
    ),
    ProfileUpdated: (
        frozenset({"profile_id", "owner", "document", "status", "eligible_programs", "updated_at"}),
        frozenset({"submitted_at", "expires_at", "sealed"}),
    ),
}
_current_models: dict[str, type[Event] | None] = {}


def read_item(value: bytes | None) -> Item | None:
    """The record as an item to merge; None when the consumer would skip or ignore it.

    Raises `DeadRecord` for what the consumer would dead-letter (unreadable, or refused by the
    projection's handler after the consumer's retries).
    """
    fast = _fast_read(value)
    if fast is not None:
        envelope_id, version, event, event_type = fast
    else:
        verdict = judge(value, _HANDLED_NAMES)
        if verdict.action is Action.DEAD_LETTER:
            raise DeadRecord(verdict.reason, verdict.error)
        if verdict.action is not Action.APPLY:
            return None  # unknown to this build, or a known type the projection has no handler for
        assert verdict.envelope is not None and verdict.event is not None
        envelope = verdict.envelope
        if not EVENTS.knows(verdict.event):
            return None
        event = EVENTS.to_domain(verdict.event)
        envelope_id, version, event_type = envelope.id, envelope.aggregateversion, envelope.type
    assert isinstance(event, CandidateFact)
    if (error := rejection(event)) is not None:
        raise DeadRecord(*handler_failed(event_type, error))
    return Item(event.profile_id, sys.intern(event.owner), event, version, envelope_id)


def _fast_read(value: bytes | None) -> tuple[str, int | None, DomainEvent, str] | None:
    """The common profile events without pydantic, straight to the domain's (id, version, event,
    type); None for anything else."""
    try:
        body = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return None
    if type(body) is not dict or not body.keys() >= _REQUIRED:
        return None
    data, version, event_type = body["data"], body.get("aggregateversion"), body["type"]
    if body["specversion"] != SPEC_VERSION or type(data) is not dict or type(event_type) is not str:
        return None
    if version is not None and type(version) is not int:
        return None
    if _instant(str(body["time"]).replace("Z", "+00:00")) is None:
        return None
    model = _current_model(event_type)
    if model is None:
        return None
    fields = _fast_fields(model, data)
    if fields is None:
        return None
    return str(body["id"]), version, EVENTS.domain_type(model)(**fields), event_type


def _current_model(event_type: str) -> type[Event] | None:
    """The catalogue model when `event_type` is its current version (nothing to upcast)."""
    if event_type not in _current_models:
        try:
            model: type[Event] | None = REGISTRY.model_for(event_type)
        except UnknownEventType:
            model = None
        if model is not None and (model not in _SHAPES or model.event_type() != event_type):
            model = None
        if len(_current_models) < 1000:
            _current_models[event_type] = model
        return model
    return _current_models[event_type]


def _fast_fields(model: type[Event], data: dict[str, Any]) -> dict[str, Any] | None:
    """`data` as the model's fields when it has exactly the expected shape and types, else None."""
    required, allowed = _PLANS[model]
    keys = data.keys()
    if not keys >= required or not keys <= allowed:
        return None
    fields = dict(data)
    for name, value in data.items():
        kind = _KINDS.get(name, _INSTANT)
        if kind is _TEXT:
            if type(value) is not str:
                return None
        elif kind is _OBJECT:
            if type(value) is not dict:
                return None
        elif kind is _CODES:
            if type(value) is not list:
                return None
            for code in value:
                if type(code) is not str:
                    return None
        elif value is None and name not in required:  # an optional field, null
            continue
        elif kind is _SEALED:  # personal fields, sealed (docs/PRIVACY.md): ranking never opens them
            if type(value) is not str:
                return None
        else:  # an instant
            instant = _instant(value) if type(value) is str and _RFC3339.fullmatch(value) else None
            if instant is None:
                return None
            fields[name] = instant
    return fields


# How each field of the fast-read events is checked (every other field is an instant).
_TEXT, _OBJECT, _CODES, _SEALED, _INSTANT = "text", "object", "codes", "sealed", "instant"
_KINDS: Final = {
    "profile_id": _TEXT,
    "owner": _TEXT,
    "status": _TEXT,
    "document": _OBJECT,
    "eligible_programs": _CODES,
    "sealed": _SEALED,
}
# Per fast-read event: its required fields, and every field it may have.
_PLANS: Final = {model: (required, required | optional) for model, (required, optional) in _SHAPES.items()}


def _instant(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None
