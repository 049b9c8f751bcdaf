"""Every event of the catalogue (DESIGN.md): name, version, topic, fields.

The services are built against these contracts and nothing else. Anything about a candidate carries
`profile_id` and `owner` and is keyed by `profile_id` on whatever topic it travels.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

PROFILE_TOPIC = "ee.profile.events"
RANKING_TOPIC = "ee.ranking.events"
DRAWS_TOPIC = "ee.draws.events"
APPLICATIONS_TOPIC = "ee.applications.events"
NOTIFICATIONS_TOPIC = "ee.notifications.events"
EVENT_TOPICS = (PROFILE_TOPIC, RANKING_TOPIC, DRAWS_TOPIC, APPLICATIONS_TOPIC, NOTIFICATIONS_TOPIC)


class Event(BaseModel):
    """Base of every catalogue event. Subclasses set the class attributes below."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    topic: ClassVar[str]
    version: ClassVar[int] = 1
    producer: ClassVar[str]  # "profile", "ranking", "draws", "applications", "notifications"
    key_field: ClassVar[str] = "profile_id"
    """The field whose value is the Kafka message key (and the envelope's `subject`)."""

    @classmethod
    def event_name(cls) -> str:
        return cls.__name__

    @classmethod
    def event_type(cls) -> str:
        return f"ee.{cls.producer}.{cls.__name__}.v{cls.version}"

    def key(self) -> str:
        """The Kafka message key: the profile for candidate events (per-candidate order)."""
        return str(getattr(self, self.key_field))


class CandidateEvent(Event):
    profile_id: str
    owner: str = Field(description="`sub` of the candidate or partner that created the profile")


# --- profile --------------------------------------------------------------------------------------


class ProfileEvent(CandidateEvent):
    topic: ClassVar[str] = PROFILE_TOPIC
    producer: ClassVar[str] = "profile"


class ProfileCreated(ProfileEvent):
    document: dict[str, Any] = Field(description="profile document v1 (shared.rules.document)")
    created_at: datetime
    sealed: str | None = Field(
        default=None,
        description="the document's personal fields (shared.personal), AES-256-GCM under the candidate's "
        "data key; `document` holds them redacted",
    )


class ProfileUpdated(ProfileEvent):
    """Carries the whole document: every fact scoring and eligibility need."""

    document: dict[str, Any]
    status: str
    eligible_programs: list[str]
    submitted_at: datetime | None = None
    expires_at: datetime | None = None
    updated_at: datetime
    sealed: str | None = Field(
        default=None,
        description="the document's personal fields (shared.personal), AES-256-GCM under the candidate's "
        "data key; `document` holds them redacted",
    )


class ProfileSubmitted(ProfileEvent):
    document: dict[str, Any]
    eligible_programs: list[str]
    submitted_at: datetime
    expires_at: datetime
    sealed: str | None = Field(
        default=None,
        description="the document's personal fields (shared.personal), AES-256-GCM under the candidate's "
        "data key; `document` holds them redacted",
    )


class ProfileRemovedFromPool(ProfileEvent):
    reasons: list[str]
    removed_at: datetime


class ProfileWithdrawn(ProfileEvent):
    withdrawn_at: datetime


class ProfileExpired(ProfileEvent):
    expired_at: datetime


class PersonalDataErased(ProfileEvent):
    """The candidate's data key is destroyed: every service drops what it holds of this person.

    Scores, rounds and decisions already taken stay (they are not personal once the person is gone)."""

    reason: str = Field(description="withdrawn, expired, invitation_expired (retention passed) or ops")
    erased_at: datetime


class NominationIssued(ProfileEvent):
    province: str
    nominated_at: datetime


class NominationWithdrawn(ProfileEvent):
    province: str
    withdrawn_at: datetime


# --- ranking --------------------------------------------------------------------------------------


class RankingEvent(CandidateEvent):
    topic: ClassVar[str] = RANKING_TOPIC
    producer: ClassVar[str] = "ranking"


class Ranked(RankingEvent):
    crs: int
    breakdown: dict[str, int]
    rules_version: str
    programs: list[str]
    categories: list[str]
    submitted_at: datetime
    ranked_at: datetime


class RemovedFromPool(RankingEvent):
    reason: str
    removed_at: datetime


class PoolDetailsChanged(RankingEvent):
    """A candidate stays in the pool with the same score, programs and categories, but what queries
    show of them changed (breakdown, NOC codes, language levels, citizenship, rules version): every
    ranking instance reads the candidate again (each holds the whole pool)."""

    changed_at: datetime


