"""The event-sourced Profile aggregate: its state is its event stream.

Statuses::

    draft ──submit──► in_pool ──► removed_from_pool (ineligible; may be submitted again)
                        │    ──► withdrawn | expired            (for good)
                        └─Invited─► invited ──declined──► in_pool (or expired / removed_from_pool)
                                       │    ──expired──► invitation_expired (left the pool for good)
                                       └────applied──► applied (locked for good)

`submitted_at` is set by the first submission and never changes; `expires_at` is 12 months later.
Every command checks the status and raises a domain error when it is not allowed; state changes only
by applying events, so replaying a stream rebuilds the same aggregate. Time is passed in, never read.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final

from profile_service.domain import rules
from profile_service.domain.errors import (
    NominationConflict,
    NominationNotFound,
    NotEligible,
    ProfileLocked,
    TransitionNotAllowed,
)
from shared.domain_events import (
    Applied,
    DomainEvent,
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
from shared.personal import redact
from shared.rules.eligibility import ProgramAssessment

SETS_PROGRAMS: Final = (ProfileUpdated, ProfileSubmitted, ProfileRemovedFromPool)
"""Events that set `eligible_programs` outright, whatever the profile held before."""


class Status(StrEnum):
    DRAFT = "draft"
    IN_POOL = "in_pool"
    REMOVED_FROM_POOL = "removed_from_pool"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"
    INVITED = "invited"
    APPLIED = "applied"
    INVITATION_EXPIRED = "invitation_expired"


LOCKED: Final = frozenset({Status.INVITED, Status.APPLIED})
CLOSED: Final = frozenset({Status.WITHDRAWN, Status.EXPIRED, Status.INVITATION_EXPIRED})
SUBMITTABLE: Final = frozenset({Status.DRAFT, Status.REMOVED_FROM_POOL})
EXPIRING: Final = frozenset({Status.IN_POOL, Status.REMOVED_FROM_POOL})
"""Statuses in which the 12 months run out (an open invitation or an application holds the clock)."""


@dataclass(frozen=True, slots=True)
class Nomination:
    province: str
    nominated_at: datetime


@dataclass
class Profile:
    """One candidate profile, rebuilt from its events."""

    profile_id: str
    owner: str
    document: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    status: Status = Status.DRAFT
    version: int = 0
    eligible_programs: list[str] = field(default_factory=list)
    submitted_at: datetime | None = None
    expires_at: datetime | None = None
    invitation_id: str | None = None
    nomination: Nomination | None = None
    removal_reasons: list[str] = field(default_factory=list)
    closed_at: datetime | None = None
    """When it left for good (withdrawn, expired, invitation expired): erasure counts from here."""
    ever_invited: bool = False
    erased_at: datetime | None = None
    """Personal data erased (docs/PRIVACY.md): the document is redacted and nothing can change it."""
    pending: list[DomainEvent] = field(default_factory=list)

    # --- construction -----------------------------------------------------------------------------

    @classmethod
    def create(cls, profile_id: str, owner: str, document: dict[str, Any], now: datetime) -> Profile:
        """A new draft. The document must already be valid (pydantic and `validate_document`)."""
        profile = cls(profile_id, owner, document, created_at=now, updated_at=now)
        profile._record(ProfileCreated(profile_id=profile_id, owner=owner, document=document, created_at=now))
        return profile

    @classmethod
    def replay(cls, events: Iterable[DomainEvent]) -> Profile:
        iterator = iter(events)
        first = next(iterator, None)
        if not isinstance(first, ProfileCreated):
            raise ValueError("a profile's stream starts with ProfileCreated")
        rest = list(iterator)
        profile = cls(first.profile_id, first.owner, first.document, first.created_at, first.created_at)
        # A later event in the stream sets the programs: the draft's derivation would be thrown away,
        # and it is a whole eligibility assessment on every load of a profile younger than a snapshot.
        profile._apply_created(first, derive=not any(isinstance(e, SETS_PROGRAMS) for e in rest))
        profile.version = 1
        for event in rest:
            profile._apply(event)
            profile.version += 1
        return profile

    def snapshot(self) -> dict[str, Any]:
        """The state as JSON-ready data (`restore` reads it back); the events are the truth, this is
        a shortcut past them."""
        nomination = self.nomination
        return {
            "profile_id": self.profile_id,
            "owner": self.owner,
            "document": self.document,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "status": self.status.value,
            "version": self.version,
            "eligible_programs": list(self.eligible_programs),
            "submitted_at": _iso(self.submitted_at),
            "expires_at": _iso(self.expires_at),
            "invitation_id": self.invitation_id,
            "nomination": None
            if nomination is None
            else {
                "province": nomination.province,
                "nominated_at": nomination.nominated_at.isoformat(),
            },
            "removal_reasons": list(self.removal_reasons),
            "closed_at": _iso(self.closed_at),
            "ever_invited": self.ever_invited,
            "erased_at": _iso(self.erased_at),
        }

    @classmethod
    def restore(cls, state: dict[str, Any], events: Iterable[DomainEvent] = ()) -> Profile:
        """The profile of `snapshot()`'s state, with the `events` after it applied."""
        nomination = state["nomination"]
        profile = cls(
            profile_id=state["profile_id"],
            owner=state["owner"],
            document=state["document"],
            created_at=datetime.fromisoformat(state["created_at"]),
            updated_at=datetime.fromisoformat(state["updated_at"]),
            status=Status(state["status"]),
            version=int(state["version"]),
            eligible_programs=list(state["eligible_programs"]),
            submitted_at=_from_iso(state["submitted_at"]),
            expires_at=_from_iso(state["expires_at"]),
            invitation_id=state["invitation_id"],
            nomination=None
            if nomination is None
            else Nomination(nomination["province"], datetime.fromisoformat(nomination["nominated_at"])),
            removal_reasons=list(state["removal_reasons"]),
            closed_at=_from_iso(state["closed_at"]),
            ever_invited=bool(state["ever_invited"]),
            erased_at=_from_iso(state["erased_at"]),
        )
        for event in events:
            profile._apply(event)
            profile.version += 1
        return profile

    # --- queries ----------------------------------------------------------------------------------

    @property
    def locked(self) -> bool:
        return self.status in LOCKED

    def assess(self, now: datetime) -> dict[str, ProgramAssessment]:
        """FSW, CEC and FSTP assessments of the current document on `now`'s day."""
        return rules.assessments(self.document, now.date())

    def due_at(self, now: datetime) -> datetime | None:
        """When the scheduler should next `review` this profile; None when time changes nothing."""
        if self.status not in EXPIRING:
            return None
        assert self.expires_at is not None
        if self.status is not Status.IN_POOL:
            return self.expires_at
        recheck = rules.next_recheck_on(self.document, now.date())
        recheck_at = datetime.combine(recheck, datetime.min.time(), tzinfo=now.tzinfo)
        return min(self.expires_at, recheck_at)

    # --- commands: candidate or partner -----------------------------------------------------------

    def update(self, document: dict[str, Any], now: datetime) -> None:
        """Replace the document. An in-pool profile that is now eligible for nothing leaves the pool."""
        self._require_editable("edit")
        assessed = rules.assessments(document, now.date())
        programs = rules.eligible(assessed)
        leaves_pool = self.status is Status.IN_POOL and not programs
        status = Status.REMOVED_FROM_POOL if leaves_pool else self.status
        self._record(self._updated(document, status, programs, now))
        if leaves_pool:
            self._record(self._removed(rules.reasons(assessed), now))

    def submit(self, now: datetime) -> None:
        """Enter the pool when eligible for at least one program; NotEligible with every reason if not."""
        self._require_editable("submit")
        if self.status not in SUBMITTABLE:
            raise TransitionNotAllowed(
                f"Profile {self.profile_id} is already in the pool; it cannot be submitted again."
            )
        if self.expires_at is not None and now >= self.expires_at:
            raise TransitionNotAllowed(self._expired_detail())
        assessed = self.assess(now)
        programs = rules.eligible(assessed)
        if not programs:
            raise NotEligible(
                "The profile does not meet the minimum requirements of any program (FSWP, CEC, FSTP); "
                "see `reasons`, update the profile and submit it again.",
                rules.reasons(assessed),
            )
        submitted_at = self.submitted_at or now
        self._record(
            ProfileSubmitted(
                **self._ids(),
                document=self.document,
                eligible_programs=programs,
                submitted_at=submitted_at,
                expires_at=rules.pool_expiry(submitted_at),
            )
        )

    def withdraw(self, now: datetime) -> None:
        self._require_editable("withdraw")
        self._record(ProfileWithdrawn(**self._ids(), withdrawn_at=now))

    # --- commands: provinces ------------------------------------------------------------------------

    def nominate(self, province: str, now: datetime) -> None:
        if self.nomination is not None:
            raise NominationConflict(
                f"Profile {self.profile_id} already holds a nomination from {self.nomination.province} "
                f"(since {self.nomination.nominated_at:%Y-%m-%d}); a candidate holds at most one. "
                "That province must withdraw it first."
            )
        if self.status is not Status.IN_POOL:
            raise TransitionNotAllowed(
                f"Profile {self.profile_id} is not in the pool (status {self.status}); only candidates in "
                "the pool can be nominated."
            )
        self._record(NominationIssued(**self._ids(), province=province, nominated_at=now))

    def withdraw_nomination(self, province: str, now: datetime) -> None:
        if self.nomination is None or self.nomination.province != province:
            raise NominationNotFound(f"{province} holds no active nomination of profile {self.profile_id}.")
        self._record(NominationWithdrawn(**self._ids(), province=province, withdrawn_at=now))

    # --- personal data ------------------------------------------------------------------------------

    def erasable_at(self, retention: timedelta) -> datetime | None:
        """When the retention after leaving for good runs out; None while it has not left, or erased."""
        if self.erased_at is not None or self.closed_at is None:
            return None
        return self.closed_at + retention

    def erase(self, now: datetime, *, retention: timedelta, ordered: bool) -> bool:
        """Erase the personal data (the caller destroys the data key); False when already erased.

        Without `ordered`: only once the profile left for good and `retention` has passed since.
        `ordered` (ops): at once, for a profile never invited; one still open is withdrawn first.
        Scores, rounds and decisions stay; only the person goes."""
        if self.erased_at is not None:
            return False
        if self.status in LOCKED:
            raise ProfileLocked(
                f"Profile {self.profile_id} is under an invitation or an application ({self.status}); its "
                "data is kept while the decision is open."
            )
        if ordered:
            if self.ever_invited:
                raise TransitionNotAllowed(
                    f"Profile {self.profile_id} was invited to apply, so its record is kept for the "
                    f"retention period after it left; erased on its own on {self._erasable_day(retention)}."
                )
            if self.status not in CLOSED:
                self._record(ProfileWithdrawn(**self._ids(), withdrawn_at=now))
        else:
            due = self.erasable_at(retention)
            if due is None or now < due:
                raise TransitionNotAllowed(
                    f"Profile {self.profile_id} is not due for erasure (status {self.status}); a profile is "
                    "erased once withdrawn or expired and the retention period has passed."
                )
        reason = "ops" if ordered else self.status.value
        self._record(PersonalDataErased(**self._ids(), reason=reason, erased_at=now))
        return True

    def _erasable_day(self, retention: timedelta) -> str:
        due = self.erasable_at(retention)
        return "the end of its retention period" if due is None else f"{due:%Y-%m-%d}"

    # --- the clock ----------------------------------------------------------------------------------

    def review(self, now: datetime) -> list[DomainEvent]:
        """What time makes happen at `now`: the 12 months run out, or a test or ECA stopped counting."""
        before = len(self.pending)
        if self.status in EXPIRING and self.expires_at is not None and now >= self.expires_at:
            self._record(ProfileExpired(**self._ids(), expired_at=now))
        elif self.status is Status.IN_POOL:
            self._recheck(now)
        return self.pending[before:]

    def _recheck(self, now: datetime) -> None:
        assessed = self.assess(now)
        programs = rules.eligible(assessed)
        if not programs:
            self._record(self._removed(rules.reasons(assessed), now))
        elif programs != self.eligible_programs:
            self._record(self._updated(self.document, Status.IN_POOL, programs, now))

    # --- facts from the draws and applications services ---------------------------------------------

    def invited(self, event: Invited) -> bool:
        """Lock the profile under an invitation; False (nothing recorded) when it changes nothing."""
        done = self.status in CLOSED or self.status is Status.APPLIED
        if done or self.invitation_id == event.invitation_id:
            return False
        self._record(event)
        return True

    def invitation_declined(self, event: InvitationDeclined, now: datetime) -> bool:
        """Unlock: back to the pool until the original expiry, if still eligible."""
        if not self._holds(event.invitation_id, Status.INVITED):
            return False
        self._record(event)
        if self.expires_at is not None and now >= self.expires_at:
            self._record(ProfileExpired(**self._ids(), expired_at=now))
            return True
        assessed = self.assess(now)
        programs = rules.eligible(assessed)
        if programs:
            self._record(self._updated(self.document, Status.IN_POOL, programs, now))
        else:
            self._record(self._removed(rules.reasons(assessed), now))
        return True

    def invitation_expired(self, event: InvitationExpired) -> bool:
        """The deadline passed without an application: the profile left the pool for good."""
        if not self._holds(event.invitation_id, Status.INVITED):
            return False
        self._record(event)
        return True

    def applied(self, event: Applied) -> bool:
        if not self._holds(event.invitation_id, Status.INVITED):
            return False
        self._record(event)
        return True

    # --- events ---------------------------------------------------------------------------------------

    def _record(self, event: DomainEvent) -> None:
        self._apply(event)
        self.version += 1
        self.pending.append(event)

    def _apply(self, event: DomainEvent) -> None:
        match event:
            case ProfileCreated():
                self._apply_created(event, derive=True)
            case ProfileUpdated():
                self.document, self.updated_at = event.document, event.updated_at
                self.status, self.eligible_programs = Status(event.status), list(event.eligible_programs)
            case ProfileSubmitted():
                self._enter_pool(event)
            case ProfileRemovedFromPool():
                self.status, self.removal_reasons = Status.REMOVED_FROM_POOL, list(event.reasons)
                self.eligible_programs = []
            case ProfileWithdrawn():
                self.status, self.closed_at = Status.WITHDRAWN, event.withdrawn_at
            case ProfileExpired():
                self.status, self.closed_at = Status.EXPIRED, event.expired_at
            case PersonalDataErased():
                self.document, self.erased_at = redact(self.document), event.erased_at
            case NominationIssued():
                self.nomination = Nomination(event.province, event.nominated_at)
            case NominationWithdrawn():
                self.nomination = None
            case _:
                self._apply_received(event)

    def _apply_created(self, event: ProfileCreated, *, derive: bool) -> None:
        self.document, self.created_at = event.document, event.created_at
        self.updated_at = event.created_at
        if derive:
            # Informational for a draft (ProfileCreated carries no programs): derived on its day.
            self.eligible_programs = rules.eligible_on(event.document, event.created_at.date())

    def _apply_received(self, event: DomainEvent) -> None:
        match event:
            case Invited():
                self.status, self.invitation_id = Status.INVITED, event.invitation_id
                self.ever_invited = True
            case InvitationDeclined():
                self.status, self.invitation_id = Status.IN_POOL, None
            case InvitationExpired():
                self.status, self.closed_at = Status.INVITATION_EXPIRED, event.expired_at
            case Applied():
                self.status = Status.APPLIED
            case _:
                raise ValueError(f"a profile's stream cannot hold {type(event).__name__}")

    def _enter_pool(self, event: ProfileSubmitted) -> None:
        self.status, self.eligible_programs = Status.IN_POOL, list(event.eligible_programs)
        self.submitted_at, self.expires_at = event.submitted_at, event.expires_at
        self.removal_reasons = []

    # --- helpers --------------------------------------------------------------------------------------

    def _ids(self) -> dict[str, str]:
        return {"profile_id": self.profile_id, "owner": self.owner}

    def _updated(
        self, document: dict[str, Any], status: Status, programs: list[str], now: datetime
    ) -> ProfileUpdated:
        return ProfileUpdated(
            **self._ids(),
            document=document,
            status=status.value,
            eligible_programs=programs,
            submitted_at=self.submitted_at,
            expires_at=self.expires_at,
            updated_at=now,
        )

    def _removed(self, reasons: list[str], now: datetime) -> ProfileRemovedFromPool:
        return ProfileRemovedFromPool(**self._ids(), reasons=reasons, removed_at=now)

    def _holds(self, invitation_id: str, status: Status) -> bool:
        return self.status is status and self.invitation_id == invitation_id

    def _require_editable(self, action: str) -> None:
        if self.erased_at is not None:
            raise TransitionNotAllowed(
                f"Profile {self.profile_id}'s personal data was erased, so you cannot {action} it. "
                "Create a new profile instead."
            )
        if self.status is Status.INVITED:
            raise ProfileLocked(
                f"Profile {self.profile_id} holds an open invitation to apply ({self.invitation_id}), so it "
                f"is locked: you cannot {action} it. Decline the invitation to unlock it, or apply."
            )
        if self.status is Status.APPLIED:
            raise ProfileLocked(
                f"Profile {self.profile_id} is locked: an application was submitted under its invitation, "
                f"so you cannot {action} it."
            )
        if self.status in CLOSED:
            raise TransitionNotAllowed(self._closed_detail(action))

    def _closed_detail(self, action: str) -> str:
        why = {
            Status.WITHDRAWN: "was withdrawn",
            Status.EXPIRED: "expired",
            Status.INVITATION_EXPIRED: "left the pool when its invitation expired",
        }[self.status]
        return (
            f"Profile {self.profile_id} {why}, so you cannot {action} it; it can never return to the pool. "
            "Create a new profile instead."
        )

    def _expired_detail(self) -> str:
        assert self.expires_at is not None
        return (
            f"Profile {self.profile_id}'s 12 months in the pool ran out on {self.expires_at:%Y-%m-%d}; "
            "it cannot be submitted again. Create a new profile instead."
        )


def _iso(instant: datetime | None) -> str | None:
    return None if instant is None else instant.isoformat()


def _from_iso(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)
