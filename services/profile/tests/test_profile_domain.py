"""The Profile aggregate's transitions, replay and time rules (pure: no database, no Kafka)."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from profile_service.application.events import EVENTS
from profile_service.domain import rules
from profile_service.domain.errors import (
    NominationConflict,
    NominationNotFound,
    NotEligible,
    ProfileLocked,
    TransitionNotAllowed,
)
from profile_service.domain.events import is_published
from profile_service.domain.profile import Profile, Status
from shared.domain_events import (
    Applied,
    DomainEvent,
    InvitationDeclined,
    InvitationExpired,
    Invited,
    NominationIssued,
    NominationWithdrawn,
    ProfileCreated,
    ProfileExpired,
    ProfileRemovedFromPool,
    ProfileSubmitted,
    ProfileUpdated,
    ProfileWithdrawn,
)
from shared.rules.document import PROFILE_DOCUMENT_EXAMPLE

T0 = datetime(2025, 6, 1, 9, 30, tzinfo=UTC)
OWNER = "partner-acme"


def eligible_doc() -> dict[str, Any]:
    """FSWP-eligible until its IELTS result expires on 2027-02-08."""
    return copy.deepcopy(PROFILE_DOCUMENT_EXAMPLE)


def quebec_doc() -> dict[str, Any]:
    doc = eligible_doc()
    doc["intends_to_reside_in_quebec"] = True
    return doc


def draft(doc: dict[str, Any] | None = None) -> Profile:
    return Profile.create("p-1", OWNER, doc or eligible_doc(), T0)


def in_pool(at: datetime = T0) -> Profile:
    profile = draft()
    profile.submit(at)
    return profile


def invited_event(invitation_id: str = "ita-1", at: datetime = T0) -> Invited:
    return Invited(
        profile_id="p-1",
        owner=OWNER,
        invitation_id=invitation_id,
        round_id="r-1",
        round_number=1,
        program="fsw",
        crs=480,
        citizenship="IN",
        invited_at=at,
        deadline=at + timedelta(days=60),
    )


def invited(at: datetime = T0) -> Profile:
    profile = in_pool(at)
    assert profile.invited(invited_event(at=at))
    return profile


def types(events: list[DomainEvent]) -> list[str]:
    return [type(event).__name__ for event in events]


def replayed(profile: Profile) -> Profile:
    return Profile.replay(profile.pending)


# --- creation and replay -------------------------------------------------------------------------------


def test_create_records_profile_created_as_a_draft_at_version_1() -> None:
    profile = draft()
    assert profile.status is Status.DRAFT and profile.version == 1
    assert types(profile.pending) == ["ProfileCreated"]
    created = profile.pending[0]
    assert isinstance(created, ProfileCreated)
    assert (created.profile_id, created.owner, created.created_at) == ("p-1", OWNER, T0)
    assert profile.eligible_programs == ["fsw"] == replayed(profile).eligible_programs


def test_replay_rebuilds_the_same_state_and_version() -> None:
    profile = invited()
    profile.invitation_declined(
        InvitationDeclined(profile_id="p-1", owner=OWNER, invitation_id="ita-1", declined_at=T0), T0
    )
    profile.nominate("ON", T0)
    again = replayed(profile)
    for name in (
        "status",
        "version",
        "submitted_at",
        "expires_at",
        "eligible_programs",
        "nomination",
        "invitation_id",
        "document",
    ):
        assert getattr(again, name) == getattr(profile, name), name


def count_derivations(monkeypatch: pytest.MonkeyPatch) -> list[date]:
    """The days of every program derivation from here on (`rules.eligible_on`), still computed."""
    derived: list[date] = []
    real = rules.eligible_on

    def counting(document: dict[str, Any], today: date) -> list[str]:
        derived.append(today)
        return real(document, today)

    monkeypatch.setattr(rules, "eligible_on", counting)
    return derived


def test_replay_skips_the_drafts_derivation_when_a_later_event_sets_the_programs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    profile = in_pool()
    profile.update(quebec_doc(), T0)
    derived = count_derivations(monkeypatch)
    again = replayed(profile)
    assert derived == []  # Submitted and Updated set the programs: the draft's were never used
    assert (again.eligible_programs, again.status, again.version) == (
        profile.eligible_programs, profile.status, profile.version,
    )  # fmt: skip


def test_replay_derives_a_drafts_programs_when_nothing_later_sets_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    profile = draft()
    profile.withdraw(T0)
    derived = count_derivations(monkeypatch)
    again = replayed(profile)
    assert derived == [T0.date()]
    assert again.eligible_programs == ["fsw"] == profile.eligible_programs


def test_replay_needs_profile_created_first() -> None:
    with pytest.raises(ValueError, match="starts with ProfileCreated"):
        Profile.replay([ProfileWithdrawn(profile_id="p-1", owner=OWNER, withdrawn_at=T0)])


def test_every_own_event_carries_the_owner_and_is_keyed_by_profile() -> None:
    profile = in_pool()
    profile.nominate("BC", T0)
    profile.withdraw(T0)
    for event in profile.pending:
        assert getattr(event, "owner") == OWNER  # noqa: B009 - every catalogue candidate event has it
        assert EVENTS.to_wire(event).key() == "p-1"


# --- submit ---------------------------------------------------------------------------------------------


def test_submit_enters_the_pool_with_submitted_at_and_12_months_expiry() -> None:
    profile = in_pool()
    submitted = profile.pending[-1]
    assert isinstance(submitted, ProfileSubmitted)
    assert profile.status is Status.IN_POOL
    assert submitted.eligible_programs == ["fsw"] == profile.eligible_programs
    assert profile.submitted_at == T0
    assert profile.expires_at == datetime(2026, 6, 1, 9, 30, tzinfo=UTC)


def test_submit_when_eligible_for_nothing_gives_every_reason_and_records_nothing() -> None:
    profile = draft(quebec_doc())
    with pytest.raises(NotEligible) as raised:
        profile.submit(T0)
    assert any(reason.startswith("FSWP:") and "Quebec" in reason for reason in raised.value.reasons)
    assert any(reason.startswith("CEC:") for reason in raised.value.reasons)
    assert profile.status is Status.DRAFT and types(profile.pending) == ["ProfileCreated"]


def test_submit_twice_is_refused() -> None:
    profile = in_pool()
    with pytest.raises(TransitionNotAllowed, match="already in the pool"):
        profile.submit(T0)


@pytest.mark.parametrize("close", ["withdraw", "expire"])
def test_withdrawn_or_expired_can_never_be_submitted_or_edited_again(close: str) -> None:
    profile = in_pool()
    if close == "withdraw":
        profile.withdraw(T0)
    else:
        profile.review(profile.expires_at or T0)
    with pytest.raises(TransitionNotAllowed, match="never return to the pool"):
        profile.submit(T0 + timedelta(days=1))
    with pytest.raises(TransitionNotAllowed):
        profile.update(eligible_doc(), T0)
    with pytest.raises(TransitionNotAllowed):
        profile.withdraw(T0)


def test_withdraw_a_draft() -> None:
    profile = draft()
    profile.withdraw(T0)
    assert profile.status is Status.WITHDRAWN
    assert isinstance(profile.pending[-1], ProfileWithdrawn)


def test_submitted_at_never_changes_with_edits_or_a_second_submission() -> None:
    profile = in_pool()
    later = T0 + timedelta(days=30)
    profile.update(eligible_doc(), later)
    assert profile.submitted_at == T0
    profile.update(quebec_doc(), later)  # leaves the pool
    assert profile.status is Status.REMOVED_FROM_POOL
    profile.update(eligible_doc(), later + timedelta(days=1))
    assert profile.status is Status.REMOVED_FROM_POOL  # back only by submitting again
    profile.submit(later + timedelta(days=2))
    resubmitted = profile.pending[-1]
    assert isinstance(resubmitted, ProfileSubmitted)
    assert resubmitted.submitted_at == T0 == profile.submitted_at
    assert profile.expires_at == rules.pool_expiry(T0)


def test_a_removed_profile_past_its_12_months_cannot_be_submitted() -> None:
    profile = in_pool()
    profile.update(quebec_doc(), T0 + timedelta(days=1))
    profile.update(eligible_doc(), T0 + timedelta(days=2))
    with pytest.raises(TransitionNotAllowed, match="ran out"):
        profile.submit(rules.pool_expiry(T0))


# --- update ---------------------------------------------------------------------------------------------


def test_update_carries_the_whole_document_status_and_programs() -> None:
    profile = in_pool()
    doc = eligible_doc()
    doc["settlement_funds_cad"] = 30_000
    later = T0 + timedelta(days=3)
    profile.update(doc, later)
    updated = profile.pending[-1]
    assert isinstance(updated, ProfileUpdated)
    assert updated.document == doc and updated.status == "in_pool" and updated.eligible_programs == ["fsw"]
    assert (updated.submitted_at, updated.expires_at, updated.updated_at) == (T0, profile.expires_at, later)


def test_update_of_a_draft_keeps_it_a_draft() -> None:
    profile = draft()
    profile.update(quebec_doc(), T0)
    assert profile.status is Status.DRAFT
    assert types(profile.pending) == ["ProfileCreated", "ProfileUpdated"]


def test_update_making_an_in_pool_profile_ineligible_removes_it_with_reasons() -> None:
    profile = in_pool()
    profile.update(quebec_doc(), T0 + timedelta(days=1))
    assert types(profile.pending[-2:]) == ["ProfileUpdated", "ProfileRemovedFromPool"]
    updated, removed = profile.pending[-2:]
    assert isinstance(updated, ProfileUpdated) and updated.status == "removed_from_pool"
    assert updated.eligible_programs == []
    assert isinstance(removed, ProfileRemovedFromPool) and any("Quebec" in r for r in removed.reasons)
    assert profile.status is Status.REMOVED_FROM_POOL and profile.removal_reasons == removed.reasons


# --- the lock ------------------------------------------------------------------------------------------


def test_an_invitation_locks_every_candidate_command() -> None:
    profile = invited()
    assert profile.locked and profile.status is Status.INVITED
    for command in (
        lambda: profile.update(eligible_doc(), T0),
        lambda: profile.submit(T0),
        lambda: profile.withdraw(T0),
    ):
        with pytest.raises(ProfileLocked, match="ita-1"):
            command()


def test_the_same_invitation_twice_is_recorded_once() -> None:
    profile = invited()
    assert not profile.invited(invited_event())
    assert types(profile.pending).count("Invited") == 1


def test_declining_unlocks_and_returns_to_the_pool_with_an_update() -> None:
    profile = invited()
    later = T0 + timedelta(days=10)
    declined = InvitationDeclined(profile_id="p-1", owner=OWNER, invitation_id="ita-1", declined_at=later)
    assert profile.invitation_declined(declined, later)
    assert profile.status is Status.IN_POOL and not profile.locked and profile.invitation_id is None
    assert types(profile.pending[-2:]) == ["InvitationDeclined", "ProfileUpdated"]
    assert profile.submitted_at == T0
    profile.update(eligible_doc(), later)  # editable again


def test_declining_after_the_original_expiry_expires_the_profile() -> None:
    profile = invited()
    late = rules.pool_expiry(T0) + timedelta(hours=1)
    declined = InvitationDeclined(profile_id="p-1", owner=OWNER, invitation_id="ita-1", declined_at=late)
    profile.invitation_declined(declined, late)
    assert profile.status is Status.EXPIRED
    assert types(profile.pending[-2:]) == ["InvitationDeclined", "ProfileExpired"]


def test_declining_when_no_longer_eligible_removes_from_the_pool() -> None:
    profile = invited(datetime(2026, 6, 1, tzinfo=UTC))
    late = datetime(2027, 2, 8, tzinfo=UTC)  # the IELTS result has expired
    declined = InvitationDeclined(profile_id="p-1", owner=OWNER, invitation_id="ita-1", declined_at=late)
    profile.invitation_declined(declined, late)
    assert profile.status is Status.REMOVED_FROM_POOL
    assert isinstance(profile.pending[-1], ProfileRemovedFromPool)


def test_a_decline_of_another_invitation_changes_nothing() -> None:
    profile = invited()
    other = InvitationDeclined(profile_id="p-1", owner=OWNER, invitation_id="ita-9", declined_at=T0)
    assert not profile.invitation_declined(other, T0)
    assert profile.locked


def test_an_expired_invitation_means_the_pool_is_left_for_good() -> None:
    profile = invited()
    expired = InvitationExpired(profile_id="p-1", owner=OWNER, invitation_id="ita-1", expired_at=T0)
    assert profile.invitation_expired(expired)
    assert profile.status is Status.INVITATION_EXPIRED and not profile.locked
    with pytest.raises(TransitionNotAllowed, match="never return"):
        profile.submit(T0)
    assert not profile.invited(invited_event("ita-2"))


def test_applying_locks_for_good() -> None:
    profile = invited()
    applied = Applied(
        profile_id="p-1",
        owner=OWNER,
        invitation_id="ita-1",
        application_id="a-1",
        program="fsw",
        applied_at=T0,
    )
    assert profile.applied(applied)
    assert profile.status is Status.APPLIED and profile.locked
    with pytest.raises(ProfileLocked, match="application"):
        profile.update(eligible_doc(), T0)
    declined = InvitationDeclined(profile_id="p-1", owner=OWNER, invitation_id="ita-1", declined_at=T0)
    assert not profile.invitation_declined(declined, T0)


def test_received_events_are_stored_but_not_published() -> None:
    profile = invited()
    invitation = profile.pending[-1]
    assert isinstance(invitation, Invited) and not is_published(invitation)
    assert all(is_published(event) for event in profile.pending[:-1])


# --- the clock ----------------------------------------------------------------------------------------


def test_review_expires_12_months_after_submission_not_before() -> None:
    profile = in_pool()
    expiry = rules.pool_expiry(T0)
    assert profile.review(expiry - timedelta(seconds=1)) == []
    events = profile.review(expiry)
    assert types(events) == ["ProfileExpired"] and profile.status is Status.EXPIRED
    assert profile.review(expiry + timedelta(days=1)) == []


def test_review_expires_a_removed_profile_too() -> None:
    profile = in_pool()
    profile.update(quebec_doc(), T0 + timedelta(days=1))
    assert types(profile.review(rules.pool_expiry(T0))) == ["ProfileExpired"]


def test_an_invited_profile_does_not_expire_while_the_invitation_is_open() -> None:
    profile = invited()
    assert profile.review(rules.pool_expiry(T0) + timedelta(days=1)) == []
    assert profile.due_at(T0) is None


def test_review_removes_a_profile_whose_language_test_ran_out() -> None:
    profile = in_pool(datetime(2026, 6, 1, tzinfo=UTC))
    assert profile.review(datetime(2027, 2, 7, 23, 59, tzinfo=UTC)) == []
    events = profile.review(datetime(2027, 2, 8, tzinfo=UTC))
    assert types(events) == ["ProfileRemovedFromPool"]
    removed = events[0]
    assert isinstance(removed, ProfileRemovedFromPool)
    assert any("expired on 2027-02-08" in reason for reason in removed.reasons)


def test_review_publishes_a_change_of_eligible_programs() -> None:
    doc = eligible_doc()
    # Canadian skilled work for CEC, and the foreign IELTS test keeps FSW until 2027-02-08.
    doc["work_experience"].append(
        {
            "noc_code": "21231",
            "teer": 1,
            "country": "CA",
            "start": "2025-01-01",
            "end": None,
            "hours_per_week": 40,
            "self_employed": False,
            "while_full_time_student": False,
        }
    )
    doc["language_tests"].append(
        {
            "test": "CELPIP_G",
            "taken_on": "2026-01-10",
            "listening": 9,
            "reading": 9,
            "writing": 9,
            "speaking": 9,
        }
    )
    profile = Profile.create("p-1", OWNER, doc, T0)
    profile.submit(datetime(2026, 6, 1, tzinfo=UTC))
    assert profile.eligible_programs == ["fsw", "cec"]
    # The ECA (2025-01-20) is valid 5 years, so FSW survives: nothing changes on 2027-02-08.
    assert profile.review(datetime(2027, 2, 8, tzinfo=UTC)) == []


def test_due_at_is_the_earliest_of_expiry_and_the_next_recheck() -> None:
    profile = in_pool()
    assert profile.due_at(T0) == datetime(2025, 6, 8, tzinfo=UTC)  # the weekly re-check
    near_test_expiry = datetime(2027, 2, 5, 12, tzinfo=UTC)
    profile = in_pool(datetime(2026, 6, 1, tzinfo=UTC))
    assert profile.due_at(near_test_expiry) == datetime(2027, 2, 8, tzinfo=UTC)
    profile.withdraw(T0)
    assert profile.due_at(T0) is None


def test_next_recheck_on_looks_at_the_spouse_and_the_eca() -> None:
    doc = eligible_doc()
    assert rules.next_recheck_on(doc, date(2030, 1, 10)) == date(2030, 1, 17)
    assert rules.next_recheck_on(doc, date(2030, 1, 18)) == date(2030, 1, 20)  # the ECA's 5 years


def test_add_months_clamps_to_the_end_of_the_month() -> None:
    assert rules.add_months(datetime(2024, 2, 29, tzinfo=UTC), 12) == datetime(2025, 2, 28, tzinfo=UTC)
    assert rules.add_months(datetime(2025, 1, 31, tzinfo=UTC), 1) == datetime(2025, 2, 28, tzinfo=UTC)
    assert rules.add_months(datetime(2025, 12, 15, tzinfo=UTC), 12) == datetime(2026, 12, 15, tzinfo=UTC)


# --- nominations -----------------------------------------------------------------------------------------


def test_a_province_nominates_an_in_pool_profile_once() -> None:
    profile = in_pool()
    profile.nominate("ON", T0)
    issued = profile.pending[-1]
    assert isinstance(issued, NominationIssued) and issued.province == "ON"
    with pytest.raises(NominationConflict, match="from ON"):
        profile.nominate("BC", T0)
    with pytest.raises(NominationConflict):
        profile.nominate("ON", T0)


def test_only_profiles_in_the_pool_can_be_nominated() -> None:
    with pytest.raises(TransitionNotAllowed, match="not in the pool"):
        draft().nominate("ON", T0)
    with pytest.raises(TransitionNotAllowed, match="not in the pool"):
        invited().nominate("ON", T0)


def test_withdrawing_a_nomination_frees_the_candidate_for_another_province() -> None:
    profile = in_pool()
    profile.nominate("ON", T0)
    with pytest.raises(NominationNotFound):
        profile.withdraw_nomination("BC", T0)
    profile.withdraw_nomination("ON", T0)
    withdrawn = profile.pending[-1]
    assert isinstance(withdrawn, NominationWithdrawn) and withdrawn.province == "ON"
    profile.nominate("BC", T0)
    assert profile.nomination is not None and profile.nomination.province == "BC"
    assert replayed(profile).nomination == profile.nomination


def test_withdrawing_a_nomination_that_does_not_exist() -> None:
    with pytest.raises(NominationNotFound):
        in_pool().withdraw_nomination("ON", T0)


def test_expired_event_type_is_the_catalogue_one() -> None:
    profile = in_pool()
    profile.review(rules.pool_expiry(T0))
    assert isinstance(profile.pending[-1], ProfileExpired)
    assert EVENTS.to_wire(profile.pending[-1]).event_type() == "ee.profile.ProfileExpired.v1"


# --- erasure of personal data (docs/PRIVACY.md) -------------------------------------------------------

RETENTION = timedelta(days=30)


def with_identity() -> dict[str, Any]:
    doc = eligible_doc()
    doc["identity"] = {
        "family_name": "Doe",
        "given_names": "Jane",
        "email": "jane@example.org",
        "uci": None,
        "passport_number": "X1234567",
    }
    return doc


def test_ops_erase_a_never_invited_profile_in_the_pool_withdraws_it_first() -> None:
    profile = Profile.create("p-1", OWNER, with_identity(), T0)
    profile.submit(T0)
    profile.pending.clear()
    assert profile.erase(T0 + timedelta(hours=1), retention=RETENTION, ordered=True)
    assert [type(e).__name__ for e in profile.pending] == ["ProfileWithdrawn", "PersonalDataErased"]
    assert all(is_published(e) for e in profile.pending)
    assert profile.status is Status.WITHDRAWN and profile.erased_at == T0 + timedelta(hours=1)
    assert profile.document["identity"] is None and profile.document["date_of_birth"] == "1994-03-14"
    assert not profile.erase(T0 + timedelta(hours=2), retention=RETENTION, ordered=True)  # once
    with pytest.raises(TransitionNotAllowed):
        profile.update(with_identity(), T0 + timedelta(hours=3))
    replayed = Profile.replay(e for e in [*_created_and_submitted(), *profile.pending])
    assert replayed.erased_at == profile.erased_at and replayed.document["identity"] is None


def _created_and_submitted() -> list[DomainEvent]:
    profile = Profile.create("p-1", OWNER, with_identity(), T0)
    profile.submit(T0)
    return list(profile.pending)


def test_an_invited_profile_cannot_be_ordered_erased_and_a_locked_one_not_at_all() -> None:
    profile = invited()
    with pytest.raises(ProfileLocked):
        profile.erase(T0, retention=RETENTION, ordered=True)
    expired_at = T0 + timedelta(days=60)
    assert profile.invitation_expired(
        InvitationExpired(profile_id="p-1", owner=OWNER, invitation_id="ita-1", expired_at=expired_at)
    )
    with pytest.raises(TransitionNotAllowed, match="2025-08-30"):  # 60 days + 30 days of retention
        profile.erase(T0 + timedelta(days=61), retention=RETENTION, ordered=True)
    with pytest.raises(TransitionNotAllowed):
        profile.erase(T0 + timedelta(days=89), retention=RETENTION, ordered=False)
    assert profile.erase(T0 + timedelta(days=90), retention=RETENTION, ordered=False)
    assert profile.pending[-1].reason == "invitation_expired"  # type: ignore[attr-defined]


def test_a_withdrawn_profile_is_due_for_erasure_after_the_retention_only() -> None:
    profile = in_pool()
    profile.withdraw(T0)
    assert profile.erasable_at(RETENTION) == T0 + RETENTION
    with pytest.raises(TransitionNotAllowed):
        profile.erase(T0 + RETENTION - timedelta(seconds=1), retention=RETENTION, ordered=False)
    assert profile.erase(T0 + RETENTION, retention=RETENTION, ordered=False)
    assert profile.erasable_at(RETENTION) is None
    restored = Profile.restore(profile.snapshot())
    assert restored.erased_at == profile.erased_at and restored.closed_at == T0


# --- the parsed-document memo (rules.parse / rules.remember) ---------------------------------------------


def test_parse_answers_the_remembered_model_for_that_dict_only() -> None:
    model = rules.parse(copy.deepcopy(PROFILE_DOCUMENT_EXAMPLE))
    dumped = model.model_dump(mode="json")
    rules.remember(dumped, model)
    assert rules.parse(dumped) is model
    equal_but_another = copy.deepcopy(dumped)
    parsed = rules.parse(equal_but_another)
    assert parsed is not model and parsed == model


def test_parse_keeps_the_documents_of_commands_in_flight_together() -> None:
    # Commands interleave at their awaits (4 worked on at once by default): each one's document is
    # still parsed once, with several times that many parsed in between.
    example = PROFILE_DOCUMENT_EXAMPLE
    documents = [{**copy.deepcopy(example), "sibling_in_canada": n % 2 == 0} for n in range(24)]
    models = [rules.parse(document) for document in documents]
    assert [rules.parse(document) for document in documents] == models
    assert all(rules.parse(d) is m for d, m in zip(documents, models, strict=True))
    assert [m.sibling_in_canada for m in models] == [n % 2 == 0 for n in range(24)]


def test_parse_keeps_a_bounded_number_of_documents() -> None:
    # Each kept document is a few hundred objects the collector walks in every young collection.
    documents = [{**copy.deepcopy(PROFILE_DOCUMENT_EXAMPLE), "family_size": n % 5 + 1} for n in range(100)]
    models = [rules.parse(document) for document in documents]
    assert rules.parse(documents[-1]) is models[-1]
    assert rules.parse(documents[0]) is not models[0]  # long gone: parsed again
    assert rules.parse(documents[0]) == models[0]
