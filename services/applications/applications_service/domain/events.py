"""The events of an invitation's stream (domain events, never the wire models).

The stream opens with the Invited event the draws service published, followed by this service's own
events (published through the outbox) and one internal event, ApplicationDocumentsRecorded, which
stays in the event store: passport numbers never travel on Kafka. Invited and the outcomes other
services apply (InvitationDeclined, InvitationExpired, Applied) are `shared.domain_events`; the others
are this service's alone, here. Each has the name and fields of its catalogue event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Final

from shared.domain_events import (
    Applied,
    DomainEvent,
    InvitationDeclined,
    InvitationExpired,
    InvitationFact,
    Invited,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class InvitationDeadlineApproaching(InvitationFact):
    deadline: datetime
    days_before: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplicationFact(InvitationFact):
    """A fact about the application made under one invitation."""

    application_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplicationDocumentsRecorded(ApplicationFact):
    """Internal to the service (event store only): the checked documents of an application."""

    passport_number: str
    passport_country: str
    passport_expiry: date
    medical_exam_date: date
    police_certificates: bool
    proof_of_funds_cad: int | None
    minimum_funds_cad: int | None
    recorded_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplicationWithdrawn(ApplicationFact):
    withdrawn_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Approved(ApplicationFact):
    decided_at: datetime
    reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class Refused(ApplicationFact):
    decided_at: datetime
    reasons: list[str]


@dataclass(frozen=True, slots=True, kw_only=True)
class CoprIssued(ApplicationFact):
    copr_number: str
    issued_at: datetime
    expires_on: date


@dataclass(frozen=True, slots=True, kw_only=True)
class PermanentResidentVisaIssued(ApplicationFact):
    citizenship: str
    issued_at: datetime
    expires_on: date


@dataclass(frozen=True, slots=True, kw_only=True)
class CoprExpiringSoon(ApplicationFact):
    expires_on: date
    days_before: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CoprExpired(ApplicationFact):
    expired_on: date


@dataclass(frozen=True, slots=True, kw_only=True)
class Landed(ApplicationFact):
    landed_at: datetime


INTERNAL_EVENTS: Final[tuple[type[DomainEvent], ...]] = (ApplicationDocumentsRecorded,)
RECEIVED_EVENTS: Final[tuple[type[DomainEvent], ...]] = (Invited,)
STREAM_EVENTS: Final[tuple[type[DomainEvent], ...]] = (
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


def is_published(event: DomainEvent) -> bool:
    """Our own events go to Kafka; Invited (received) and internal events do not."""
    return not isinstance(event, RECEIVED_EVENTS + INTERNAL_EVENTS)
