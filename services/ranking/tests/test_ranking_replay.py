"""The rebuild's replay, pure parts: reading a record the fast way decides exactly what the consumer's
reading decides, and merging everything before scoring once gives the rows the batches would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from ranking_factories import (
    DOB_416,
    DOB_432,
    DOB_INELIGIBLE,
    NOW,
    SENIOR_MANAGER_OFFER,
    ProfileStream,
    declined,
    document,
    envelope,
    invited,
    pid,
)

from ranking_service.adapters.repository import COPY_COLUMNS, _values
from ranking_service.application.events import EVENTS
from ranking_service.application.projection import Item as BatchItem
from ranking_service.application.projection import _apply_items, _evaluate_all, rejection
from ranking_service.domain.candidate import CandidateRow
from ranking_service.replay import DeadRecord, Item, Merge, read_item, split
from ranking_service.replay import merge as merge_module
from ranking_service.replay.decode import _fast_read
from shared.decisions import MAX_RETRIES, Action, UnreadableEvent, handler_failed, judge, read_event
from shared.domain_events import CandidateFact
from shared.envelope import encode
from shared.events.catalogue import Event, RoundOfInvitationsHeld
from shared.rules.crs import CURRENT_RULES, IN_FORCE

A, B, C = pid(1), pid(2), pid(3)


def raw(event: Event, version: int | None = None) -> bytes:
    return encode(envelope(event, version))


def stream_events() -> list[tuple[Event, int]]:
    stream = ProfileStream(A)
    stream.created(document(DOB_416))
    stream.submitted(document(DOB_416), at=NOW - timedelta(days=3))
    stream.updated(document(DOB_432), at=NOW - timedelta(days=1))
    stream.updated(document(DOB_432), status="withdrawn")
    stream.nominated("BC")
    stream.withdrawn()
    return stream.events


# --- reading ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("index", range(6))
def test_the_fast_read_gives_the_consumers_event(index: int) -> None:
    event, version = stream_events()[index]
    value = raw(event, version)
    envelope_, expected = read_event(value)
    item = read_item(value)
    assert item == Item(A, "partner-1", EVENTS.to_domain(expected), version, envelope_.id)
    assert type(item.event) is EVENTS.domain_type(type(expected))


def test_document_events_are_read_without_pydantic_and_equal_the_validated_ones() -> None:
    for event, version in stream_events()[:4]:
        value = raw(event, version)
        fast = _fast_read(value)
        assert fast is not None, type(event).__name__
        assert fast[2] == EVENTS.to_domain(read_event(value)[1])


def test_an_update_without_submission_instants_reads_the_same() -> None:
    stream = ProfileStream(A)
    stream.created(document())
    event, version = stream.updated(document(), status="draft")  # submitted_at / expires_at: None
    value = raw(event, version)
    assert _fast_read(value) is not None
    envelope_, event = read_event(value)
    assert read_item(value) == Item(A, "partner-1", EVENTS.to_domain(event), version, envelope_.id)


def _mangled(change: Any) -> bytes:
    event, version = ProfileStream(A).submitted(document())
    body = orjson.loads(raw(event, version))
    change(body)
    return orjson.dumps(body)


MANGLED = {
    "extra data field": lambda b: b["data"].update(colour="blue"),
    "missing owner": lambda b: b["data"].pop("owner"),
    "owner not a string": lambda b: b["data"].update(owner=7),
    "document not an object": lambda b: b["data"].update(document=["x"]),
    "programs not strings": lambda b: b["data"].update(eligible_programs=[1]),
    "instant without offset": lambda b: b["data"].update(submitted_at="2026-05-01T10:00:00"),
    "instant not a date": lambda b: b["data"].update(submitted_at="yesterday"),
    "instant as a number": lambda b: b["data"].update(submitted_at=1_700_000_000),
    "date-only instant": lambda b: b["data"].update(expires_at="2027-05-01"),
    "version as text": lambda b: b.update(aggregateversion="2"),
    "bad envelope time": lambda b: b.update(time="noon"),
    "missing id": lambda b: b.pop("id"),
    "other specversion": lambda b: b.update(specversion="0.3"),
    "data not an object": lambda b: b.update(data=[1]),
}


@pytest.mark.parametrize("name", sorted(MANGLED))
def test_whatever_the_fast_read_does_not_recognise_is_decided_by_the_consumers_reading(name: str) -> None:
    value = _mangled(MANGLED[name])
    assert _fast_read(value) is None
    try:
        envelope_, event = read_event(value)
    except UnreadableEvent as exc:
        with pytest.raises(DeadRecord) as dead:
            read_item(value)
        assert (dead.value.reason, dead.value.error) == (exc.reason, exc.error)
    else:  # pydantic accepts it (a lenient instant, say): the replay applies what the consumer applies
        expected = EVENTS.to_domain(event)
        assert read_item(value) == Item(A, "partner-1", expected, envelope_.aggregateversion, envelope_.id)


@pytest.mark.parametrize("value", [b"", b"not json", b"[1, 2]", b'{"specversion": "1.0"}'])
def test_garbage_is_dead_lettered_with_the_consumers_reason(value: bytes) -> None:
    with pytest.raises(UnreadableEvent) as expected:
        read_event(value)
    with pytest.raises(DeadRecord) as dead:
        read_item(value)
    assert dead.value.reason == expected.value.reason


def test_unknown_types_and_types_without_a_handler_are_skipped() -> None:
    body = orjson.loads(raw(*ProfileStream(A).created(document())))
    body["type"] = "ee.profile.ProfileCreated.v9"
    assert read_item(orjson.dumps(body)) is None
    held = RoundOfInvitationsHeld(
        round_id="r-1", round_number=1, round_type="general", size=10, invitations_count=10, cutoff_crs=500,
        tie_break_at=NOW, held_at=NOW,
    )  # fmt: skip
    assert read_item(raw(held)) is None


def test_a_profile_id_the_handler_refuses_is_dead_lettered_as_after_the_retries() -> None:
    event, version = ProfileStream("not-a-uuid").created(document())
    with pytest.raises(DeadRecord) as dead:
        read_item(raw(event, version))
    assert dead.value.error == "ValueError"
    assert dead.value.reason == (
        "handler for ee.profile.ProfileCreated.v1 failed 3 times; last error: "
        "ValueError(\"profile_id 'not-a-uuid' is not a canonical lowercase UUID\")"
    )
    # Not a copy: the consumer's own reason, retry count and the projection's own refusal.
    fact = EVENTS.to_domain(event)
    assert isinstance(fact, CandidateFact)
    refusal = rejection(fact)
    assert refusal is not None and MAX_RETRIES == 3
    assert (dead.value.reason, dead.value.error) == handler_failed(event.event_type(), refusal)


HELD = RoundOfInvitationsHeld(
    round_id="r-1", round_number=1, round_type="general", size=10, invitations_count=10, cutoff_crs=500,
    tie_break_at=NOW, held_at=NOW,
)  # fmt: skip
JUDGED = {
    "garbage": b"not json",
    "not an envelope": b'{"specversion": "1.0"}',
    "unknown type": _mangled(lambda b: b.update(type="ee.profile.ProfileTeleported.v1")),
    "no handler here": raw(HELD),
    "nominated": raw(*ProfileStream(A).nominated("BC")),
}


@pytest.mark.parametrize("name", sorted(JUDGED))
def test_the_replay_decides_each_record_as_the_consumer_judges_it(name: str) -> None:
    value = JUDGED[name]
    verdict = judge(value, {model.event_name() for model in EVENTS.wire_models})
    if verdict.action is Action.DEAD_LETTER:
        with pytest.raises(DeadRecord) as dead:
            read_item(value)
        assert (dead.value.reason, dead.value.error) == (verdict.reason, verdict.error)
    elif verdict.action is Action.APPLY:
        item = read_item(value)
        assert item is not None and verdict.event is not None
        assert item.event == EVENTS.to_domain(verdict.event)
    else:
        assert read_item(value) is None


# --- merging and writing -------------------------------------------------------------------------


def items(*pairs: tuple[Event, int | None]) -> list[Item]:
    out = []
    for event, version in pairs:
        item = read_item(raw(event, version))
        assert item is not None
        out.append(item)
    return out


def test_merging_everything_then_scoring_once_gives_the_rows_of_the_batches() -> None:
    a, b, c = ProfileStream(A), ProfileStream(B), ProfileStream(C)
    events: list[tuple[Event, int | None]] = [
        a.created(document(DOB_416)), a.submitted(document(DOB_416)), (invited(A, "ita-1"), None),
        (declined(A, "ita-1"), None), b.created(document(DOB_432)), b.submitted(document(DOB_432)),
        b.nominated("BC"), c.created(document(DOB_INELIGIBLE)), c.submitted(document(DOB_INELIGIBLE)),
        (invited(B, "ita-2"), None), (declined(B, "ita-2"), None),
    ]  # fmt: skip
    merge = Merge()
    for item in items(*events):
        merge.apply(item)
    replayed = {row[0]: row for row in merge.rows(NOW, CURRENT_RULES.name, sorted(merge.changed))}

    # The live path, one batch per event (each profile evaluated after each of its events).
    rows: dict[str, CandidateRow] = {}
    for item in items(*events):
        batch = BatchItem(item.profile_id, item.owner, item.event, item.version, "t:0", 1)
        changed = _apply_items(rows, [batch])
        _evaluate_all([rows[profile_id] for profile_id in changed], NOW, CURRENT_RULES)
    assert sorted(replayed) == [A, B, C]
    for profile_id, row in rows.items():
        live = _values(row)
        rebuilt = dict(zip(COPY_COLUMNS, replayed[profile_id], strict=True))
        assert rebuilt.pop("updated_at") == NOW
        assert rebuilt.pop("revision") == 1
        assert rebuilt == {name: value for name, value in live.items() if name != "revision"}


@pytest.mark.parametrize("held", [1, 2, 3, 1_000])
def test_documents_held_unencoded_give_the_same_rows(held: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Documents are encoded in groups, a replaced one never: the rows are those of encoding each
    document event at once, and an erasure drops a document still held."""
    a, b, c = ProfileStream(A), ProfileStream(B), ProfileStream(C)
    events: list[tuple[Event, int | None]] = [
        a.created(document(DOB_416)), b.created(document(DOB_432)), a.submitted(document(DOB_432)),
        c.created(document(DOB_INELIGIBLE)), b.submitted(document(DOB_432)), c.erased(),
        a.updated(document(DOB_416)), b.withdrawn(), b.erased(),
    ]  # fmt: skip
    monkeypatch.setattr(merge_module, "PENDING_DOCUMENTS", held)
    merge = Merge()
    for item in items(*events):
        merge.apply(item)
    assert len(merge.pending) < held
    rows = {row[0]: row for row in merge.rows(NOW, CURRENT_RULES.name, sorted(merge.changed))}
    assert merge.pending == {}
    assert set(merge.documents) == {A}
    assert orjson.loads(merge.documents[A]) == document(DOB_416)

    monkeypatch.setattr(merge_module, "PENDING_DOCUMENTS", 1)  # each encoded when applied
    at_once = Merge()
    for item in items(*events):
        at_once.apply(item)
    assert at_once.documents == merge.documents
    assert rows == {row[0]: row for row in at_once.rows(NOW, CURRENT_RULES.name, sorted(at_once.changed))}
    document_column = COPY_COLUMNS.index("document")
    assert [rows[p][document_column] is None for p in (A, B, C)] == [False, True, True]


