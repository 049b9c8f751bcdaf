"""Event-sourced aggregates in the event store: a stream loaded into an aggregate, its new events saved.

An aggregate keeps `version` (events applied, the new ones included) and `pending` (the new ones). A
service's repository says which stream holds an aggregate, how the aggregate is rebuilt from its
events, which of its events are published (the outbox, besides the event store) and how it is
projected into the service's query table::

    class ProfileRepository(EventSourcedRepository[Profile]):
        def stream_id(self, aggregate_id: str) -> str: ...
        def aggregate_id(self, aggregate: Profile) -> str: ...
        def replay(self, events: Iterable[DomainEvent]) -> Profile: ...
        def is_published(self, event: DomainEvent) -> bool: ...
        async def project(self, aggregate: Profile) -> None: ...

    repository = ProfileRepository(uow)
    profile = await repository.get(profile_id)   # None for a stream that does not exist
    profile.submit(now)
    await repository.save(profile)               # ConcurrencyError if the stream moved meanwhile

The aggregate holds domain events (frozen dataclasses, `shared.domain_events`); the repository's
`mapper` translates them to the catalogue's wire models on save and back on load, so the domain never
sees a wire model. Events that are not published (facts received from other services, internal
events) go to the event store only; the others to the event store and the outbox, in one transaction
with the projection.

Snapshots: a repository that sets `snapshot_kind` (a name for the aggregate's current shape, e.g.
"profile.v1") and implements `to_snapshot` / `from_snapshot` stores the aggregate's state whenever a
save crosses a multiple of `snapshot_every` versions, in the same transaction as the events; `get` then
reads that snapshot and only the events after it (one query), so loading costs the same whatever the
length of the history. A snapshot of another kind (the shape changed) is ignored and replaced.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from shared.domain_events import DomainEvent
from shared.events.mapping import EventMapper
from shared.events.registry import REGISTRY, EventRegistry
from shared.eventstore import Followup, Snapshot, snapshot_followup
from shared.uow import UnitOfWork


class Aggregate(Protocol):
    version: int
    pending: list[DomainEvent]


A = TypeVar("A", bound=Aggregate)


class EventSourcedRepository(ABC, Generic[A]):
    """Load and save one kind of aggregate inside one unit of work."""

    registry: ClassVar[EventRegistry] = REGISTRY
    """Reads the stream's events (a service with internal events passes a registry that knows them)."""

    mapper: ClassVar[EventMapper]
    """The stream's domain events to and from their wire models (every event of the stream)."""

    snapshot_kind: ClassVar[str | None] = None
    """The shape of `to_snapshot`'s state; None: no snapshots. Change it when the shape changes."""

    snapshot_every: ClassVar[int] = 8
    """A snapshot at every multiple of this many versions: a load replays fewer events than this."""

    load_also: ClassVar[tuple[str, ...]] = ()
    """Scalar subqueries read with the snapshot and the events, in the same round trip (their
    parameters are `$3...`, from `load_also_args`); `loaded_also` gets their values before the
    aggregate is rebuilt (e.g. the data key its personal fields are opened with)."""

    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow

    def load_also_args(self, aggregate_id: str) -> tuple[Any, ...]:
        return ()

    def loaded_also(self, values: tuple[Any, ...]) -> None:
        """The values of `load_also`, before the aggregate is rebuilt."""

    @abstractmethod
    def stream_id(self, aggregate_id: str) -> str: ...

    @abstractmethod
    def aggregate_id(self, aggregate: A) -> str: ...

    @abstractmethod
    def replay(self, events: Iterable[DomainEvent]) -> A: ...

    @abstractmethod
    def is_published(self, event: DomainEvent) -> bool: ...

    async def project(self, aggregate: A) -> None:
        """Write the aggregate's query-table row(s), in the same transaction (none by default).

        A repository whose projection is one statement returns it from `projection` instead: it is
        then sent with the append of the events (one round trip)."""
        followup = self.projection(aggregate)
        if followup is not None:
            connection = await self.uow.tx.connection()
            await connection.execute(followup.alone(), *followup.args)

    def projection(self, aggregate: A) -> Followup | None:
        """The aggregate's query-table row as one write sent with the append (None: see `project`)."""
        return None

    def to_snapshot(self, aggregate: A) -> dict[str, Any]:
        """The aggregate's state as JSON-ready data (with `snapshot_kind`)."""
        raise NotImplementedError(f"{type(self).__name__} sets snapshot_kind but has no to_snapshot")

    def from_snapshot(self, state: dict[str, Any], events: Iterable[DomainEvent]) -> A:
        """The aggregate from `to_snapshot`'s state, with `events` (those after it) applied."""
        raise NotImplementedError(f"{type(self).__name__} sets snapshot_kind but has no from_snapshot")

    async def get(self, aggregate_id: str) -> A | None:
        sid = self.stream_id(aggregate_id)
        if self.snapshot_kind is None:
            envelopes = await self.uow.events.load(self.uow.tx, sid)
            snapshot = None
        else:
            snapshot, envelopes, also = await self.uow.events.load_from_snapshot_with(
                self.uow.tx, sid, self.snapshot_kind, self.load_also, *self.load_also_args(aggregate_id)
            )
            self.loaded_also(also)
        events = (self.mapper.to_domain(self.registry.parse(envelope)) for envelope in envelopes)
        if snapshot is not None:
            aggregate = self.from_snapshot(snapshot.state, events)
            if aggregate.version != snapshot.version + len(envelopes):
                raise RuntimeError(
                    f"{sid}: the snapshot of version {snapshot.version} and {len(envelopes)} events after it "
                    f"gave version {aggregate.version}"
                )
            return aggregate
        if not envelopes:
            return None
        return self.replay(events)

    async def exists(self, aggregate_id: str) -> bool:
        return await self.uow.events.current_version(self.uow.session, self.stream_id(aggregate_id)) > 0

    async def save(self, aggregate: A) -> None:
        """Append the pending events (ConcurrencyError if the stream moved) and project the aggregate.

        The snapshot (when one is due) and the projection go with the last append, in its statement."""
        pending, aggregate.pending = aggregate.pending, []
        expected = aggregate.version - len(pending)
        sid = self.stream_id(self.aggregate_id(aggregate))
        also: list[Followup] = []
        if self.snapshot_kind is not None:
            every = self.snapshot_every
            if (aggregate.version - len(pending)) // every != aggregate.version // every:
                snapshot = Snapshot(self.snapshot_kind, aggregate.version, self.to_snapshot(aggregate))
                also.append(snapshot_followup(sid, snapshot))
        projection = self.projection(aggregate)
        if projection is not None:
            also.append(projection)
        runs = runs_by(pending, self.is_published)
        for n, (published, run) in enumerate(runs, start=1):
            wire = [self.mapper.to_wire(event) for event in run]
            with_it = also if n == len(runs) else ()
            if published:
                await self.uow.append(sid, expected, wire, also=with_it)
            else:
                envelopes = [self.uow.envelope(event, aggregate_id=sid) for event in wire]
                await self.uow.events.append(self.uow.tx, sid, expected, envelopes, also=with_it)
            expected += len(run)
        if not runs and also:  # nothing appended: the writes go alone
            connection = await self.uow.tx.connection()
            for followup in also:
                await connection.execute(followup.alone(), *followup.args)
        if projection is None:
            await self.project(aggregate)


E = TypeVar("E")


def runs_by(events: Sequence[E], published: Callable[[E], bool]) -> list[tuple[bool, list[E]]]:
    """Consecutive events split into runs that are all published or all kept in the store only."""
    runs: list[tuple[bool, list[E]]] = []
    for event in events:
        flag = published(event)
        if runs and runs[-1][0] == flag:
            runs[-1][1].append(event)
        else:
            runs.append((flag, [event]))
    return runs
