"""The per-profile state machine: merging facts from three topics, standing, and what changed (pure)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import timedelta

import pytest
from ranking_factories import (
    DOB_394,
    DOB_416,
    DOB_432,
    DOB_INELIGIBLE,
    NOW,
    ProfileStream,
    applied,
    declined,
    document,
    invitation_expired,
    invited,
    pid,
)

from ranking_service.application.events import EVENTS
from ranking_service.domain.candidate import (
    NO_STANDING,
    Change,
    InvitationState,
    ProfileFacts,
    Reason,
    Standing,
    Status,
    apply_event,
    change_between,
    evaluate,
)
from shared.events.catalogue import Event
from shared.rules.crs import CURRENT_RULES, RULES_2020_10_27

P = pid(1)


def facts_of(events: Sequence[tuple[Event, int | None]]) -> ProfileFacts:
    facts = ProfileFacts(P, "")
    for event, version in events:
        apply_event(facts, EVENTS.to_domain(event), version)
    return facts


def standing_of(events: Sequence[tuple[Event, int | None]], at: object = NOW) -> Standing:
    return evaluate(facts_of(events), NO_STANDING, NOW, CURRENT_RULES)


def submitted_stream(dob: str = DOB_416) -> ProfileStream:
    stream = ProfileStream(P)
    stream.created(document(dob))
    stream.submitted(document(dob))
    return stream


# --- entering, updating, leaving ------------------------------------------------------------------


def test_a_submitted_eligible_profile_stands_in_the_pool_with_its_score() -> None:
    standing = standing_of(submitted_stream().events)
    assert standing.in_pool and standing.reason is None
    assert standing.scored is not None
    assert (standing.scored.crs, standing.scored.programs) == (416, ("fsw",))
    assert standing.scored.rules_version == CURRENT_RULES.name
    assert standing.rescore_at is not None and standing.rescore_at > NOW


def test_a_draft_is_not_in_the_pool() -> None:
    stream = ProfileStream(P)
    stream.created(document())
    standing = standing_of(stream.events)
    assert not standing.in_pool and standing.reason is Reason.NOT_SUBMITTED and standing.scored is None


def test_an_update_rescores_and_keeps_the_first_submission_instant() -> None:
    stream = submitted_stream()
    first = stream.submitted_at
    stream.updated(document(DOB_432))
    stream.submitted(document(DOB_432), at=NOW + timedelta(days=3))  # a resubmission repeats it
    facts = facts_of(stream.events)
    assert facts.submitted_at == first
    assert evaluate(facts, NO_STANDING, NOW, CURRENT_RULES).scored.crs == 432  # type: ignore[union-attr]


def test_a_nomination_adds_600_and_pnp_and_its_withdrawal_takes_them_back() -> None:
    stream = submitted_stream()
    stream.nominated("BC")
    nominated = standing_of(stream.events)
    assert nominated.scored is not None and nominated.scored.crs == 1016
    assert nominated.scored.programs == ("fsw", "pnp")
    assert facts_of(stream.events).province == "BC"
    stream.nomination_withdrawn("BC")
    withdrawn = standing_of(stream.events)
    assert withdrawn.scored is not None and (withdrawn.scored.crs, withdrawn.scored.programs) == (
        416,
        ("fsw",),
    )


def test_an_ineligible_submitted_profile_stays_out_but_keeps_being_looked_at() -> None:
    standing = standing_of(submitted_stream(DOB_INELIGIBLE).events)
    assert not standing.in_pool and standing.reason is Reason.INELIGIBLE
    assert standing.active  # time may make it eligible (or not): the scheduler looks again


@pytest.mark.parametrize(
    ("leave", "reason"),
    [
        (lambda s: s.withdrawn(), Reason.WITHDRAWN),
        (lambda s: s.expired(), Reason.EXPIRED),
        (lambda s: s.removed(), Reason.REMOVED),
    ],
)
def test_profile_events_take_a_profile_out(leave: object, reason: Reason) -> None:
    stream = submitted_stream()
    leave(stream)  # type: ignore[operator]
    standing = standing_of(stream.events)
    assert not standing.in_pool and standing.reason is reason and not standing.active


def test_withdrawn_and_expired_profiles_never_come_back() -> None:
    stream = submitted_stream()
    stream.withdrawn()
    stream.updated(document(), status="in_pool")
    stream.submitted(document())
    assert facts_of(stream.events).status is Status.WITHDRAWN


def test_personal_data_erased_drops_the_document_and_keeps_the_profile_out_for_good() -> None:
    stream = submitted_stream()
    stream.withdrawn()
    stream.erased()
    facts = facts_of(stream.events)
    assert facts.status is Status.WITHDRAWN and facts.document is None
    standing = standing_of(stream.events)
    assert not standing.in_pool and standing.reason is Reason.WITHDRAWN


def test_a_removed_profile_may_be_submitted_again() -> None:
    stream = submitted_stream()
    stream.removed()
    stream.submitted(document())
    assert standing_of(stream.events).in_pool


def test_the_twelve_months_running_out_takes_a_profile_out_without_an_event() -> None:
    facts = facts_of(submitted_stream().events)
    facts.expires_at = NOW + timedelta(hours=3)
    before = evaluate(facts, NO_STANDING, facts.expires_at - timedelta(seconds=1), CURRENT_RULES)
    after = evaluate(facts, before, facts.expires_at, CURRENT_RULES)
    assert before.in_pool and before.rescore_at is not None and before.rescore_at <= facts.expires_at
    assert not after.in_pool and after.reason is Reason.EXPIRED


# --- versions and invitations: a deterministic merge -----------------------------------------------


def test_an_older_profile_version_is_ignored() -> None:
    stream = submitted_stream()
    newer = stream.updated(document(DOB_432))
    older = (stream.events[1][0], 2)  # the submission again, as a late redelivery
    facts = facts_of([*stream.events[:2], newer, older])
    assert facts.version == 3 and facts.document is not None
    assert facts.document["date_of_birth"] == DOB_432


def test_invited_then_declined_comes_back_with_the_original_submission_instant() -> None:
    stream = submitted_stream()
    invitation = invited(P, "ita-1")
    out = standing_of([*stream.events, (invitation, None)])
    assert not out.in_pool and out.reason is Reason.INVITED
    back = facts_of([*stream.events, (invitation, None), (declined(P, "ita-1"), None)])
    assert evaluate(back, out, NOW, CURRENT_RULES).in_pool
    assert back.submitted_at == stream.submitted_at


def test_declined_beats_invited_whatever_the_arrival_order() -> None:
    stream = submitted_stream()
    facts = facts_of([(declined(P, "ita-1"), None), *stream.events, (invited(P, "ita-1"), None)])
    assert facts.invitations == {"ita-1": InvitationState.DECLINED}
    assert evaluate(facts, NO_STANDING, NOW, CURRENT_RULES).in_pool


@pytest.mark.parametrize(
    ("closing", "reason"), [(invitation_expired, Reason.INVITATION_EXPIRED), (applied, Reason.APPLIED)]
)
def test_an_expired_or_used_invitation_keeps_the_profile_out_for_good(
    closing: object, reason: Reason
) -> None:
    stream = submitted_stream()
    events = [*stream.events, (closing(P, "ita-1"), None), (invited(P, "ita-1"), None)]  # type: ignore[operator]
    events.append((declined(P, "ita-1"), None))  # cannot undo it
    stream.updated(document(), status="in_pool")
    standing = standing_of([*events, stream.events[-1]])
    assert not standing.in_pool and standing.reason is reason


def test_a_second_invitation_after_a_declined_one_takes_the_profile_out_again() -> None:
    events = [*submitted_stream().events, (invited(P, "ita-1"), None), (declined(P, "ita-1"), None)]
    standing = standing_of([*events, (invited(P, "ita-2"), None)])
    assert not standing.in_pool and standing.reason is Reason.INVITED


def _interleavings(
    topics: list[list[tuple[Event, int | None]]], rng: random.Random
) -> list[tuple[Event, int | None]]:
    """One random merge of the topics that keeps each topic's own order (what a rebuild may see)."""
    queues = [list(topic) for topic in topics if topic]
    merged = []
    while queues:
        queue = rng.choice(queues)
        merged.append(queue.pop(0))
        queues = [q for q in queues if q]
    return merged


