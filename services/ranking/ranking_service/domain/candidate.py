"""One profile as the ranking projection sees it: facts merged from three topics, and its standing.

The facts are a deterministic merge, so a rebuild gives the same result whatever order the topics
interleave in:

- profile facts (document, status, submission, nomination) come from the profile stream and are
  ordered by its `aggregateversion`: an event older than what was applied is ignored;
- invitation states are monotone per invitation id: declined, expired and applied beat invited, and
  applied > expired > declined, whatever order they arrive in;
- withdrawn and expired profiles never come back.

A profile stands in the pool iff it was submitted (and not withdrawn, expired or removed), no
invitation holds it (invited, applied or expired), its 12 months have not run out, and it is eligible
for at least one federal program on the day. Standing is evaluated as of an instant with a rules version.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time
from enum import StrEnum
from typing import Any, Final

from ranking_service.domain.scoring import Scored, UnscorableProfile, score_profile
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
    ProfileFact,
    ProfileRemovedFromPool,
    ProfileSubmitted,
    ProfileUpdated,
    ProfileWithdrawn,
)
from shared.rules.crs import RulesVersion, rules_for_day


class Status(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    REMOVED = "removed"  # the profile service found it ineligible; it may be submitted again
    WITHDRAWN = "withdrawn"  # for good
    EXPIRED = "expired"  # for good


TERMINAL: Final = frozenset({Status.WITHDRAWN, Status.EXPIRED})

# ProfileUpdated.status (the profile service's vocabulary) -> the projection's status. Invitation
# statuses map to SUBMITTED: invitations are tracked on their own, by invitation id.
_UPDATED_STATUS: Final = {
    "draft": Status.DRAFT,
    "in_pool": Status.SUBMITTED,
    "invited": Status.SUBMITTED,
    "applied": Status.SUBMITTED,
    "invitation_expired": Status.SUBMITTED,
    "removed_from_pool": Status.REMOVED,
    "withdrawn": Status.WITHDRAWN,
    "expired": Status.EXPIRED,
}


class InvitationState(StrEnum):
    INVITED = "invited"
    DECLINED = "declined"
    EXPIRED = "expired"
    APPLIED = "applied"


PRECEDENCE: Final = {
    InvitationState.INVITED: 0,
    InvitationState.DECLINED: 1,
    InvitationState.EXPIRED: 2,
    InvitationState.APPLIED: 3,
}
HOLDING: Final = frozenset({InvitationState.INVITED, InvitationState.EXPIRED, InvitationState.APPLIED})
"""Invitation states that keep a profile out of the pool (expired and applied: for good)."""

_INVITATION_EVENTS: Final[dict[type[DomainEvent], InvitationState]] = {
    Invited: InvitationState.INVITED,
    InvitationDeclined: InvitationState.DECLINED,
    InvitationExpired: InvitationState.EXPIRED,
    Applied: InvitationState.APPLIED,
}
HANDLED_EVENTS: Final[tuple[type[DomainEvent], ...]] = (
    ProfileCreated, ProfileUpdated, ProfileSubmitted, ProfileRemovedFromPool, ProfileWithdrawn,
    ProfileExpired, NominationIssued, NominationWithdrawn, PersonalDataErased, *_INVITATION_EVENTS,
)  # fmt: skip


class Reason(StrEnum):
    """Why a profile is not in the pool (the `reason` of RemovedFromPool)."""

    NOT_SUBMITTED = "not_submitted"
    REMOVED = "removed_from_pool"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"
    INVITED = "invited"
    APPLIED = "applied"
    INVITATION_EXPIRED = "invitation_expired"
    INELIGIBLE = "ineligible"
    UNSCORABLE = "unscorable"


_HOLD_REASONS: Final = {
    InvitationState.INVITED: Reason.INVITED,
    InvitationState.EXPIRED: Reason.INVITATION_EXPIRED,
    InvitationState.APPLIED: Reason.APPLIED,
}


# --- facts ------------------------------------------------------------------------------------------


@dataclass(slots=True)
class ProfileFacts:
    """Everything the events said about one profile (mutable: the projection applies events to it)."""

    profile_id: str
    owner: str
    version: int = 0  # the profile stream's aggregate version last applied
    document: dict[str, Any] | None = None
    status: Status = Status.DRAFT
    submitted_at: datetime | None = None
    expires_at: datetime | None = None
    nominated: bool = False
    province: str | None = None
    invitations: dict[str, InvitationState] = field(default_factory=dict)

    def holding_invitation(self) -> InvitationState | None:
        """The strongest invitation state that keeps the profile out of the pool, if any."""
        held = [state for state in self.invitations.values() if state in HOLDING]
        return max(held, key=PRECEDENCE.__getitem__, default=None)

    def inactive_reason(self) -> Reason | None:
        """Why the facts alone keep the profile out of the pool; None when it may stand in it."""
        if self.status is Status.WITHDRAWN:
            return Reason.WITHDRAWN
        if self.status is Status.EXPIRED:
            return Reason.EXPIRED
        holding = self.holding_invitation()
        if holding is not None:
            return _HOLD_REASONS[holding]
        if self.status is Status.REMOVED:
            return Reason.REMOVED
        if self.status is not Status.SUBMITTED or self.document is None or self.submitted_at is None:
            return Reason.NOT_SUBMITTED
        return None


def apply_event(facts: ProfileFacts, event: DomainEvent, aggregate_version: int | None) -> bool:
    """Apply one event to `facts`; False when it changes nothing (an old version, a repeat)."""
    invitation = _INVITATION_EVENTS.get(type(event))
    if invitation is not None:
        return apply_invitation(facts, str(getattr(event, "invitation_id")), invitation)  # noqa: B009
    if isinstance(event, ProfileFact):
        return apply_profile_event(facts, event, aggregate_version)
    return False


def apply_invitation(facts: ProfileFacts, invitation_id: str, state: InvitationState) -> bool:
    current = facts.invitations.get(invitation_id)
    if current is not None and PRECEDENCE[current] >= PRECEDENCE[state]:
        return False
    facts.invitations[invitation_id] = state
    return True


def apply_profile_event(facts: ProfileFacts, event: ProfileFact, aggregate_version: int | None) -> bool:
    """Profile facts in stream order: an event at or below the applied version is ignored."""
    if aggregate_version is not None:
        if aggregate_version <= facts.version:
            return False
        facts.version = aggregate_version
    if not facts.owner:
        facts.owner = event.owner
    _apply_profile_fact(facts, event)
    return True


def _apply_profile_fact(facts: ProfileFacts, event: ProfileFact) -> None:
    match event:
        case ProfileCreated():
            facts.document = event.document
        case ProfileUpdated():
            facts.document = event.document
            _set_status(facts, _UPDATED_STATUS.get(event.status, facts.status))
            facts.submitted_at = event.submitted_at or facts.submitted_at
            facts.expires_at = event.expires_at or facts.expires_at
        case ProfileSubmitted():
            facts.document = event.document
            _set_status(facts, Status.SUBMITTED)
            # The first submission's instant is the tie-breaker for good (the event repeats it).
            facts.submitted_at = facts.submitted_at or event.submitted_at
            facts.expires_at = event.expires_at
        case ProfileRemovedFromPool():
            _set_status(facts, Status.REMOVED)
        case ProfileWithdrawn():
            _set_status(facts, Status.WITHDRAWN)
        case ProfileExpired():
            _set_status(facts, Status.EXPIRED)
        case NominationIssued():
            facts.nominated, facts.province = True, event.province
        case NominationWithdrawn():
            facts.nominated, facts.province = False, None
        case PersonalDataErased():
            # docs/PRIVACY.md: the document goes (its score stays: rounds already held are audited
            # against it) and the profile never comes back to the pool.
            facts.document = None
            _set_status(facts, Status.WITHDRAWN)


def _set_status(facts: ProfileFacts, status: Status) -> None:
    if facts.status not in TERMINAL:  # withdrawn and expired profiles never come back
        facts.status = status


# --- standing ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Standing:
    """The profile's place relative to the pool, evaluated as of an instant."""

    in_pool: bool
    reason: Reason | None  # why not in the pool
    scored: Scored | None  # the last score (kept while out of the pool)
    scored_on: date | None  # the day `scored` was derived as of
    basis_version: int  # the facts version `scored` was computed from
    rescore_at: datetime | None  # when to evaluate again although no event came; None: only on events

    @property
    def active(self) -> bool:
        """Time alone may change this standing (the scheduler looks at it again at `rescore_at`)."""
        return self.rescore_at is not None


