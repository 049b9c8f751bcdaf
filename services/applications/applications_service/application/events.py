"""The domain events to and from the wire models, the one place the service translates: those of the
invitation stream and the profile facts the service receives. The internal event's wire model is
here too: it is stored, never published."""

from __future__ import annotations

from datetime import date, datetime
from typing import Final

from applications_service.domain.events import STREAM_EVENTS
from shared.domain_events import PersonalDataErased, ProfileSubmitted, ProfileUpdated
from shared.events.catalogue import CATALOGUE, ApplicationsEvent
from shared.events.mapping import EventMapper
from shared.events.registry import EventRegistry


class ApplicationDocumentsRecorded(ApplicationsEvent):
    """Internal to the service (event store only): the checked documents of an application."""

    application_id: str
    passport_number: str
    passport_country: str
    passport_expiry: date
    medical_exam_date: date
    police_certificates: bool
    proof_of_funds_cad: int | None
    minimum_funds_cad: int | None
    recorded_at: datetime


STREAM_REGISTRY: Final = EventRegistry((*CATALOGUE, ApplicationDocumentsRecorded))
"""Reads every event an invitation stream may hold, the internal one included."""

EVENTS: Final = EventMapper(
    (*STREAM_EVENTS, ProfileUpdated, ProfileSubmitted, PersonalDataErased), STREAM_REGISTRY
)