def test_any_interleaving_of_the_topics_gives_the_same_facts_and_standing() -> None:
    stream = submitted_stream(DOB_432)
    stream.nominated("ON")
    stream.updated(document(DOB_394))
    profile_topic: list[tuple[Event, int | None]] = list(stream.events)
    draws_topic: list[tuple[Event, int | None]] = [(invited(P, "ita-1"), None), (invited(P, "ita-2"), None)]
    applications_topic: list[tuple[Event, int | None]] = [
        (declined(P, "ita-1"), None),
        (declined(P, "ita-2"), None),
    ]
    expected = facts_of([*profile_topic, *draws_topic, *applications_topic])
    rng = random.Random(7)
    for _ in range(200):
        merged = _interleavings([profile_topic, draws_topic, applications_topic], rng)
        assert facts_of(merged) == expected
    standing = evaluate(expected, NO_STANDING, NOW, CURRENT_RULES)
    assert standing.in_pool and standing.scored is not None and standing.scored.crs == 394 + 600


# --- rescoring and change detection ----------------------------------------------------------------


def test_a_standing_is_not_rescored_when_nothing_it_depends_on_moved() -> None:
    facts = facts_of(submitted_stream().events)
    first = evaluate(facts, NO_STANDING, NOW, CURRENT_RULES)
    again = evaluate(facts, first, NOW + timedelta(hours=1), CURRENT_RULES)
    assert again.scored is first.scored  # same day, facts and rules: the very same object


def test_another_rules_version_or_day_rescores() -> None:
    doc = document(job_offer={
        "noc_code": "00012", "teer": 0, "employer": "Acme Ltd", "full_time": True, "non_seasonal": True,
        "duration_months": None, "lmia_or_exempt": True, "canadian_armed_forces": False,
    })  # fmt: skip
    stream = ProfileStream(P)
    stream.submitted(doc)
    facts = facts_of(stream.events)
    current = evaluate(facts, NO_STANDING, NOW, CURRENT_RULES)
    old = evaluate(facts, current, NOW, RULES_2020_10_27)
    assert old.scored is not None and current.scored is not None
    assert old.scored.crs == current.scored.crs + 200
    assert change_between(current, old) is Change.MOVED
    tomorrow = evaluate(facts, current, NOW + timedelta(days=1), CURRENT_RULES)
    assert tomorrow.scored is not current.scored and tomorrow.scored_on == NOW.date() + timedelta(days=1)


def test_change_between_standings() -> None:
    stream = submitted_stream()
    inside = standing_of(stream.events)
    out = standing_of([*stream.events, (invited(P, "x"), None)])
    assert change_between(NO_STANDING, inside) is Change.ENTERED
    assert change_between(inside, out) is Change.LEFT
    assert change_between(out, out) is Change.NONE
    assert change_between(inside, inside) is Change.NONE


def test_an_invalid_document_is_unscorable_not_an_error() -> None:
    stream = ProfileStream(P)
    stream.submitted({"date_of_birth": "not a date"})
    standing = standing_of(stream.events)
    assert not standing.in_pool and standing.reason is Reason.UNSCORABLE and not standing.active