NO_STANDING: Final = Standing(False, Reason.NOT_SUBMITTED, None, None, 0, None)


def evaluate(facts: ProfileFacts, previous: Standing, now: datetime, rules: RulesVersion | None) -> Standing:
    """The standing of `facts` at `now` with `rules`, rescoring only when the score may be stale.

    `rules=None`: the version in force on the day of `now` (`shared.rules.crs.rules_for_day`), so a
    replay as of a day before 2025-03-25 scores with the grid of that day, job-offer points included.
    """
    inactive = facts.inactive_reason()
    if inactive is not None:
        return replace(previous, in_pool=False, reason=inactive, rescore_at=None)
    assert facts.expires_at is None or facts.expires_at.tzinfo is not None
    if facts.expires_at is not None and now >= facts.expires_at:
        return replace(previous, in_pool=False, reason=Reason.EXPIRED, rescore_at=None)
    today = now.astimezone(UTC).date()
    rules = rules_for_day(rules, today)
    scored = previous.scored
    if _stale(previous, facts, today, rules):
        try:
            scored = score(facts, today, rules)
        except UnscorableProfile:
            return Standing(False, Reason.UNSCORABLE, None, today, facts.version, None)
    assert scored is not None
    rescore_at = _midnight(scored.rescore_on)
    if facts.expires_at is not None:
        rescore_at = min(rescore_at, facts.expires_at)
    reason = None if scored.eligible else Reason.INELIGIBLE
    return Standing(scored.eligible, reason, scored, today, facts.version, rescore_at)