class RulesActivated(Event):
    """Ops made `rules_version` the pool's CRS rules (`in-force`: each day the version in force on it).
    One key for every activation, so all travel on one partition in order; every ranking instance
    applies it, and each rescores the profiles of the partitions it owns."""

    topic: ClassVar[str] = RANKING_TOPIC
    producer: ClassVar[str] = "ranking"
    key_field: ClassVar[str] = "scope"

    scope: str = Field(default="ranking-rules", description="the Kafka key: one for every activation")
    rules_version: str
    previous: str
    activated_at: datetime


# --- draws ----------------------------------------------------------------------------------------


class RoundOfInvitationsHeld(Event):
    topic: ClassVar[str] = DRAWS_TOPIC
    producer: ClassVar[str] = "draws"
    key_field: ClassVar[str] = "round_id"

    round_id: str
    round_number: int
    round_type: str = Field(description="general, a program code or a category code")
    category_version: str | None = None
    size: int
    invitations_count: int
    cutoff_crs: int | None
    tie_break_at: datetime | None
    held_at: datetime


class Invited(CandidateEvent):
    topic: ClassVar[str] = DRAWS_TOPIC
    producer: ClassVar[str] = "draws"

    invitation_id: str
    round_id: str
    round_number: int
    program: str = Field(description="the program invited under: pnp, cec, fsw or fst")
    crs: int
    citizenship: str
    invited_at: datetime
    deadline: datetime


# --- applications ---------------------------------------------------------------------------------


class ApplicationsEvent(CandidateEvent):
    topic: ClassVar[str] = APPLICATIONS_TOPIC
    producer: ClassVar[str] = "applications"
    invitation_id: str


class InvitationDeclined(ApplicationsEvent):
    declined_at: datetime


class InvitationExpired(ApplicationsEvent):
    expired_at: datetime


class InvitationDeadlineApproaching(ApplicationsEvent):
    deadline: datetime
    days_before: int


class Applied(ApplicationsEvent):
    application_id: str
    program: str
    applied_at: datetime


class ApplicationWithdrawn(ApplicationsEvent):
    application_id: str
    withdrawn_at: datetime


class Approved(ApplicationsEvent):
    application_id: str
    decided_at: datetime
    reasons: list[str] = []


class Refused(ApplicationsEvent):
    application_id: str
    decided_at: datetime
    reasons: list[str]


class CoprIssued(ApplicationsEvent):
    application_id: str
    copr_number: str
    issued_at: datetime
    expires_on: date


class PermanentResidentVisaIssued(ApplicationsEvent):
    application_id: str
    citizenship: str
    issued_at: datetime
    expires_on: date


class CoprExpiringSoon(ApplicationsEvent):
    application_id: str
    expires_on: date
    days_before: int


class CoprExpired(ApplicationsEvent):
    application_id: str
    expired_on: date


class Landed(ApplicationsEvent):
    application_id: str
    landed_at: datetime


# --- notifications (webhook subscriptions; never a secret in an event) -----------------------------


class SubscriptionEvent(Event):
    topic: ClassVar[str] = NOTIFICATIONS_TOPIC
    producer: ClassVar[str] = "notifications"

    subscription_id: str
    subscriber: str = Field(description="`sub` of the partner, province or ops account that owns it")
    role: str
    province: str | None = None

    key_field: ClassVar[str] = "subscription_id"


class SubscriptionCreated(SubscriptionEvent):
    url: str
    event_types: list[str]
    description: str
    candidates: list[str] = []
    created_at: datetime


class SubscriptionUpdated(SubscriptionEvent):
    url: str
    event_types: list[str]
    description: str
    candidates: list[str] = []
    enabled: bool
    updated_at: datetime


class SubscriptionSecretRotated(SubscriptionEvent):
    previous_valid_until: datetime | None
    rotated_at: datetime


class SubscriptionDisabled(SubscriptionEvent):
    """Deliveries stopped: the endpoint answered 410 Gone, or failed for days (ops is told)."""

    reason: str
    failing_since: datetime | None = None
    disabled_at: datetime


class SubscriptionDeleted(SubscriptionEvent):
    deleted_at: datetime


CATALOGUE: tuple[type[Event], ...] = (
    ProfileCreated,
    ProfileUpdated,
    ProfileSubmitted,
    ProfileRemovedFromPool,
    ProfileWithdrawn,
    ProfileExpired,
    NominationIssued,
    NominationWithdrawn,
    PersonalDataErased,
    Ranked,
    RemovedFromPool,
    PoolDetailsChanged,
    RulesActivated,
    RoundOfInvitationsHeld,
    Invited,
    InvitationDeclined,
    InvitationExpired,
    InvitationDeadlineApproaching,
    Applied,
    ApplicationWithdrawn,
    Approved,
    Refused,
    CoprIssued,
    PermanentResidentVisaIssued,
    CoprExpiringSoon,
    CoprExpired,
    Landed,
    SubscriptionCreated,
    SubscriptionUpdated,
    SubscriptionSecretRotated,
    SubscriptionDisabled,
    SubscriptionDeleted,
)
