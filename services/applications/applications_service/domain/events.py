"""The events of an invitation's stream.

The stream opens with the Invited event the draws service published, followed by this service's own
catalogue events (published through the outbox) and one internal event, ApplicationDocumentsRecorded,
which stays in the event store: passport numbers never travel on Kafka.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Final

from shared.events.catalogue import (
    ApplicationsEvent,
    ApplicationWithdrawn,
    Applied,
    Approved,
    CoprExpired,
    CoprExpiringSoon,
    CoprIssued,
    Event,
    InvitationDeadlineApproaching,
    InvitationDeclined,
    InvitationExpired,
    Invited,
    Landed,
    PermanentResidentVisaIssued,
    Refused,
)


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


INTERNAL_EVENTS: Final[tuple[type[Event], ...]] = (ApplicationDocumentsRecorded,)
STREAM_EVENTS: Final[tuple[type[Event], ...]] = (
    Invited,
    InvitationDeclined,
    InvitationExpired,
    InvitationDeadlineApproaching,
    ApplicationDocumentsRecorded,
    Applied,
    ApplicationWithdrawn,
    Approved,
    Refused,
    CoprIssued,
    PermanentResidentVisaIssued,
    CoprExpiringSoon,
    CoprExpired,
    Landed,
)


def is_published(event: Event) -> bool:
    """Our own catalogue events go to Kafka; Invited (received) and internal events do not."""
    return event.producer == "applications" and not isinstance(event, INTERNAL_EVENTS)
