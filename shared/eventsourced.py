"""Event-sourced aggregates in the event store: a stream loaded into an aggregate, its new events saved.

An aggregate keeps `version` (events applied, the new ones included) and `pending` (the new ones). A
service's repository says which stream holds an aggregate, how the aggregate is rebuilt from its
events, which of its events are published (the outbox, besides the event store) and how it is
projected into the service's query table::

    class ProfileRepository(EventSourcedRepository[Profile]):
        def stream_id(self, aggregate_id: str) -> str: ...
        def aggregate_id(self, aggregate: Profile) -> str: ...
        def replay(self, events: Iterable[Event]) -> Profile: ...
        def is_published(self, event: Event) -> bool: ...
        async def project(self, aggregate: Profile) -> None: ...

    repository = ProfileRepository(uow)
    profile = await repository.get(profile_id)   # None for a stream that does not exist
    profile.submit(now)
    await repository.save(profile)               # ConcurrencyError if the stream moved meanwhile

Events that are not published (facts received from other services, internal events) go to the
event store only; the others to the event store and the outbox, in one transaction with the
projection.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from typing import ClassVar, Generic, Protocol, TypeVar

from shared.events.catalogue import Event
from shared.events.registry import REGISTRY, EventRegistry
from shared.uow import UnitOfWork


class Aggregate(Protocol):
    version: int
    pending: list[Event]


A = TypeVar("A", bound=Aggregate)


class EventSourcedRepository(ABC, Generic[A]):
    """Load and save one kind of aggregate inside one unit of work."""

    registry: ClassVar[EventRegistry] = REGISTRY
    """Reads the stream's events (a service with internal events passes a registry that knows them)."""

    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow

    @abstractmethod
    def stream_id(self, aggregate_id: str) -> str: ...

    @abstractmethod
    def aggregate_id(self, aggregate: A) -> str: ...

    @abstractmethod
    def replay(self, events: Iterable[Event]) -> A: ...

    @abstractmethod
    def is_published(self, event: Event) -> bool: ...

    async def project(self, aggregate: A) -> None:
        """Write the aggregate's query-table row(s), in the same transaction (none by default)."""

    async def get(self, aggregate_id: str) -> A | None:
        envelopes = await self.uow.events.load(self.uow.session, self.stream_id(aggregate_id))
        if not envelopes:
            return None
        return self.replay(self.registry.parse(envelope) for envelope in envelopes)

    async def exists(self, aggregate_id: str) -> bool:
        return await self.uow.events.current_version(self.uow.session, self.stream_id(aggregate_id)) > 0

    async def save(self, aggregate: A) -> None:
        """Append the pending events (ConcurrencyError if the stream moved) and project the aggregate."""
        pending, aggregate.pending = aggregate.pending, []
        expected = aggregate.version - len(pending)
        sid = self.stream_id(self.aggregate_id(aggregate))
        for published, run in runs_by(pending, self.is_published):
            if published:
                await self.uow.append(sid, expected, run)
            else:
                envelopes = [self.uow.envelope(event, aggregate_id=sid) for event in run]
                await self.uow.events.append(self.uow.session, sid, expected, envelopes)
            expected += len(run)
        await self.project(aggregate)


def runs_by(events: Sequence[Event], published: Callable[[Event], bool]) -> list[tuple[bool, list[Event]]]:
    """Consecutive events split into runs that are all published or all kept in the store only."""
    runs: list[tuple[bool, list[Event]]] = []
    for event in events:
        flag = published(event)
        if runs and runs[-1][0] == flag:
            runs[-1][1].append(event)
        else:
            runs.append((flag, [event]))
    return runs
