"""The event-sourced aggregate: one invitation to apply and the application made under it.

States::

    open ──► declined | expired | applied
    applied ──► withdrawn | refused | approved
    approved ──► copr_issued ──► landed | copr_expired

Every command checks the current state and raises a domain error when the transition is not allowed;
state only changes by applying events, so replaying a stream rebuilds the same aggregate. Time is
passed in (`now`), never read, so the rules can be tested at any instant.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Final, Literal

from applications_service.domain.calendar import start_of_day, utc_date
from applications_service.domain.documents import Documents, copr_expiry
from applications_service.domain.errors import (
    CoprCannotBeExtended,
    CoprExpiredError,
    DeadlinePassed,
    InvalidCommand,
    TransitionNotAllowed,
)
from applications_service.domain.events import (
    ApplicationDocumentsRecorded,
    ApplicationWithdrawn,
    Approved,
    CoprExpired,
    CoprExpiringSoon,
    CoprIssued,
    InvitationDeadlineApproaching,
    Landed,
    PermanentResidentVisaIssued,
    Refused,
)
from applications_service.domain.visa import needs_permanent_resident_visa
from shared.domain_events import Applied, DomainEvent, InvitationDeclined, InvitationExpired, Invited

DEADLINE_REMINDER_DAYS: Final[tuple[int, ...]] = (14, 3)
COPR_REMINDER_DAYS: Final[tuple[int, ...]] = (60, 14)
_INSTANT: Final = timedelta(microseconds=1)

Decision = Literal["approved", "refused"]


class State(StrEnum):
    OPEN = "open"
    DECLINED = "declined"
    EXPIRED = "expired"
    APPLIED = "applied"
    WITHDRAWN = "withdrawn"
    APPROVED = "approved"
    REFUSED = "refused"
    COPR_ISSUED = "copr_issued"
    LANDED = "landed"
    COPR_EXPIRED = "copr_expired"


DECIDED_STATES: Final = frozenset(
    {State.APPROVED, State.REFUSED, State.COPR_ISSUED, State.LANDED, State.COPR_EXPIRED}
)


def due_reminders(thresholds: Iterable[int], sent: set[int], days_left: float) -> list[int]:
    """The reminders to send now, the earliest threshold first: each one whose time has come and that
    was not sent yet, also when its time passed while the service was down (each is sent once, late
    rather than never). A threshold below one already sent is not sent (streams written when an
    overtaken reminder was skipped stay as they are).
    """
    return sorted((d for d in _pending_thresholds(thresholds, sent) if days_left <= d), reverse=True)


def _pending_thresholds(thresholds: Iterable[int], sent: set[int]) -> list[int]:
    return [days for days in thresholds if not any(s <= days for s in sent)]


@dataclass
class Invitation:
    """One invitation and its application, rebuilt from its events."""

    invited: Invited
    state: State = State.OPEN
    version: int = 0
    application_id: str | None = None
    documents: Documents | None = None
    minimum_funds_cad: int | None = None
    applied_at: datetime | None = None
    decided_at: datetime | None = None
    reasons: list[str] = field(default_factory=list)
    closed_at: datetime | None = None  # declined, expired, withdrawn or landed
    copr_number: str | None = None
    copr_expires_on: date | None = None
    visa_issued: bool = False
    deadline_reminders: set[int] = field(default_factory=set)
    copr_reminders: set[int] = field(default_factory=set)
    pending: list[DomainEvent] = field(default_factory=list)

    # --- construction -----------------------------------------------------------------------------

    @classmethod
    def receive(cls, invited: Invited) -> Invitation:
        """A new aggregate from the draws service's Invited event (its stream's first event)."""
        invitation = cls(invited=invited)
        invitation.version = 1
        invitation.pending.append(invited)
        return invitation

    @classmethod
    def replay(cls, events: Iterable[DomainEvent]) -> Invitation:
        iterator = iter(events)
        first = next(iterator, None)
        if not isinstance(first, Invited):
            raise ValueError("an invitation's stream starts with Invited")
        invitation = cls(invited=first, version=1)
        for event in iterator:
            invitation._apply(event)
        return invitation

    # --- identity ---------------------------------------------------------------------------------

    @property
    def invitation_id(self) -> str:
        return self.invited.invitation_id

    @property
    def profile_id(self) -> str:
        return self.invited.profile_id

    @property
    def owner(self) -> str:
        return self.invited.owner

    @property
    def program(self) -> str:
        return self.invited.program

    @property
    def deadline(self) -> datetime:
        return self.invited.deadline

    def _ids(self) -> dict[str, str]:
        return {"profile_id": self.profile_id, "owner": self.owner, "invitation_id": self.invitation_id}

    # --- commands -----------------------------------------------------------------------------------

    def decline(self, now: datetime) -> None:
        self._require_open_until_deadline("decline", now)
        self._record(InvitationDeclined(**self._ids(), declined_at=now))

    def check_can_apply(self, now: datetime) -> None:
        """Raise as `apply` would for the state and the deadline (checked before the documents)."""
        self._require_open_until_deadline("apply", now)

    def apply(
        self, application_id: str, documents: Documents, minimum_funds_cad: int | None, now: datetime
    ) -> None:
        """Submit the application; on time when `now` is at or before the deadline."""
        self._require_open_until_deadline("apply", now)
        self._record(
            ApplicationDocumentsRecorded(
                **self._ids(),
                application_id=application_id,
                passport_number=documents.passport_number,
                passport_country=documents.passport_country,
                passport_expiry=documents.passport_expiry,
                medical_exam_date=documents.medical_exam_date,
                police_certificates=documents.police_certificates,
                proof_of_funds_cad=documents.proof_of_funds_cad,
                minimum_funds_cad=minimum_funds_cad,
                recorded_at=now,
            )
        )
        self._record(
            Applied(**self._ids(), application_id=application_id, program=self.program, applied_at=now)
        )

    def withdraw(self, now: datetime) -> None:
        self._require("withdraw", State.APPLIED)
        self._record(
            ApplicationWithdrawn(**self._ids(), application_id=self._application_id(), withdrawn_at=now)
        )

    def decide(self, decision: Decision, reasons: list[str], now: datetime) -> None:
        """An officer's decision. Approval issues the COPR and, for citizens of a visa-required country
        (the citizenship on the invitation), a permanent resident visa valid as long as the COPR."""
        self._require("decide", State.APPLIED)
        if decision == "refused":
            if not [r for r in reasons if r.strip()]:
                raise InvalidCommand("A refusal must give at least one reason the applicant can read.")
            self._record(
                Refused(**self._ids(), application_id=self._application_id(), decided_at=now, reasons=reasons)
            )
            return
        expires_on = self._copr_expiry_for_approval(now)
        application_id = self._application_id()
        self._record(Approved(**self._ids(), application_id=application_id, decided_at=now, reasons=reasons))
        self._record(
            CoprIssued(
                **self._ids(),
                application_id=application_id,
                copr_number=copr_number_for(application_id),
                issued_at=now,
                expires_on=expires_on,
            )
        )
        country = self.invited.citizenship  # the profile's citizenship, as the draw recorded it
        if needs_permanent_resident_visa(country):
            self._record(
                PermanentResidentVisaIssued(
                    **self._ids(),
                    application_id=application_id,
                    citizenship=country,
                    issued_at=now,
                    expires_on=expires_on,
                )
            )

    def land(self, now: datetime) -> None:
        """Landing, on or before the COPR's expiry date."""
        self._require("land", State.COPR_ISSUED)
        assert self.copr_expires_on is not None
        if utc_date(now) > self.copr_expires_on:
            raise CoprExpiredError(
                "land",
                self.state,
                (
                    f"The COPR expired on {self.copr_expires_on} and cannot be extended; the person "
                    "must apply for permanent residence again."
                ),
            )
        self._record(Landed(**self._ids(), application_id=self._application_id(), landed_at=now))

    def extend_copr(self) -> None:
        """Always refused: a COPR can never be extended (crs-rules.md §7)."""
        if self.copr_expires_on is None:
            detail = (
                f"There is no COPR to extend ({self._describe_state()}); and a COPR, once issued, "
                "can never be extended."
            )
        else:
            detail = (
                f"A COPR cannot be extended. This one expires on {self.copr_expires_on}: land in Canada "
                "on or before that date. Once it has expired, the person must apply for permanent "
                "residence again."
            )
        raise CoprCannotBeExtended("extend_copr", self.state, detail)

    def tick(self, now: datetime) -> list[DomainEvent]:
        """What the clock makes happen at `now`: expiries and reminders. Never raises."""
        before = len(self.pending)
        if self.state is State.OPEN:
            self._tick_invitation(now)
        elif self.state is State.COPR_ISSUED:
            self._tick_copr(now)
        return self.pending[before:]

    # --- scheduling -------------------------------------------------------------------------------

    def next_due_at(self) -> datetime | None:
        """The earliest instant at which `tick` would do something, or None when nothing is left."""
        if self.state is State.OPEN:
            reminders = _pending_thresholds(DEADLINE_REMINDER_DAYS, self.deadline_reminders)
            return min([self.deadline - timedelta(days=d) for d in reminders] + [self.deadline + _INSTANT])
        if self.state is State.COPR_ISSUED:
            assert self.copr_expires_on is not None
            reminders = _pending_thresholds(COPR_REMINDER_DAYS, self.copr_reminders)
            days = [self.copr_expires_on - timedelta(days=d) for d in reminders]
            return start_of_day(min([*days, self.copr_expires_on + timedelta(days=1)]))
        return None

    def _tick_invitation(self, now: datetime) -> None:
        if now > self.deadline:
            self._record(InvitationExpired(**self._ids(), expired_at=now))
            return
        days_left = (self.deadline - now) / timedelta(days=1)
        for days in due_reminders(DEADLINE_REMINDER_DAYS, self.deadline_reminders, days_left):
            self._record(
                InvitationDeadlineApproaching(**self._ids(), deadline=self.deadline, days_before=days)
            )

    def _tick_copr(self, now: datetime) -> None:
        assert self.copr_expires_on is not None
        today = utc_date(now)
        application_id = self._application_id()
        if today > self.copr_expires_on:
            self._record(
                CoprExpired(**self._ids(), application_id=application_id, expired_on=self.copr_expires_on)
            )
            return
        days_left = (self.copr_expires_on - today).days
        for days in due_reminders(COPR_REMINDER_DAYS, self.copr_reminders, days_left):
            self._record(
                CoprExpiringSoon(
                    **self._ids(),
                    application_id=application_id,
                    expires_on=self.copr_expires_on,
                    days_before=days,
                )
            )

    # --- guards -------------------------------------------------------------------------------------

    def _require(self, action: str, expected: State) -> None:
        if self.state is not expected:
            raise TransitionNotAllowed(
                action, self.state, f"Cannot {_VERBS[action]}: {self._describe_state()}."
            )

    def _require_open_until_deadline(self, action: str, now: datetime) -> None:
        self._require(action, State.OPEN)
        if now > self.deadline:
            raise DeadlinePassed(
                action,
                self.state,
                (
                    f"Cannot {_VERBS[action]}: the deadline was {self.deadline.isoformat()} (an "
                    "application is on time up to and including that instant) and it is now "
                    f"{now.isoformat()}. The invitation has expired; the candidate must create a new "
                    "profile to be invited again."
                ),
            )

    def _copr_expiry_for_approval(self, now: datetime) -> date:
        documents = self._documents()
        expires_on = copr_expiry(documents.medical_exam_date, documents.passport_expiry)
        if expires_on <= utc_date(now):
            raise TransitionNotAllowed(
                "decide",
                self.state,
                (
                    f"Cannot approve: the COPR would expire on {expires_on}, not after today (medical "
                    f"exam of {documents.medical_exam_date}, passport expiring "
                    f"{documents.passport_expiry}). The applicant needs a new medical exam or passport; "
                    "refuse with that reason."
                ),
            )
        return expires_on

    def _application_id(self) -> str:
        assert self.application_id is not None
        return self.application_id

    def _documents(self) -> Documents:
        assert self.documents is not None
        return self.documents

    def _describe_state(self) -> str:
        on = (self.closed_at or self.decided_at or self.applied_at or self.invited.invited_at).date()
        descriptions = {
            State.OPEN: "the invitation is open and no application has been submitted",
            State.DECLINED: f"the invitation was declined on {on}",
            State.EXPIRED: f"the invitation expired on {on}, its deadline having passed",
            State.APPLIED: f"an application was submitted on {on} and awaits a decision",
            State.WITHDRAWN: f"the application was withdrawn on {on}",
            State.APPROVED: f"the application was approved on {on}",
            State.REFUSED: f"the application was refused on {on}",
            State.COPR_ISSUED: (
                f"the application was approved on {on} and a COPR issued, valid until {self.copr_expires_on}"
            ),
            State.LANDED: f"the person landed on {on} and is a permanent resident",
            State.COPR_EXPIRED: (
                f"the COPR expired on {self.copr_expires_on}; it cannot be extended and the "
                "person must apply again"
            ),
        }
        return descriptions[self.state]

    # --- events -------------------------------------------------------------------------------------

    def _record(self, event: DomainEvent) -> None:
        self._apply(event)
        self.pending.append(event)

    def _apply(self, event: DomainEvent) -> None:
        handler = getattr(self, f"_on_{type(event).__name__}", None)
        if handler is None:
            raise ValueError(f"an invitation's stream cannot hold {type(event).__name__}")
        handler(event)
        self.version += 1

    def _on_InvitationDeclined(self, event: InvitationDeclined) -> None:
        self.state, self.closed_at = State.DECLINED, event.declined_at

    def _on_InvitationExpired(self, event: InvitationExpired) -> None:
        self.state, self.closed_at = State.EXPIRED, event.expired_at

    def _on_InvitationDeadlineApproaching(self, event: InvitationDeadlineApproaching) -> None:
        self.deadline_reminders.add(event.days_before)

    def _on_ApplicationDocumentsRecorded(self, event: ApplicationDocumentsRecorded) -> None:
        self.documents = Documents(
            passport_number=event.passport_number,
            passport_country=event.passport_country,
            passport_expiry=event.passport_expiry,
            medical_exam_date=event.medical_exam_date,
            police_certificates=event.police_certificates,
            proof_of_funds_cad=event.proof_of_funds_cad,
        )
        self.minimum_funds_cad = event.minimum_funds_cad

    def _on_Applied(self, event: Applied) -> None:
        self.state, self.application_id, self.applied_at = (
            State.APPLIED,
            event.application_id,
            event.applied_at,
        )

    def _on_ApplicationWithdrawn(self, event: ApplicationWithdrawn) -> None:
        self.state, self.closed_at = State.WITHDRAWN, event.withdrawn_at

    def _on_Approved(self, event: Approved) -> None:
        self.state, self.decided_at, self.reasons = State.APPROVED, event.decided_at, list(event.reasons)

    def _on_Refused(self, event: Refused) -> None:
        self.state, self.decided_at, self.reasons = State.REFUSED, event.decided_at, list(event.reasons)

    def _on_CoprIssued(self, event: CoprIssued) -> None:
        self.state, self.copr_number, self.copr_expires_on = (
            State.COPR_ISSUED,
            event.copr_number,
            event.expires_on,
        )

    def _on_PermanentResidentVisaIssued(self, event: PermanentResidentVisaIssued) -> None:
        self.visa_issued = True

    def _on_CoprExpiringSoon(self, event: CoprExpiringSoon) -> None:
        self.copr_reminders.add(event.days_before)

    def _on_CoprExpired(self, event: CoprExpired) -> None:
        self.state = State.COPR_EXPIRED

    def _on_Landed(self, event: Landed) -> None:
        self.state, self.closed_at = State.LANDED, event.landed_at


_VERBS: Final[dict[str, str]] = {
    "decline": "decline the invitation",
    "apply": "apply under this invitation",
    "withdraw": "withdraw the application",
    "decide": "decide on the application",
    "land": "record a landing",
}


def copr_number_for(application_id: str) -> str:
    """A COPR number derived from the application, so a replay issues the same one."""
    return "COPR-" + application_id.replace("-", "")[:12].upper()
