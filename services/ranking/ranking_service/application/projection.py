"""The ranking projection: profile, draws and applications events into scored rows and the pool.

The consumer calls `apply` once per batch, inside the batch's transaction, with the batch's new events
(its batch handler, `shared.consumer`): lock the touched rows (one SELECT), merge the events into their
facts, re-evaluate the profiles whose facts changed, write every changed row (one INSERT ... ON
CONFLICT), and publish `Ranked` / `RemovedFromPool` through the outbox (the scorer only; a replica or a
rebuild emits nothing). The in-memory pool changes only after the commit (`uow.after_commit`),
together with the position it now reflects.

The rescoring jobs go through the same path with no event: `rescore(uow, ids)`.

Every query of the service shares the event loop with this work, so a batch is applied in slices: at
most `SLICE_PROFILES` profiles per lock/save round trip (in ascending id order, slice after slice, so
the lock order stays one order), and between two round trips the work shares one budget of about
`SLICE_SECONDS` (`shared.cooperative.Slices`): the evaluation, the events and the view's changes
yield to the loop whenever it is spent, and the loop gets a turn after reading the locked rows and
before building the write's parameters whatever is left of it (work done inside a call, which the
budget does not see). The slices are all in the batch's one transaction, and the view changes only
after the commit: a query between two slices sees the pool as of the last commit.

Putting a commit's changes into the view yields to the loop too (`apply_to_view`): moving a candidate
in the pool's orderings costs tens of microseconds at a million, so a commit of a few hundred changes
(a consumer that fell behind, a rescoring chunk) applied at once stalled every query for tens of
milliseconds. Each candidate moves at once (its entry, details and place in every ordering), so a query
between two slices of it sees each candidate either before or after the commit, never half moved; the
positions move after the last change, so whoever waits for a position (the selection's read-your-writes)
sees the whole commit.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from typing import Final

from ranking_service.application.events import EVENTS
from ranking_service.application.ports import RowStoreFactory
from ranking_service.domain.candidate import (
    CandidateRow,
    Change,
    ProfileFacts,
    Standing,
    apply_event,
    change_between,
    evaluate,
)
from ranking_service.domain.pool import PoolEntry, is_profile_id
from ranking_service.domain.view import CandidateInfo, MemoryChange, PoolView
from shared import context
from shared.consumer import Delivery
from shared.cooperative import SLICE_SECONDS, Slices, in_slices
from shared.domain_events import CandidateFact, DomainEvent
from shared.events.catalogue import CandidateEvent, Event, PoolDetailsChanged, Ranked, RemovedFromPool
from shared.rules.crs import IN_FORCE, RulesVersion, pinned_rules
from shared.tracked import YoungCollections
from shared.uow import SupportsNow, UnitOfWork

SLICE_PROFILES: Final = 64
"""Profiles locked, evaluated and written per round trip of a batch (the loop runs queries between)."""


@dataclass(frozen=True, slots=True)
class Item:
    """One event of a batch, reduced to what the projection needs."""

    profile_id: str
    owner: str
    event: DomainEvent
    version: int | None
    position_key: str  # "topic:partition"
    next_offset: int
    correlation_id: str | None = None  # of the event: what the profile's Ranked / RemovedFromPool continue
    causation_id: str | None = None  # the event's own id


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one pass did: rows written, and how many entered, moved in or left the pool."""

    written: int = 0
    entered: int = 0
    moved: int = 0
    left: int = 0

    def __add__(self, other: Outcome) -> Outcome:
        return Outcome(
            self.written + other.written, self.entered + other.entered, self.moved + other.moved,
            self.left + other.left,
        )  # fmt: skip

    @property
    def changed(self) -> int:
        """Candidates whose score, programs or categories changed, or who entered or left."""
        return self.entered + self.moved + self.left


@dataclass(slots=True)
class _Evaluated:
    row: CandidateRow
    before: Standing
    change: Change


async def apply_to_view(
    view: PoolView,
    changes: Sequence[MemoryChange],
    positions: Mapping[str, int] | None = None,
    *,
    slice_s: float = SLICE_SECONDS,
) -> None:
    """Committed changes into the view, yielding to the loop every `slice_s`; then the positions.

    The view replaces its entries in place of the old ones, so the collector's young generation fills
    with them without the allocation count noticing: a young collection is run every few hundred
    changes (`shared.tracked.YoungCollections`), in a stretch of its own."""
    async for change in in_slices(changes, slice_s):
        view.apply_change(change)
    view.advance(positions or {})
    if _YOUNG_COLLECTIONS.due(len(changes)):
        await asyncio.sleep(0)
        _YOUNG_COLLECTIONS.collect()


_YOUNG_COLLECTIONS: Final = YoungCollections()