def score(facts: ProfileFacts, as_of: date, rules: RulesVersion) -> Scored:
    assert facts.document is not None
    return score_profile(facts.document, as_of, facts.nominated, rules)


def _stale(previous: Standing, facts: ProfileFacts, today: date, rules: RulesVersion) -> bool:
    scored = previous.scored
    return (
        scored is None
        or previous.scored_on != today
        or previous.basis_version != facts.version
        or scored.rules_version != rules.name
    )


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


# --- what changed -----------------------------------------------------------------------------------


class Change(StrEnum):
    """What an evaluation means for the pool and the events the scorer emits."""

    ENTERED = "entered"  # Ranked
    MOVED = "moved"  # Ranked: score, programs or categories changed
    LEFT = "left"  # RemovedFromPool
    REFRESHED = "refreshed"  # in the pool, nothing others see changed (breakdown, NOC codes, ...)
    NONE = "none"


def change_between(before: Standing, after: Standing) -> Change:
    if not after.in_pool:
        return Change.LEFT if before.in_pool else Change.NONE
    if not before.in_pool:
        return Change.ENTERED
    old, new = before.scored, after.scored
    assert old is not None and new is not None
    if (old.crs, old.programs, old.categories) != (new.crs, new.programs, new.categories):
        return Change.MOVED
    return Change.NONE if old == new else Change.REFRESHED


@dataclass(slots=True)
class CandidateRow:
    """One row of the projection: the facts, the standing, and a revision bumped on every write."""

    facts: ProfileFacts
    standing: Standing = NO_STANDING
    revision: int = 0
