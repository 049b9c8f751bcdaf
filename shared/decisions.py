"""What the consumer decides about a record, as functions any reader of the event topics reuses.

The idempotent consumer (`shared.consumer`) and the ranking rebuild's replay read the same records;
they must come to the same verdict on each, dead-letter it with the same reason and headers, and
name the same retry count, or a rebuilt projection would differ from the live one. So the decisions
live here, once:

- `judge(value, handled)`: apply it, skip it (a type this build does not know), ignore it (a known
  type with no handler here), or dead-letter it (not JSON, not a CloudEvent, data not matching its
  catalogue event), with the reason;
- `handler_failed(event_type, error)`: the reason of a record whose handler kept failing after
  `MAX_RETRIES` attempts;
- `DeadLetterReason`: the reason's word for metrics; `dead_letter_headers` and `DeadLetters`: the
  DLQ copy of a record (original key, value and headers, plus why, where from and who gave up).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Container
from dataclasses import dataclass
from typing import Final, TypeAlias

from aiokafka import AIOKafkaProducer, ConsumerRecord
from pydantic import ValidationError

from shared.envelope import Envelope, EnvelopeError, decode
from shared.events.catalogue import Event
from shared.events.registry import REGISTRY, EventRegistry, UnknownEventType
from shared.messages import (
    HEADER_CONSUMER,
    HEADER_ERROR,
    HEADER_ORIGINAL_OFFSET,
    HEADER_ORIGINAL_PARTITION,
    HEADER_ORIGINAL_TOPIC,
    HEADER_REASON,
    dlq_topic,
)
from shared.producer import start_producer
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)

Record: TypeAlias = ConsumerRecord[bytes, bytes]

MAX_RETRIES: Final = 3
"""Attempts at a failing handler before its record is dead-lettered (the consumer's default)."""


class DeadLetterReason:
    """Why a record went to the DLQ, in a word (the metrics' `reason` label; the header says more)."""

    UNREADABLE = "unreadable"  # not JSON, not a CloudEvent, or data not matching its catalogue event
    DATA_REJECTED = "data_rejected"  # the database refused a value of a well-formed event
    HANDLER_FAILED = "handler_failed"  # the handler kept raising after its retries


class UnreadableEvent(ValueError):
    """A record that is not an event of the catalogue: `reason` and `error` go to the DLQ headers."""

    def __init__(self, reason: str, error: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error = error


def read_event(value: bytes | None, registry: EventRegistry = REGISTRY) -> tuple[Envelope, Event]:
    """Decode, upcast and validate one record's value as a catalogue event.

    Raises `UnreadableEvent` (dead-letter it, with its reason) or `UnknownEventType` (skip it).
    """
    envelope: Envelope | None = None
    try:
        envelope = registry.upcast(decode(value or b""))
        model = registry.model_for(envelope.type)
        return envelope, model.model_validate(envelope.data)
    except EnvelopeError as exc:
        raise UnreadableEvent(f"not a CloudEvents envelope: {exc}", type(exc).__name__) from exc
    except UnknownEventType:
        raise
    except ValidationError as exc:
        assert envelope is not None
        reason = f"data does not match the catalogue event {envelope.type}: {_short(exc)}"
        raise UnreadableEvent(reason, type(exc).__name__) from exc
    except Exception as exc:  # an upcaster that chokes on this data
        raise UnreadableEvent(f"cannot read the event: {exc!r}", type(exc).__name__) from exc


class Action(enum.Enum):
    APPLY = "apply"  # hand it to its handler
    SKIP_UNKNOWN = "skip_unknown"  # a type this build does not know (a newer producer): skip, count
    IGNORE = "ignore"  # a known type this reader has no handler for
    DEAD_LETTER = "dead_letter"  # cannot be read: to the DLQ with `reason` and `error`


@dataclass(frozen=True, slots=True)
class Verdict:
    """The decision about one record, and what it rests on."""

    action: Action
    envelope: Envelope | None = None  # APPLY, IGNORE
    event: Event | None = None  # APPLY, IGNORE
    reason: str = ""  # DEAD_LETTER: the DLQ `reason` header; SKIP_UNKNOWN: the type
    error: str = ""  # DEAD_LETTER: the DLQ `error` header (an exception class name)


def judge(value: bytes | None, handled: Container[str], registry: EventRegistry = REGISTRY) -> Verdict:
    """What a reader handling the event names `handled` does with a record of this value."""
    try:
        envelope, event = read_event(value, registry)
    except UnreadableEvent as exc:
        return Verdict(Action.DEAD_LETTER, reason=exc.reason, error=exc.error)
    except UnknownEventType as exc:
        return Verdict(Action.SKIP_UNKNOWN, reason=str(exc))
    action = Action.APPLY if event.event_name() in handled else Action.IGNORE
    return Verdict(action, envelope, event)


def handler_failed(event_type: str, error: BaseException, attempts: int = MAX_RETRIES) -> tuple[str, str]:
    """The DLQ `reason` and `error` of a record whose handler raised `error` on each of its attempts."""
    return f"handler for {event_type} failed {attempts} times; last error: {error!r}", type(error).__name__


def dead_letter_headers(record: Record, reason: str, error: str, consumer: str) -> list[tuple[str, bytes]]:
    """The headers of `record`'s copy on the DLQ: why, where from, who gave up, then its own."""
    return [
        (HEADER_REASON, reason.encode()),
        (HEADER_ERROR, error.encode()),
        (HEADER_ORIGINAL_TOPIC, record.topic.encode()),
        (HEADER_ORIGINAL_PARTITION, str(record.partition).encode()),
        (HEADER_ORIGINAL_OFFSET, str(record.offset).encode()),
        (HEADER_CONSUMER, consumer.encode()),
        *record.headers,
    ]


class DeadLetters:
    """Sends records to their topic's DLQ on behalf of a consumer (its producer started on first use)."""

    def __init__(self, settings: ServiceSettings, consumer: str) -> None:
        self.settings = settings
        self.consumer = consumer
        self._producer: AIOKafkaProducer | None = None

    async def send(self, record: Record, reason: str, error: str) -> None:
        """The original key, value and headers to `<topic>.dlq`, with why; returns once acknowledged."""
        if self._producer is None:
            self._producer = await start_producer(self.settings, f"{self.consumer}-dlq")
        headers = dead_letter_headers(record, reason, error, self.consumer)
        await (await self._producer.send(dlq_topic(record.topic), value=record.value, key=record.key,
                                         headers=headers))  # fmt: skip
        log.error("%s: %s:%d@%d sent to %s: %s", self.consumer, record.topic, record.partition,
                  record.offset, dlq_topic(record.topic), reason)  # fmt: skip

    async def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                await producer.stop()
            except Exception as exc:
                log.debug("%s: closing the dead-letter producer: %r", self.consumer, exc)


def _short(exc: ValidationError) -> str:
    parts = [f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors()[:5]]
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


__all__ = [
    "MAX_RETRIES",
    "Action",
    "DeadLetterReason",
    "DeadLetters",
    "UnreadableEvent",
    "Verdict",
    "dead_letter_headers",
    "handler_failed",
    "judge",
    "read_event",
]
