"""The unit of work: one database transaction holding state, events and outgoing messages.

    async with runtime.uow() as uow:
        stream = await uow.events.load(uow.tx, stream_id)
        envelopes = await uow.append(stream_id, expected_version, [event, ...])  # event store + outbox
        uow.publish(event)                     # outbox only (state kept in ordinary tables)
        await uow.commit()                     # rolled back on exit if not committed

Everything written through the unit of work commits or vanishes together, which is the whole point of
the transactional outbox: no event reaches Kafka for a change that rolled back, and no committed
change is without its events.
"""

from __future__ import annotations

import inspect
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared import context
from shared.db import Transaction
from shared.envelope import Envelope, encode
from shared.events.catalogue import Event
from shared.eventstore import EventStore, Followup, OutboxRow, stamp
from shared.messages import envelope_for
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)

AfterCommit = Callable[[], Awaitable[Any] | Any]


# Rows keep the order of the arrays (ids, hence relay order, follow the order events were produced in).
_INSERT_OUTBOX = """
    INSERT INTO outbox (event_id, topic, key, payload)
    SELECT e, t, k, p FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[])
        WITH ORDINALITY AS r(e, t, k, p, n)
    ORDER BY n
"""


class SupportsNow(Protocol):
    """The part of `shared.clock.Clock` the platform needs."""

    def now(self) -> Any: ...


class UnitOfWorkError(RuntimeError):
    """The unit of work was used the wrong way (a bug in the caller)."""


class UnitOfWork:
    """One transaction. Use as `async with`; nothing is kept unless `commit()` is awaited."""

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        settings: ServiceSettings,
        clock: SupportsNow,
        *,
        events: EventStore | None = None,
        on_outbox_commit: Callable[[], None] | None = None,
    ) -> None:
        self._session_factory = session_factory
        self.settings = settings
        self.clock = clock
        self.events = events or EventStore()
        self._on_outbox_commit = on_outbox_commit
        self._tx: Transaction | None = None
        self._outbox_rows: list[dict[str, Any]] = []
        self._flushed_outbox = False
        self._after_commit: list[AfterCommit] = []
        self._correlation_id: str | None = None
        # Set by a caller that knows the next append is the last write (`one_write_commits_alone`).
        self.last_append_commits = False

    # -- lifecycle --------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._tx is not None:
            raise UnitOfWorkError("a UnitOfWork is entered once")
        self._tx = Transaction(self._session_factory)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._outbox_rows.clear()
        self._after_commit.clear()
        if self._tx is not None:
            # close() rolls back whatever was not committed and returns the connection to the pool.
            await self._tx.close()

    @property
    def tx(self) -> Transaction:
        """This unit of work's transaction: `await uow.tx.connection()` is its asyncpg connection (what
        the event store and the outbox write through), taken from the pool on first use."""
        if self._tx is None:
            raise UnitOfWorkError("use the UnitOfWork inside `async with`")
        return self._tx

    @property
    def session(self) -> AsyncSession:
        """An ORM session in this unit of work's transaction (made on first use, on its connection)."""
        return self.tx.session

    async def commit(self) -> None:
        """Write the buffered outbox rows and commit; then run the after-commit callbacks."""
        await self._commit()

    async def flush(self) -> None:
        """Write the buffered outbox rows now (still uncommitted); `commit()` does it anyway."""
        rows, self._outbox_rows = self._outbox_rows, []
        if rows:
            # One statement for any number of rows, on the driver's connection (in this transaction).
            connection = await self.tx.connection()
            await connection.execute(
                _INSERT_OUTBOX,
                [row["event_id"] for row in rows],
                [row["topic"] for row in rows],
                [row["key"] for row in rows],
                [row["payload"] for row in rows],
            )
            self._flushed_outbox = True

    async def _commit(self) -> None:
        tx = self.tx
        had_rows = bool(self._outbox_rows) or self._flushed_outbox
        await self.flush()
        await tx.commit()
        self._flushed_outbox = False
        callbacks, self._after_commit = self._after_commit, []
        if had_rows and self._on_outbox_commit is not None:
            self._on_outbox_commit()
        for callback in callbacks:
            # The transaction is committed: a failing callback must not make the caller believe it
            # was not, so it is logged rather than raised.
            try:
                result = callback()
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("after-commit callback %r failed", callback)

    async def rollback(self) -> None:
        self._outbox_rows.clear()
        self._flushed_outbox = False
        self._after_commit.clear()
        await self.tx.rollback()

    def after_commit(self, callback: AfterCommit) -> None:
        """Run `callback` (sync or async) once this transaction has committed; never if it rolls back."""
        self._after_commit.append(callback)

    # -- events -----------------------------------------------------------------------------------

    def envelope(
        self, event: Event, *, aggregate_id: str | None = None, aggregate_version: int | None = None
    ) -> Envelope:
        """An envelope for `event` stamped with this service, the clock and the request's ids."""
        return envelope_for(
            event,
            source=self.settings.source,
            time=self.clock.now(),
            aggregate_id=aggregate_id,
            aggregate_version=aggregate_version,
            correlation_id=self._correlation(),
            causation_id=context.causation_id.get(),
        )

    async def append(
        self, stream_id: str, expected_version: int, events: Sequence[Event], *, also: Sequence[Followup] = ()
    ) -> list[Envelope]:
        """Append `events` to the stream (versions `expected_version + 1, ...`) and to the outbox;
        `also`: writes that go in with them (see `EventStore.append`).

        Raises `shared.eventstore.ConcurrencyError` when the stream moved; nothing is written then.
        """
        envelopes = stamp(
            stream_id, expected_version, [self.envelope(event, aggregate_id=stream_id) for event in events]
        )
        # Encoded once: the same bytes are the outbox payload and the stored envelope.
        encoded = [encode(envelope) for envelope in envelopes]
        # The outbox rows buffered so far and these events' go in with the append itself (one round
        # trip), in the order they were produced; if the append fails, none is written and the
        # buffered ones stay for the commit.
        rows = [OutboxRow(r["event_id"], r["topic"], r["key"], r["payload"]) for r in self._outbox_rows]
        rows += [
            OutboxRow(envelope.id, self.settings.topic(event.topic), event.key(), payload)
            for event, envelope, payload in zip(events, envelopes, encoded, strict=True)
        ]
        stored = await self.events.append(
            self.tx,
            stream_id,
            expected_version,
            envelopes,
            rows,
            also=also,
            encoded=encoded,
            alone=self.last_append_commits,
        )
        self._outbox_rows = []
        self._flushed_outbox = self._flushed_outbox or bool(rows)
        return stored

    def publish(
        self, event: Event, *, aggregate_id: str | None = None, aggregate_version: int | None = None
    ) -> Envelope:
        """Send `event` through the outbox only (the service keeps its state in ordinary tables)."""
        envelope = self.envelope(event, aggregate_id=aggregate_id, aggregate_version=aggregate_version)
        self._add_outbox_row(event, envelope)
        return envelope

    def publish_envelope(self, envelope: Envelope, *, topic: str, key: str | None) -> None:
        """Send a ready-made envelope through the outbox to the (already prefixed) `topic`."""
        self._outbox_rows.append(
            {"event_id": envelope.id, "topic": topic, "key": key, "payload": encode(envelope)}
        )

    def _add_outbox_row(self, event: Event, envelope: Envelope) -> None:
        # Rows are buffered and written in one statement at commit (or with the next append), in the
        # order they were added: outbox ids, hence relay order, follow the order the service produced
        # the events in.
        self._outbox_rows.append(self._outbox_row(event, envelope))

    def _outbox_row(self, event: Event, envelope: Envelope) -> dict[str, Any]:
        return {"event_id": envelope.id, "topic": self.settings.topic(event.topic), "key": event.key(),
                "payload": encode(envelope)}  # fmt: skip

    def _correlation(self) -> str:
        # The request's or the incoming event's correlation id when there is one (read each time: a
        # consumer batch handles messages of many conversations), else one shared by every event of
        # this unit of work.
        current = context.correlation_id.get()
        if current:
            return current
        if self._correlation_id is None:
            self._correlation_id = str(uuid.uuid4())
        return self._correlation_id