class RankingProjection:
    """Applies batches of events (and rescoring passes) to the table, the outbox and the view."""

    def __init__(self, view: PoolView, store_for: RowStoreFactory, clock: SupportsNow, *, emit: bool) -> None:
        self.view = view
        self.store_for = store_for
        self.clock = clock
        self.emit = emit
        self.scored = 0  # profiles evaluated since start (the scoring rate on /metrics)
        self.slice_s = SLICE_SECONDS  # CPU work between two turns of the loop, at most (about)

    @property
    def rules(self) -> RulesVersion | None:
        """The pinned rules version, or None: each day the version in force on it."""
        return pinned_rules(self.view.rules_version)

    # --- the consumer's batch handler ---------------------------------------------------------------

    async def apply(self, uow: UnitOfWork, deliveries: Sequence[Delivery]) -> None:
        """Apply a batch of the consumer's events in its transaction; the view follows after the commit."""
        items = [item for delivery in deliveries if (item := _item(delivery)) is not None]
        if not items:
            return
        positions: dict[str, int] = {}
        for item in items:
            positions[item.position_key] = max(positions.get(item.position_key, 0), item.next_offset)
        await self.process(uow, sorted({item.profile_id for item in items}), items)
        # Positions move after the pool's changes (the callbacks run in order, each awaited): a query
        # never sees a position without the changes it covers.
        uow.after_commit(partial(apply_to_view, self.view, (), positions))

    # --- the shared path ---------------------------------------------------------------------------

    async def rescore(self, uow: UnitOfWork, profile_ids: Sequence[str]) -> Outcome:
        """Evaluate these profiles again as of now (time moved, or the rules changed)."""
        return await self.process(uow, sorted(profile_ids), ())

    async def process(self, uow: UnitOfWork, ids: Sequence[str], items: Sequence[Item]) -> Outcome:
        """Lock `ids`, apply `items`, re-evaluate, write, publish; the view follows after the commit.

        With no items every locked row is re-evaluated; otherwise only those whose facts changed.
        Done in slices of `SLICE_PROFILES` ids, in the order given (sorted by the callers: one lock
        order for every writer), all in the caller's transaction.
        """
        store = self.store_for(uow.tx)
        now = self.clock.now()
        # The rules committed now, held against an activation until this transaction ends (every
        # instance scores with the database's rules, whatever its view has heard yet).
        active = await store.scoring_rules()
        rules = pinned_rules(active or IN_FORCE)
        by_profile: dict[str, list[Item]] = {}
        for item in items:
            by_profile.setdefault(item.profile_id, []).append(item)
        written: list[_Evaluated] = []
        changes: list[MemoryChange] = []
        # One budget for each stretch between round trips: merging, evaluating, the write's
        # parameters, the events and the view's changes all count toward it (each step starting its
        # own slice, a stretch was their sum).
        slices = Slices(self.slice_s)
        for start in range(0, len(ids), SLICE_PROFILES):
            chunk = ids[start : start + SLICE_PROFILES]
            rows = await store.lock(chunk)
            # Reading the locked rows ran after the round trip resumed, out of the budget's sight:
            # the loop gets a turn before the evaluation adds its slice to it.
            await slices.give_back()
            if items:
                chunk_items = [item for profile_id in chunk for item in by_profile.get(profile_id, ())]
                causes = _apply_items(rows, chunk_items)
                targets = [rows[profile_id] for profile_id in causes]
            else:
                causes, targets = {}, list(rows.values())
            self.scored += len(targets)
            evaluated = [_evaluate_one(row, now, rules) async for row in slices.each(targets)]
            chunk_written = [
                e for e in evaluated if e.row.standing != e.before or e.change is not Change.NONE or items
            ]
            for entry in chunk_written:
                entry.row.revision += 1
            if chunk_written:  # the write's parameters and their encoding: a stretch of their own
                await slices.give_back()
            await store.save([e.row for e in chunk_written], now)
            slices.restart()
            async for entry in slices.each(chunk_written):
                if self.emit:
                    self._publish(uow, entry, now, causes)
                if (change := _memory_change(entry)) is not None:
                    changes.append(change)
            written.extend(chunk_written)
        uow.after_commit(partial(apply_to_view, self.view, changes))
        return _outcome(written)

    def _publish(self, uow: UnitOfWork, entry: _Evaluated, now: datetime, causes: Mapping[str, Item]) -> None:
        event = _event_for(entry, now)
        if event is None:
            return
        profile_id = entry.row.facts.profile_id
        # The batch is applied after every handler ran, outside their message context: each
        # candidate's event continues the conversation of the (last) event that moved it. A
        # rescoring pass has no such event and keeps its own run's ids.
        with _caused_by(causes.get(profile_id)):
            uow.publish(event, aggregate_id=profile_id, aggregate_version=entry.row.revision)


def rejection(event: CandidateFact) -> ValueError | None:
    """What the projection raises for an event it cannot apply (the rebuild decides the same way)."""
    if not is_profile_id(event.profile_id):
        return ValueError(f"profile_id {event.profile_id!r} is not a canonical lowercase UUID")
    return None


