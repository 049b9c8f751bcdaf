"""From a catalogue event to the envelope and Kafka record that carry it, and the DLQ headers."""

from __future__ import annotations

from datetime import datetime

from shared.envelope import Envelope, new_event_id, schema_uri
from shared.events.catalogue import Event
from shared.kafka_admin import DLQ_SUFFIX, dlq_topic

__all__ = [
    "DLQ_SUFFIX",
    "HEADER_CONSUMER",
    "HEADER_ERROR",
    "HEADER_ORIGINAL_OFFSET",
    "HEADER_ORIGINAL_PARTITION",
    "HEADER_ORIGINAL_TOPIC",
    "HEADER_REASON",
    "dlq_topic",
    "envelope_for",
]

# Headers of a dead-lettered record (values are UTF-8 bytes). The original key, value and headers are
# kept as they were, after these.
HEADER_REASON = "reason"  # a sentence: why the record could not be applied
HEADER_ERROR = "error"  # the exception class, e.g. "EnvelopeError"
HEADER_ORIGINAL_TOPIC = "original_topic"
HEADER_ORIGINAL_PARTITION = "original_partition"
HEADER_ORIGINAL_OFFSET = "original_offset"
HEADER_CONSUMER = "consumer"  # the consumer that gave up on it


def envelope_for(
    event: Event,
    *,
    source: str,
    time: datetime,
    aggregate_id: str | None = None,
    aggregate_version: int | None = None,
    correlation_id: str | None = None,
    causation_id: str | None = None,
    event_id: str | None = None,
) -> Envelope:
    """The CloudEvent for `event`: a new id, the event's type and schema, `subject` = its Kafka key.

    `source` is `ee/<service>`; `time` comes from the service clock (business time), never from the
    machine, so moving the clock in a test moves event times too.
    """
    if time.tzinfo is None:
        raise ValueError("event time must be timezone-aware UTC")
    event_type = event.event_type()
    return Envelope(
        id=event_id or new_event_id(),
        source=source,
        type=event_type,
        time=time,
        data=event.model_dump(mode="json"),
        subject=event.key(),
        aggregateid=aggregate_id,
        aggregateversion=aggregate_version,
        correlationid=correlation_id,
        causationid=causation_id,
        dataschema=schema_uri(event_type),
    )
