"""Profile documents, catalogue events and envelopes for the ranking tests."""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.envelope import Envelope
from shared.events.catalogue import (
    Applied,
    Event,
    InvitationDeclined,
    InvitationExpired,
    Invited,
    NominationIssued,
    NominationWithdrawn,
    PersonalDataErased,
    ProfileCreated,
    ProfileExpired,
    ProfileRemovedFromPool,
    ProfileSubmitted,
    ProfileUpdated,
    ProfileWithdrawn,
)
from shared.messages import envelope_for
from shared.rules.document import PROFILE_DOCUMENT_EXAMPLE

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
OWNER = "partner-1"

# CRS on 2026-06-01 under the 2025-03-25 rules of the example document with these dates of birth.
DOB_432 = "1997-06-01"  # age 29
DOB_416 = "1994-03-14"  # age 32 (the example)
DOB_394 = "1990-01-01"  # age 36
DOB_INELIGIBLE = "1985-05-05"  # age 41: below the FSW 67-point grid, eligible for nothing
DOB_TURNS_30 = "1996-06-02"  # 432 on 2026-06-01, less the next day


def pid(n: int) -> str:
    """A canonical lowercase UUID; pid(1) < pid(2) < ... as strings."""
    return str(uuid.UUID(int=n))


def document(dob: str = DOB_416, **changes: Any) -> dict[str, Any]:
    doc = copy.deepcopy(PROFILE_DOCUMENT_EXAMPLE)
    doc["date_of_birth"] = dob
    doc.update(changes)
    return doc


SENIOR_MANAGER_OFFER: dict[str, Any] = {
    "noc_code": "00012",
    "teer": 0,
    "employer": "Acme Ltd",
    "full_time": True,
    "non_seasonal": True,
    "duration_months": None,
    "lmia_or_exempt": True,
    "canadian_armed_forces": False,
}
"""Worth 200 points under the 2020-10-27 rules, nothing under 2025-03-25."""


@dataclass
class ProfileStream:
    """The events of one profile's stream, with their aggregate versions."""

    profile_id: str
    owner: str = OWNER
    version: int = 0
    submitted_at: datetime | None = None
    expires_at: datetime | None = None
    events: list[tuple[Event, int]] = field(default_factory=list)

    def _add(self, event: Event) -> tuple[Event, int]:
        self.version += 1
        self.events.append((event, self.version))
        return event, self.version

    def _ids(self) -> dict[str, str]:
        return {"profile_id": self.profile_id, "owner": self.owner}

    def created(
        self, doc: dict[str, Any], at: datetime = NOW, sealed: str | None = None
    ) -> tuple[Event, int]:
        return self._add(ProfileCreated(**self._ids(), document=doc, created_at=at, sealed=sealed))

    def submitted(
        self, doc: dict[str, Any], at: datetime = NOW, sealed: str | None = None
    ) -> tuple[Event, int]:
        self.submitted_at = self.submitted_at or at
        self.expires_at = self.submitted_at + timedelta(days=365)
        return self._add(
            ProfileSubmitted(
                **self._ids(), document=doc, eligible_programs=["fsw"], submitted_at=self.submitted_at,
                expires_at=self.expires_at, sealed=sealed,
            )
        )  # fmt: skip

    def updated(self, doc: dict[str, Any], status: str = "in_pool", at: datetime = NOW) -> tuple[Event, int]:
        return self._add(
            ProfileUpdated(
                **self._ids(), document=doc, status=status, eligible_programs=["fsw"],
                submitted_at=self.submitted_at, expires_at=self.expires_at, updated_at=at,
            )
        )  # fmt: skip

    def removed(self, at: datetime = NOW) -> tuple[Event, int]:
        return self._add(ProfileRemovedFromPool(**self._ids(), reasons=["no program"], removed_at=at))

    def withdrawn(self, at: datetime = NOW) -> tuple[Event, int]:
        return self._add(ProfileWithdrawn(**self._ids(), withdrawn_at=at))

    def erased(self, at: datetime = NOW) -> tuple[Event, int]:
        return self._add(PersonalDataErased(**self._ids(), reason="withdrawn", erased_at=at))

    def expired(self, at: datetime = NOW) -> tuple[Event, int]:
        return self._add(ProfileExpired(**self._ids(), expired_at=at))

    def nominated(self, province: str = "ON", at: datetime = NOW) -> tuple[Event, int]:
        return self._add(NominationIssued(**self._ids(), province=province, nominated_at=at))

    def nomination_withdrawn(self, province: str = "ON", at: datetime = NOW) -> tuple[Event, int]:
        return self._add(NominationWithdrawn(**self._ids(), province=province, withdrawn_at=at))


def invited(profile_id: str, invitation_id: str, at: datetime = NOW, owner: str = OWNER) -> Invited:
    return Invited(
        profile_id=profile_id, owner=owner, invitation_id=invitation_id, round_id="round-1", round_number=1,
        program="fsw", crs=450, citizenship="IN", invited_at=at, deadline=at + timedelta(days=60),
    )  # fmt: skip


def declined(
    profile_id: str, invitation_id: str, at: datetime = NOW, owner: str = OWNER
) -> InvitationDeclined:
    return InvitationDeclined(profile_id=profile_id, owner=owner, invitation_id=invitation_id, declined_at=at)


def invitation_expired(
    profile_id: str, invitation_id: str, at: datetime = NOW, owner: str = OWNER
) -> InvitationExpired:
    return InvitationExpired(profile_id=profile_id, owner=owner, invitation_id=invitation_id, expired_at=at)


def applied(profile_id: str, invitation_id: str, at: datetime = NOW, owner: str = OWNER) -> Applied:
    return Applied(
        profile_id=profile_id, owner=owner, invitation_id=invitation_id, application_id="app-1",
        program="fsw", applied_at=at,
    )  # fmt: skip


def envelope(event: Event, version: int | None = None, at: datetime = NOW) -> Envelope:
    """The event's CloudEvent, stamped like its producer would (profile events with their version)."""
    return envelope_for(
        event,
        source=f"ee/{event.producer}",
        time=at,
        aggregate_id=event.key() if version is not None else None,
        aggregate_version=version,
    )