class BatchUnitOfWork(UnitOfWork):
    """The unit of work a consumer opens for a batch of messages (`shared.consumer`).

    Its handlers use it like any other (session, `append`, `publish`, `after_commit`), but only the
    consumer commits it, once, after every handler and with its positions: `commit()` raises.
    """

    async def commit(self) -> None:
        raise UnitOfWorkError("a consumer handler must not commit: the consumer commits the batch")

    async def commit_batch(self) -> None:
        """The consumer's commit: outbox rows, then the transaction, then the after-commit callbacks."""
        await self._commit()


class ServiceUnitOfWork:
    """Base of a service's unit of work: the platform's (`inner`) seen through the service's ports,
    which a subclass adds (its repositories over `inner`). The transaction itself is `inner`'s."""

    def __init__(self, inner: UnitOfWork) -> None:
        self.inner = inner

    @property
    def clock(self) -> SupportsNow:
        return self.inner.clock

    @property
    def session(self) -> Any:
        return self.inner.session

    def publish(self, event: Event) -> Envelope:
        return self.inner.publish(event)

    def after_commit(self, callback: AfterCommit) -> None:
        self.inner.after_commit(callback)

    async def commit(self) -> None:
        await self.inner.commit()


def one_write_commits_alone(uow: object) -> None:
    """Declare that the unit of work's next append is its last write (a command runner that will
    record nothing after the handler, e.g. no Idempotency-Key). If nothing was written before it, that
    append then commits by itself, one statement without BEGIN and COMMIT (`EventStore.append`), and
    anything written after it raises. `uow` is whatever a command runner's factory opened: a
    `UnitOfWork`, a service's wrapper of one, or something else, which is left as it is."""
    inner = uow.inner if isinstance(uow, ServiceUnitOfWork) else uow
    if isinstance(inner, UnitOfWork) and not isinstance(inner, BatchUnitOfWork):
        inner.last_append_commits = True


W = TypeVar("W")


def wrapped_uow(
    platform_uow: Callable[[], UnitOfWork], wrap: Callable[[UnitOfWork], W]
) -> Callable[[], AbstractAsyncContextManager[W]]:
    """A factory of a service's units of work: each opens the platform's (`runtime.uow()`) and hands
    the handler `wrap(uow)`, the service's wrapper with its repositories over it."""

    @asynccontextmanager
    async def open_uow() -> AsyncIterator[W]:
        async with platform_uow() as uow:
            yield wrap(uow)

    return open_uow