def test_repeats_change_nothing_and_a_profile_event_without_version_counts_once() -> None:
    stream = ProfileStream(A)
    created, version = stream.created(document())
    merge = Merge()
    twice = items((created, version), (created, version))
    for item in twice:
        merge.apply(item)
    assert (merge.stats.applied, merge.stats.unchanged) == (1, 1)
    versionless = read_item(raw(created))
    assert versionless is not None
    other = Merge()
    other.apply(versionless)
    other.apply(versionless)  # the same event id again: the consumer's claim would drop it
    assert (other.stats.applied, other.stats.unchanged) == (1, 1)


def test_a_copy_record_carries_the_document_as_given() -> None:
    merge = Merge()
    for item in items(ProfileStream(A).created(document())):
        merge.apply(item)
    (record,) = merge.rows(NOW, CURRENT_RULES.name, [A])
    row = dict(zip(COPY_COLUMNS, record, strict=True))
    assert row["document"] == merge.documents[A]
    assert orjson.loads(row["document"]) == document()
    assert (row["status"], row["in_pool"], row["reason"]) == ("draft", False, "not_submitted")
    assert row["revision"] == 1
    assert merge.facts[A].document is None  # kept as bytes between events and after scoring


def test_partitions_are_shared_out_by_their_number_of_events() -> None:
    partitions = [("t", 0, 0, 100), ("t", 1, 0, 10), ("t", 2, 50, 120), ("t", 3, 0, 0), ("t", 4, 0, 60)]
    shards = split(partitions, 2)
    assert sorted(sum(end - begin for _, _, begin, end in shard) for shard in shards) == [110, 130]
    assert sorted(p for shard in shards for p in shard) == sorted(partitions)
    assert split([], 2) == [[]]


