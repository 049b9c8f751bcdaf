"""The pure rules of rounds: selection, tie-break, program invited under, cut-off, published record."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from draws_service.domain import (
    Candidate,
    InvalidRound,
    RoundKind,
    RoundType,
    hold,
    published_timestamp,
    round_name,
    select,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
_ids = itertools.count(1)


def cand(
    crs: int,
    minutes: int = 0,
    programs: tuple[str, ...] = ("fsw",),
    categories: tuple[str, ...] = (),
    pid: str | None = None,
) -> Candidate:
    return Candidate(
        profile_id=pid or str(uuid.UUID(int=next(_ids))),
        owner="partner-1",
        crs=crs,
        submitted_at=T0 + timedelta(minutes=minutes),
        programs=frozenset(programs),
        categories=frozenset(categories),
        citizenship="IN",
    )


def general() -> RoundType:
    return RoundType.parse("general")


def test_round_types_parse_and_classify() -> None:
    assert RoundType.parse("general").kind is RoundKind.GENERAL
    assert RoundType.parse("CEC").kind is RoundKind.PROGRAM
    assert RoundType.parse("healthcare").kind is RoundKind.CATEGORY
    assert RoundType.parse("pnp").program == "pnp"
    assert RoundType.parse("french").category == "french"


def test_unknown_round_type_names_the_choices() -> None:
    with pytest.raises(InvalidRound, match=r"unknown round type 'lottery'.*general.*cec.*french"):
        RoundType.parse("lottery")


@pytest.mark.parametrize("size", [0, -5, 100_001])
def test_size_out_of_range_is_refused(size: int) -> None:
    with pytest.raises(InvalidRound, match="size must be between 1 and 100,000"):
        select(general(), size, [], set())


def test_top_candidates_by_score() -> None:
    pool = [cand(450), cand(520), cand(480), cand(700)]
    chosen = select(general(), 2, pool, set())
    assert [c.crs for c in chosen.invited] == [700, 520]
    assert chosen.cutoff_crs == 520


def test_tie_at_the_cutoff_is_broken_by_submission_time() -> None:
    late, early, middle = cand(500, minutes=30), cand(500, minutes=5), cand(500, minutes=10)
    chosen = select(general(), 3, [cand(600), late, early, middle], set())
    assert [c.profile_id for c in chosen.invited[1:]] == [early.profile_id, middle.profile_id]
    assert late not in chosen.invited
    assert chosen.cutoff_crs == 500
    assert chosen.tie_break_at == middle.submitted_at


def test_same_score_and_time_falls_back_to_profile_id() -> None:
    a = cand(500, pid="00000000-0000-0000-0000-00000000000a")
    b = cand(500, pid="00000000-0000-0000-0000-00000000000b")
    assert select(general(), 1, [b, a], set()).invited == (a,)


def test_tie_break_is_the_last_invited_even_when_the_cutoff_has_no_tie() -> None:
    chosen = select(general(), 2, [cand(600, minutes=50), cand(550, minutes=70), cand(500, minutes=1)], set())
    assert chosen.cutoff_crs == 550
    assert chosen.tie_break_at == T0 + timedelta(minutes=70)


def test_program_round_invites_only_that_program() -> None:
    cec = cand(400, programs=("cec",))
    fsw = cand(800, programs=("fsw",))
    both = cand(450, programs=("fsw", "cec"))
    chosen = select(RoundType.parse("cec"), 10, [cec, fsw, both], set())
    assert chosen.invited == (both, cec)


def test_pnp_round_invites_only_nominated_candidates() -> None:
    nominated = cand(1000, programs=("pnp", "fsw"))
    chosen = select(RoundType.parse("pnp"), 10, [nominated, cand(900, programs=("fsw", "cec"))], set())
    assert chosen.invited == (nominated,)


def test_category_round_invites_only_that_category() -> None:
    nurse = cand(430, categories=("healthcare",))
    engineer = cand(520, categories=("stem",))
    francophone_nurse = cand(410, categories=("healthcare", "french"))
    chosen = select(RoundType.parse("healthcare"), 10, [nurse, engineer, francophone_nurse], set())
    assert chosen.invited == (nurse, francophone_nurse)


def test_a_candidate_in_no_program_is_never_invited() -> None:
    stale = cand(900, programs=(), categories=("french",))
    assert select(RoundType.parse("french"), 10, [stale], set()).invited == ()
    assert select(general(), 10, [stale], set()).invited == ()


def test_a_round_larger_than_the_eligible_pool_invites_everyone_eligible() -> None:
    pool = [cand(400 + i, categories=("stem",) if i % 2 else ()) for i in range(10)]
    chosen = select(RoundType.parse("stem"), 1000, pool, set())
    assert chosen.count == 5
    assert chosen.size == 1000
    assert chosen.cutoff_crs == 401


def test_open_invitations_are_skipped_and_the_next_candidate_moves_up() -> None:
    invited_before, next_one = cand(800), cand(500)
    chosen = select(general(), 1, [invited_before, next_one], {invited_before.profile_id})
    assert chosen.invited == (next_one,)


def test_a_candidate_listed_twice_is_invited_once() -> None:
    once = cand(700)
    assert select(general(), 5, [once, once, cand(600)], set()).count == 2


def test_empty_selection_has_no_cutoff() -> None:
    chosen = select(RoundType.parse("military"), 10, [cand(900)], set())
    assert (chosen.count, chosen.cutoff_crs, chosen.tie_break_at) == (0, None, None)


@pytest.mark.parametrize(
    ("programs", "expected"),
    [
        (("fsw", "cec", "fst", "pnp"), "pnp"),
        (("fsw", "cec", "fst"), "cec"),
        (("fst", "fsw"), "fsw"),
        (("fst",), "fst"),
    ],
)
def test_general_round_invites_under_pnp_then_cec_then_fsw_then_fst(
    programs: tuple[str, ...], expected: str
) -> None:
    assert general().program_for(cand(500, programs=programs)) == expected


def test_program_round_invites_under_its_own_program() -> None:
    assert RoundType.parse("fsw").program_for(cand(500, programs=("pnp", "cec", "fsw"))) == "fsw"


def test_category_round_invites_under_the_priority_program() -> None:
    candidate = cand(500, programs=("fsw", "cec"), categories=("trades",))
    assert RoundType.parse("trades").program_for(candidate) == "cec"


def test_distribution_counts_the_invited_per_published_bin() -> None:
    chosen = select(general(), 10, [cand(1100), cand(605), cand(495), cand(491), cand(300), cand(0)], set())
    bins = dict(chosen.distribution())
    assert bins["601-1200"] == 2
    assert bins["491-500"] == 2
    assert bins["0-300"] == 2
    assert sum(bins.values()) == 6
    assert next(iter(bins)) == "601-1200" and list(bins)[-1] == "0-300"


def test_holding_issues_ranked_invitations_due_in_60_days() -> None:
    held_at = datetime(2026, 9, 15, 14, 30, tzinfo=UTC)
    chosen = select(
        general(), 3, [cand(500, programs=("fst", "fsw")), cand(700, programs=("pnp", "fsw"))], set()
    )
    ids = iter(["i-1", "i-2"])
    held = hold(
        chosen,
        round_id="r-1",
        round_number=7,
        held_at=held_at,
        category_version=None,
        new_id=lambda: next(ids),
    )
    first, second = held.invitations
    assert (first.rank, first.crs, first.program, first.invitation_id) == (1, 700, "pnp", "i-1")
    assert (second.rank, second.crs, second.program) == (2, 500, "fsw")
    assert first.deadline == datetime(2026, 11, 14, 14, 30, tzinfo=UTC)
    assert first.invited_at == held_at and first.round_number == 7
    record = held.record
    assert (record.invitations_count, record.cutoff_crs, record.size) == (2, 500, 3)
    assert record.tie_break_at == chosen.invited[-1].submitted_at


def test_published_record_reads_like_the_ircc_feed() -> None:
    chosen = select(
        RoundType.parse("senior_managers"),
        250,
        [cand(389, minutes=0, categories=("senior_managers",))],
        set(),
    )
    record = hold(
        chosen,
        round_id="r",
        round_number=444,
        held_at=datetime(2026, 9, 16, 13, 0, tzinfo=UTC),
        category_version="2026-Version 1",
        new_id=lambda: "x",
    ).record
    feed = record.ircc_feed()
    assert feed["drawNumber"] == "444"
    assert feed["drawDate"] == "2026-09-16"
    assert feed["drawName"] == "Senior managers with Canadian Work Experience, 2026-Version 1"
    assert feed["drawCRS"] == "389"
    assert feed["drawCutOff"] == "March 01, 2026 at 12:00:00 UTC"


def test_thousands_separator_in_published_size() -> None:
    pool = [cand(500, minutes=i) for i in range(2000)]
    chosen = select(general(), 2000, pool, set())
    record = hold(
        chosen, round_id="r", round_number=1, held_at=T0, category_version=None, new_id=lambda: "x"
    ).record
    assert record.ircc_feed()["drawSize"] == "2,000"


def test_round_names() -> None:
    assert round_name(general()) == "General"
    assert round_name(RoundType.parse("cec")) == "Canadian Experience Class"
    assert (
        round_name(RoundType.parse("french"), "2026-Version 2")
        == "French-Language proficiency 2026-Version 2"
    )
    assert (
        round_name(RoundType.parse("healthcare"), "2026-Version 3")
        == "Healthcare and Social Services Occupations, 2026-Version 3"
    )


def test_published_timestamp_is_utc() -> None:
    eastern = datetime(2026, 9, 1, 19, 5, 13, tzinfo=UTC).astimezone(ZoneInfo("America/Toronto"))
    assert published_timestamp(eastern) == "September 01, 2026 at 19:05:13 UTC"