def _item(delivery: Delivery) -> Item | None:
    """The projection's view of one delivered event (None for an event about no candidate)."""
    if not isinstance(delivery.event, CandidateEvent):
        return None
    event = EVENTS.to_domain(delivery.event)  # the consumer hands over the types the domain handles
    assert isinstance(event, CandidateFact)
    if (error := rejection(event)) is not None:
        # Raised, not skipped: the consumer retries the batch one by one and dead-letters this one with
        # this reason.
        raise error
    envelope = delivery.envelope
    return Item(
        event.profile_id, event.owner, event, envelope.aggregateversion,
        f"{delivery.topic}:{delivery.partition}", delivery.offset + 1,
        envelope.correlationid or envelope.id, envelope.id,
    )  # fmt: skip


def _apply_items(rows: dict[str, CandidateRow], items: Sequence[Item]) -> dict[str, Item]:
    """Merge the events into the rows (new rows for profiles not seen before).

    Returns the profiles whose facts changed, each with the last event that changed them.
    """
    changed: dict[str, Item] = {}
    for item in items:
        row = rows.get(item.profile_id)
        if row is None:
            row = rows[item.profile_id] = CandidateRow(ProfileFacts(item.profile_id, item.owner))
        if apply_event(row.facts, item.event, item.version):
            changed[item.profile_id] = item
    return changed


@contextlib.contextmanager
def _caused_by(item: Item | None) -> Iterator[None]:
    if item is None:
        yield
        return
    correlation = context.correlation_id.set(item.correlation_id or context.correlation_id.get())
    causation = context.causation_id.set(item.causation_id or context.causation_id.get())
    try:
        yield
    finally:
        context.causation_id.reset(causation)
        context.correlation_id.reset(correlation)


def _evaluate_all(
    rows: Sequence[CandidateRow], now: datetime, rules: RulesVersion | None
) -> list[_Evaluated]:
    return [_evaluate_one(row, now, rules) for row in rows]


def _evaluate_one(row: CandidateRow, now: datetime, rules: RulesVersion | None) -> _Evaluated:
    before = row.standing
    row.standing = evaluate(row.facts, before, now, rules)
    return _Evaluated(row, before, change_between(before, row.standing))


def _event_for(entry: _Evaluated, now: datetime) -> Event | None:
    facts, standing = entry.row.facts, entry.row.standing
    if entry.change is Change.REFRESHED and _details_changed(entry):
        # Not a move: but every instance holds the details its queries show, so it must hear of it.
        return PoolDetailsChanged(profile_id=facts.profile_id, owner=facts.owner, changed_at=now)
    if entry.change is Change.LEFT:
        reason = standing.reason.value if standing.reason is not None else "left"
        return RemovedFromPool(profile_id=facts.profile_id, owner=facts.owner, reason=reason, removed_at=now)
    if entry.change not in (Change.ENTERED, Change.MOVED):
        return None
    scored = standing.scored
    assert scored is not None and facts.submitted_at is not None
    return Ranked(
        profile_id=facts.profile_id,
        owner=facts.owner,
        crs=scored.crs,
        breakdown=scored.breakdown,
        rules_version=scored.rules_version,
        programs=list(scored.programs),
        categories=list(scored.categories),
        submitted_at=facts.submitted_at,
        ranked_at=now,
    )


def _memory_change(entry: _Evaluated) -> MemoryChange | None:
    row = entry.row
    if entry.change is Change.LEFT:
        return MemoryChange(row.facts.profile_id, row.revision, None, None)
    visible = entry.change in (Change.ENTERED, Change.MOVED)
    if visible or (entry.change is Change.REFRESHED and _details_changed(entry)):
        return MemoryChange(row.facts.profile_id, row.revision, pool_entry(row), candidate_info(row))
    return None


def _details_changed(entry: _Evaluated) -> bool:
    old, new = entry.before.scored, entry.row.standing.scored
    return old is None or new is None or replace(old, rescore_on=new.rescore_on) != new


def pool_entry(row: CandidateRow) -> PoolEntry:
    scored, facts = row.standing.scored, row.facts
    assert scored is not None and facts.submitted_at is not None
    programs, categories = frozenset(scored.programs), frozenset(scored.categories)
    return PoolEntry(facts.profile_id, scored.crs, facts.submitted_at, programs, categories)


def candidate_info(row: CandidateRow) -> CandidateInfo:
    scored = row.standing.scored
    assert scored is not None
    return CandidateInfo.of(
        row.facts.owner,
        scored.citizenship,
        scored.breakdown,
        scored.noc_codes,
        scored.lowest_clb,
        row.revision,
    )


def _outcome(evaluated: Sequence[_Evaluated]) -> Outcome:
    changes = [e.change for e in evaluated]
    return Outcome(
        written=len(evaluated),
        entered=changes.count(Change.ENTERED),
        moved=changes.count(Change.MOVED),
        left=changes.count(Change.LEFT),
    )