def test_a_replay_scores_each_day_with_the_rules_in_force_across_2025_03_25() -> None:
    # A senior manager's job offer: 200 points under the grid in force until 2025-03-24, none after.
    before, after = datetime(2025, 3, 24, 12, tzinfo=UTC), datetime(2025, 3, 25, 12, tzinfo=UTC)
    stream = ProfileStream(A)
    offered = document(DOB_416, job_offer=SENIOR_MANAGER_OFFER)
    events = [stream.created(offered, at=before), stream.submitted(offered, at=before)]
    scores = {}
    for now in (before, after):
        merge = Merge()
        for item in items(*events):
            merge.apply(item)
        (record,) = merge.rows(now, IN_FORCE, [A])
        row = dict(zip(COPY_COLUMNS, record, strict=True))
        assert row["in_pool"]
        scores[now] = (row["crs"], row["rules_version"])
    assert scores[before][1] == "2020-10-27" and scores[after][1] == "2025-03-25"
    assert scores[before][0] - scores[after][0] == 200
    # The live path decides the same, and pinning a version scores every day with it.
    rows: dict[str, CandidateRow] = {}
    for item in items(*events):
        _apply_items(rows, [BatchItem(item.profile_id, item.owner, item.event, item.version, "t:0", 1)])
    (live,) = _evaluate_all([rows[A]], before, None)
    assert live.row.standing.scored is not None
    assert (live.row.standing.scored.crs, live.row.standing.scored.rules_version) == scores[before]
    (pinned,) = _evaluate_all([rows[A]], before, CURRENT_RULES)
    assert pinned.row.standing.scored is not None
    assert (pinned.row.standing.scored.crs, pinned.row.standing.scored.rules_version) == scores[after]
