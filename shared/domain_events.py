"""The facts more than one service's domain applies, as plain frozen dataclasses.

A domain emits and applies these (or its own, in its `domain/events.py`), never the wire models of
`shared.events.catalogue`: `shared.events.mapping.EventMapper` translates between the two, by class
name and field, at the one place per service where events are stored, published or received. Each
class here has the name and the fields of its catalogue event (a test holds them equal).

An event lives in the domain of the only service whose domain uses it; one that several domains apply
(the profile's facts: profile and ranking; the invitation's: profile, ranking and applications) lives
here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class DomainEvent:
    """Base of every domain event (no fields: the subclasses name theirs)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CandidateFact(DomainEvent):
    profile_id: str
    owner: str


# --- the profile's ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ProfileFact(CandidateFact):
    """A fact of the profile service about one profile."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ProfileCreated(ProfileFact):
    document: dict[str, Any]
    created_at: datetime
    sealed: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ProfileUpdated(ProfileFact):
    document: dict[str, Any]
    status: str
    eligible_programs: list[str]
    submitted_at: datetime | None = None
    expires_at: datetime | None = None
    updated_at: datetime
    sealed: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ProfileSubmitted(ProfileFact):
    document: dict[str, Any]
    eligible_programs: list[str]
    submitted_at: datetime
    expires_at: datetime
    sealed: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ProfileRemovedFromPool(ProfileFact):
    reasons: list[str]
    removed_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ProfileWithdrawn(ProfileFact):
    withdrawn_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ProfileExpired(ProfileFact):
    expired_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class PersonalDataErased(ProfileFact):
    reason: str
    erased_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class NominationIssued(ProfileFact):
    province: str
    nominated_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class NominationWithdrawn(ProfileFact):
    province: str
    withdrawn_at: datetime


PROFILE_FACTS: tuple[type[ProfileFact], ...] = (
    ProfileCreated, ProfileUpdated, ProfileSubmitted, ProfileRemovedFromPool, ProfileWithdrawn,
    ProfileExpired, NominationIssued, NominationWithdrawn, PersonalDataErased,
)  # fmt: skip


# --- the invitation's (draws opens it, applications closes it) ------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class InvitationFact(CandidateFact):
    """A fact about one invitation of one profile."""

    invitation_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Invited(InvitationFact):
    round_id: str
    round_number: int
    program: str
    crs: int
    citizenship: str
    invited_at: datetime
    deadline: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class InvitationDeclined(InvitationFact):
    declined_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class InvitationExpired(InvitationFact):
    expired_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Applied(InvitationFact):
    application_id: str
    program: str
    applied_at: datetime


INVITATION_FACTS: tuple[type[InvitationFact], ...] = (Invited, InvitationDeclined, InvitationExpired, Applied)
