"""The invitation aggregate: deadlines, transitions, COPR, visas, reminders (pure, no I/O)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import pytest
from applications_factories import (
    APPLIED_AT,
    DEADLINE,
    DECIDED_AT,
    INVITED_AT,
    documents,
    invitation_in,
    invited,
)

from applications_service.domain.errors import (
    CoprCannotBeExtended,
    CoprExpiredError,
    DeadlinePassed,
    TransitionNotAllowed,
)
from applications_service.domain.events import (
    ApplicationDocumentsRecorded,
    Approved,
    CoprExpired,
    CoprExpiringSoon,
    CoprIssued,
    InvitationDeadlineApproaching,
    Landed,
    PermanentResidentVisaIssued,
    Refused,
    is_published,
)
from applications_service.domain.invitation import InvalidCommand, Invitation, State, copr_number_for
from shared.domain_events import Applied, DomainEvent, InvitationDeclined, InvitationExpired

REACHABLE = [s for s in State if s is not State.APPROVED]  # approval always issues the COPR at once


def names(events: list[DomainEvent]) -> list[str]:
    return [type(e).__name__ for e in events]


# --- the 60-day deadline ---------------------------------------------------------------------------


def test_deadline_is_sixty_days_after_the_invitation() -> None:
    assert DEADLINE - INVITED_AT == timedelta(days=60)


@pytest.mark.parametrize("offset", [timedelta(days=-1), timedelta(microseconds=-1), timedelta(0)])
def test_applying_before_or_exactly_at_the_deadline_is_on_time(offset: timedelta) -> None:
    invitation = Invitation.receive(invited())
    invitation.apply("a-1", documents(), 15_263, DEADLINE + offset)
    assert invitation.state is State.APPLIED
    assert names(invitation.pending) == ["Invited", "ApplicationDocumentsRecorded", "Applied"]
    applied = invitation.pending[-1]
    assert (
        isinstance(applied, Applied) and applied.applied_at == DEADLINE + offset and applied.program == "fsw"
    )


@pytest.mark.parametrize("offset", [timedelta(microseconds=1), timedelta(seconds=1), timedelta(days=3)])
def test_applying_after_the_deadline_is_refused_even_before_the_scheduler_ran(offset: timedelta) -> None:
    invitation = Invitation.receive(invited())
    with pytest.raises(DeadlinePassed) as refused:
        invitation.apply("a-1", documents(), None, DEADLINE + offset)
    assert DEADLINE.isoformat() in refused.value.detail and "up to and including" in refused.value.detail
    assert invitation.state is State.OPEN and names(invitation.pending) == ["Invited"]


def test_declining_is_allowed_up_to_the_deadline_and_not_after() -> None:
    on_time = Invitation.receive(invited())
    on_time.decline(DEADLINE)
    assert on_time.state is State.DECLINED and isinstance(on_time.pending[-1], InvitationDeclined)
    late = Invitation.receive(invited())
    with pytest.raises(DeadlinePassed):
        late.decline(DEADLINE + timedelta(microseconds=1))


def test_the_clock_expires_an_open_invitation_only_once_past_the_deadline() -> None:
    invitation = Invitation.receive(invited())
    invitation.pending.clear()
    invitation.deadline_reminders |= {14, 3}  # reminders are tested below
    assert invitation.tick(DEADLINE) == []
    expired = invitation.tick(DEADLINE + timedelta(microseconds=1))
    assert names(expired) == ["InvitationExpired"] and invitation.state is State.EXPIRED
    assert isinstance(expired[0], InvitationExpired) and expired[0].expired_at == DEADLINE + timedelta(
        microseconds=1
    )
    assert invitation.tick(DEADLINE + timedelta(days=5)) == []
    with pytest.raises(TransitionNotAllowed, match="expired"):
        invitation.apply("a-1", documents(), None, DEADLINE + timedelta(days=5))


# --- every transition not allowed from the current state ---------------------------------------

Command = Callable[[Invitation], None]
COMMANDS: dict[str, Command] = {
    "decline": lambda i: i.decline(APPLIED_AT),
    "apply": lambda i: i.apply(str(uuid.uuid4()), documents(), None, APPLIED_AT),
    "withdraw": lambda i: i.withdraw(DECIDED_AT),
    "approve": lambda i: i.decide("approved", [], DECIDED_AT),
    "refuse": lambda i: i.decide("refused", ["not eligible"], DECIDED_AT),
    "land": lambda i: i.land(DECIDED_AT + timedelta(days=1)),
}
ALLOWED: dict[str, set[State]] = {
    "decline": {State.OPEN},
    "apply": {State.OPEN},
    "withdraw": {State.APPLIED},
    "approve": {State.APPLIED},
    "refuse": {State.APPLIED},
    "land": {State.COPR_ISSUED},
}


@pytest.mark.parametrize("state", REACHABLE, ids=str)
@pytest.mark.parametrize("command", list(COMMANDS))
def test_each_command_is_allowed_only_from_its_states(state: State, command: str) -> None:
    invitation = invitation_in(state)
    version = invitation.version
    if state in ALLOWED[command]:
        COMMANDS[command](invitation)
        assert invitation.pending and invitation.version == version + len(invitation.pending)
        return
    with pytest.raises(TransitionNotAllowed) as refused:
        COMMANDS[command](invitation)
    assert refused.value.state == state and refused.value.detail.startswith("Cannot ")
    assert invitation.state is state and invitation.pending == [] and invitation.version == version


def test_refusals_say_what_the_state_is() -> None:
    with pytest.raises(TransitionNotAllowed, match="was declined on 2026-03-22"):
        invitation_in(State.DECLINED).apply("a", documents(), None, APPLIED_AT)
    with pytest.raises(TransitionNotAllowed, match="was withdrawn on"):
        invitation_in(State.WITHDRAWN).decide("approved", [], DECIDED_AT)
    with pytest.raises(TransitionNotAllowed, match="awaits a decision"):
        invitation_in(State.APPLIED).land(DECIDED_AT)


def test_a_refusal_needs_a_reason() -> None:
    invitation = invitation_in(State.APPLIED)
    with pytest.raises(InvalidCommand):
        invitation.decide("refused", ["  "], DECIDED_AT)
    invitation.decide("refused", ["work experience not shown"], DECIDED_AT)
    refused = invitation.pending[-1]
    assert isinstance(refused, Refused) and refused.reasons == ["work experience not shown"]


# --- approval, COPR and the PR visa ----------------------------------------------------------------


def approve(country: str, exam: date, passport_expiry: date) -> Invitation:
    invitation = Invitation.receive(invited(citizenship=country))
    invitation.apply("a-1", documents(country, exam, passport_expiry), 15_263, APPLIED_AT)
    invitation.pending.clear()
    invitation.decide("approved", ["all requirements met"], DECIDED_AT)
    return invitation


def test_copr_expiry_is_twelve_months_after_the_medical_when_that_comes_first() -> None:
    invitation = approve("FR", date(2026, 3, 10), date(2031, 1, 1))
    issued = invitation.pending[1]
    assert isinstance(issued, CoprIssued) and issued.expires_on == date(2027, 3, 10)
    assert issued.copr_number == copr_number_for("a-1") and invitation.copr_expires_on == date(2027, 3, 10)


def test_copr_expiry_is_the_passport_expiry_when_that_comes_first() -> None:
    invitation = approve("FR", date(2026, 3, 10), date(2026, 12, 31))
    issued = invitation.pending[1]
    assert isinstance(issued, CoprIssued) and issued.expires_on == date(2026, 12, 31)


def test_medical_on_29_february_expires_on_28_february() -> None:
    invitation = Invitation.receive(
        invited(invited_at=datetime(2028, 3, 1, tzinfo=UTC), deadline=datetime(2028, 4, 30, tzinfo=UTC))
    )
    invitation.apply("a-1", documents("FR", date(2028, 2, 29)), None, datetime(2028, 3, 5, tzinfo=UTC))
    invitation.decide("approved", [], datetime(2028, 6, 1, tzinfo=UTC))
    assert invitation.copr_expires_on == date(2029, 2, 28)


def test_approval_of_a_visa_required_national_issues_a_pr_visa() -> None:
    invitation = approve("IN", date(2026, 3, 10), date(2031, 1, 1))
    assert names(invitation.pending) == ["Approved", "CoprIssued", "PermanentResidentVisaIssued"]
    visa = invitation.pending[2]
    assert isinstance(visa, PermanentResidentVisaIssued)
    assert visa.citizenship == "IN" and visa.expires_on == date(2027, 3, 10) and invitation.visa_issued
    approved = invitation.pending[0]
    assert isinstance(approved, Approved) and approved.reasons == ["all requirements met"]
    assert invitation.state is State.COPR_ISSUED


def test_approval_of_a_visa_exempt_national_issues_no_visa() -> None:
    invitation = approve("GB", date(2026, 3, 10), date(2031, 1, 1))
    assert names(invitation.pending) == ["Approved", "CoprIssued"] and not invitation.visa_issued


def test_the_visa_follows_the_citizenship_on_the_invitation() -> None:
    invitation = Invitation.receive(invited(citizenship="CN"))
    invitation.apply("a-1", documents("GB"), None, APPLIED_AT)
    invitation.decide("approved", [], DECIDED_AT)
    visa = invitation.pending[-1]
    assert isinstance(visa, PermanentResidentVisaIssued) and visa.citizenship == "CN"


def test_approval_is_refused_when_the_copr_would_already_have_expired() -> None:
    invitation = Invitation.receive(invited())
    invitation.apply("a-1", documents("GB", date(2026, 3, 10)), None, APPLIED_AT)
    with pytest.raises(TransitionNotAllowed, match="would expire on 2027-03-10"):
        invitation.decide("approved", [], datetime(2027, 3, 10, 9, tzinfo=UTC))
    assert invitation.state is State.APPLIED


def test_landing_is_allowed_on_the_expiry_day_and_not_after() -> None:
    on_the_day = approve("GB", date(2026, 3, 10), date(2031, 1, 1))
    on_the_day.land(datetime(2027, 3, 10, 23, 59, tzinfo=UTC))
    assert isinstance(on_the_day.pending[-1], Landed) and on_the_day.state is State.LANDED
    late = approve("GB", date(2026, 3, 10), date(2031, 1, 1))
    with pytest.raises(CoprExpiredError, match="cannot be extended"):
        late.land(datetime(2027, 3, 11, tzinfo=UTC))


def test_the_clock_expires_a_copr_the_day_after_its_expiry_date() -> None:
    invitation = approve("GB", date(2026, 3, 10), date(2031, 1, 1))
    invitation.copr_reminders |= {60, 14}
    invitation.pending.clear()
    assert invitation.tick(datetime(2027, 3, 10, 23, 59, tzinfo=UTC)) == []
    expired = invitation.tick(datetime(2027, 3, 11, tzinfo=UTC))
    assert isinstance(expired[0], CoprExpired) and expired[0].expired_on == date(2027, 3, 10)
    assert invitation.state is State.COPR_EXPIRED and invitation.next_due_at() is None


@pytest.mark.parametrize("state", REACHABLE, ids=str)
def test_a_copr_can_never_be_extended(state: State) -> None:
    invitation = invitation_in(state)
    with pytest.raises(CoprCannotBeExtended) as refused:
        invitation.extend_copr()
    assert "never be extended" in refused.value.detail or "cannot be extended" in refused.value.detail
    assert invitation.pending == []


# --- reminders, each once ---------------------------------------------------------------------------


def run_clock(invitation: Invitation, start: datetime, end: datetime, step: timedelta) -> list[str]:
    emitted = []
    now = start
    while now <= end:
        emitted += invitation.tick(now)
        now += step
    return [f"{type(e).__name__}:{getattr(e, 'days_before', '')}" for e in emitted]


def test_deadline_reminders_fire_fourteen_and_three_days_before_once_each() -> None:
    invitation = Invitation.receive(invited())
    invitation.pending.clear()
    assert invitation.tick(DEADLINE - timedelta(days=14, microseconds=1)) == []
    fired = run_clock(
        invitation, DEADLINE - timedelta(days=14), DEADLINE + timedelta(hours=1), timedelta(hours=1)
    )
    assert fired == [
        "InvitationDeadlineApproaching:14",
        "InvitationDeadlineApproaching:3",
        "InvitationExpired:",
    ]
    first = invitation.pending[0]
    assert isinstance(first, InvitationDeadlineApproaching) and first.deadline == DEADLINE


def test_reminders_are_not_repeated_after_a_replay_of_the_stream() -> None:
    invitation = Invitation.receive(invited())
    invitation.tick(DEADLINE - timedelta(days=10))
    restarted = Invitation.replay(invitation.pending)
    assert restarted.deadline_reminders == {14} and restarted.version == invitation.version
    assert restarted.tick(DEADLINE - timedelta(days=9)) == []
    assert names(restarted.tick(DEADLINE - timedelta(days=3))) == ["InvitationDeadlineApproaching"]
    again = Invitation.replay(invitation.pending + restarted.pending)
    assert again.tick(DEADLINE - timedelta(days=1)) == []


def test_a_reminder_whose_time_passed_while_the_service_was_down_is_still_sent_once() -> None:
    invitation = Invitation.receive(invited())
    invitation.pending.clear()
    # Down from before the 14-day mark until 2 days before the deadline: both are sent, in order.
    fired = invitation.tick(DEADLINE - timedelta(days=2))
    assert [getattr(e, "days_before", None) for e in fired] == [14, 3]
    assert invitation.tick(DEADLINE - timedelta(days=1)) == []
    restarted = Invitation.replay([invited(), *invitation.pending])
    assert restarted.tick(DEADLINE - timedelta(days=1)) == []  # once, also across a restart


def test_a_copr_reminder_missed_while_down_is_sent_once_and_none_after_the_expiry() -> None:
    invitation = approve("GB", date(2026, 3, 10), date(2031, 1, 1))  # expires 2027-03-10
    invitation.pending.clear()
    fired = invitation.tick(datetime(2027, 3, 1, tzinfo=UTC))  # 9 days left: both marks passed
    assert [getattr(e, "days_before", None) for e in fired] == [60, 14]
    late = approve("GB", date(2026, 3, 10), date(2031, 1, 1))
    late.pending.clear()
    assert names(late.tick(datetime(2027, 3, 11, tzinfo=UTC))) == ["CoprExpired"]  # past it: moot


def test_a_deadline_missed_while_down_expires_the_invitation_without_reminders() -> None:
    invitation = Invitation.receive(invited())
    invitation.pending.clear()
    assert names(invitation.tick(DEADLINE + timedelta(hours=1))) == ["InvitationExpired"]


def test_no_reminder_once_the_invitation_is_answered() -> None:
    invitation = invitation_in(State.APPLIED)
    assert invitation.tick(DEADLINE - timedelta(days=2)) == [] and invitation.next_due_at() is None


def test_copr_reminders_fire_sixty_and_fourteen_days_before_once_each() -> None:
    invitation = approve("GB", date(2026, 3, 10), date(2031, 1, 1))  # expires 2027-03-10
    invitation.pending.clear()
    assert invitation.tick(datetime(2027, 1, 8, 23, tzinfo=UTC)) == []
    fired = run_clock(
        invitation, datetime(2027, 1, 9, tzinfo=UTC), datetime(2027, 3, 12, tzinfo=UTC), timedelta(hours=6)
    )
    assert fired == ["CoprExpiringSoon:60", "CoprExpiringSoon:14", "CoprExpired:"]
    soon = invitation.pending[0]
    assert isinstance(soon, CoprExpiringSoon) and soon.expires_on == date(2027, 3, 10)
    restarted = Invitation.replay([invited(), *invitation.pending])
    assert restarted.copr_reminders == {60, 14}


def test_next_due_follows_the_reminders_and_the_deadline() -> None:
    invitation = Invitation.receive(invited())
    assert invitation.next_due_at() == DEADLINE - timedelta(days=14)
    invitation.tick(DEADLINE - timedelta(days=14))
    assert invitation.next_due_at() == DEADLINE - timedelta(days=3)
    invitation.tick(DEADLINE - timedelta(days=3))
    assert invitation.next_due_at() == DEADLINE + timedelta(microseconds=1)
    copr = approve("GB", date(2026, 3, 10), date(2031, 1, 1))
    assert copr.next_due_at() == datetime(2027, 1, 9, tzinfo=UTC)


# --- the stream -----------------------------------------------------------------------------------


def test_replaying_the_stream_rebuilds_the_same_aggregate() -> None:
    invitation = approve("IN", date(2026, 3, 10), date(2031, 1, 1))
    invitation.land(DECIDED_AT + timedelta(days=10))
    history = [invitation.invited, *[e for e in _full_history(invitation)]]
    replayed = Invitation.replay(history)
    assert (replayed.state, replayed.version, replayed.copr_number, replayed.visa_issued) == (
        State.LANDED,
        invitation.version,
        invitation.copr_number,
        True,
    )
    assert replayed.documents == invitation.documents and replayed.applied_at == APPLIED_AT


def _full_history(invitation: Invitation) -> list[DomainEvent]:
    documents_recorded = ApplicationDocumentsRecorded(
        profile_id=invitation.profile_id,
        owner=invitation.owner,
        invitation_id=invitation.invitation_id,
        application_id="a-1",
        passport_number="Z1234567",
        passport_country="IN",
        passport_expiry=date(2031, 1, 1),
        medical_exam_date=date(2026, 3, 10),
        police_certificates=True,
        proof_of_funds_cad=20_000,
        minimum_funds_cad=15_263,
        recorded_at=APPLIED_AT,
    )
    applied = Applied(
        profile_id=invitation.profile_id,
        owner=invitation.owner,
        invitation_id=invitation.invitation_id,
        application_id="a-1",
        program="fsw",
        applied_at=APPLIED_AT,
    )
    return [documents_recorded, applied, *invitation.pending]


def test_only_our_catalogue_events_are_published() -> None:
    invitation = approve("IN", date(2026, 3, 10), date(2031, 1, 1))
    fresh = Invitation.receive(invited())
    fresh.apply("a", documents(), None, APPLIED_AT)
    published = [is_published(e) for e in fresh.pending]
    assert published == [False, False, True]  # Invited (received), documents (internal), Applied
    assert all(is_published(e) for e in invitation.pending)


def test_a_stream_must_start_with_invited() -> None:
    with pytest.raises(ValueError, match="starts with Invited"):
        Invitation.replay([])
