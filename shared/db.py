"""The database side of the platform: engine, sessions and the platform tables every service has.

Each service's first Alembic migration creates the platform tables::

    def upgrade() -> None:
        create_platform_tables(op)

    def downgrade() -> None:
        drop_platform_tables(op)
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
from pathlib import Path
from typing import Any, Final, Protocol

import asyncpg
import orjson
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.dialects.postgresql import base as postgresql_base
from sqlalchemy.dialects.postgresql.asyncpg import dialect as postgresql_dialect
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.util import greenlet_spawn

from shared.settings import ServiceSettings, with_database

platform_metadata = sa.MetaData()


class Xid8(sa.types.UserDefinedType[int]):
    """PostgreSQL's 64-bit transaction id (`xid8`, never wraps around). Read it as `col::text::bigint`."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "xid8"


# Reflection (Alembic's `check`) then knows the column's type instead of warning about it.
postgresql_base.ischema_names.setdefault("xid8", Xid8)


# Every event this service recorded, as its stream's history. `position` is a global order of
# insertion (not of commit: a transaction that commits late holds a smaller position);
# `transaction_id` is the writing transaction's id, which `EventStore.read_all` pages by so that it
# never skips an event committed late (see there).
event_store = sa.Table(
    "event_store",
    platform_metadata,
    sa.Column("position", sa.BigInteger, sa.Identity(always=False), primary_key=True),
    sa.Column("stream_id", sa.Text, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("event_id", UUID(as_uuid=False), nullable=False, unique=True),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("envelope", JSONB, nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("transaction_id", Xid8(), nullable=False, server_default=sa.text("pg_current_xact_id()")),
    # The optimistic-concurrency guard: two writers of the same version cannot both commit.
    sa.UniqueConstraint("stream_id", "version", name="uq_event_store_stream_version"),
    sa.CheckConstraint("version >= 1", name="ck_event_store_version_positive"),
    sa.Index("ix_event_store_commit_order", "transaction_id", "position"),
)

# An aggregate's state as of a version of its stream, so that loading it reads the snapshot and the
# events after it instead of the whole history. Derived data: written in the transaction that appends
# the events it covers, never ahead of them, and ignored when its `kind` (the aggregate's shape) is not
# the one the repository reads. The event store stays the source of truth.
snapshots = sa.Table(
    "snapshots",
    platform_metadata,
    sa.Column("stream_id", sa.Text, primary_key=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("state", JSONB, nullable=False),
    sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

# Messages committed with the state change that caused them, waiting for the relay.
outbox = sa.Table(
    "outbox",
    platform_metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(always=False), primary_key=True),
    sa.Column("event_id", sa.Text, nullable=False),
    sa.Column("topic", sa.Text, nullable=False),
    sa.Column("key", sa.Text, nullable=True),
    sa.Column("payload", sa.LargeBinary, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
    # The relay's query reads only this small index, however many published rows pile up.
    sa.Index("ix_outbox_unpublished", "id", postgresql_where=sa.text("published_at IS NULL")),
)

# Event ids a consumer has applied: the dedupe that makes redelivery a no-op. Text, not UUID: the
# id of a message from elsewhere is whatever its producer put there.
processed_messages = sa.Table(
    "processed_messages",
    platform_metadata,
    sa.Column("consumer", sa.Text, primary_key=True),
    sa.Column("event_id", sa.Text, primary_key=True),
    sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

# Where each consumer resumes, per partition, and on which Kafka cluster that offset means anything.
consumer_positions = sa.Table(
    "consumer_positions",
    platform_metadata,
    sa.Column("consumer", sa.Text, primary_key=True),
    sa.Column("topic", sa.Text, primary_key=True),
    sa.Column("partition", sa.Integer, primary_key=True),
    sa.Column("next_offset", sa.BigInteger, nullable=False),
    sa.Column("cluster_id", sa.Text, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

# Responses to commands sent with an Idempotency-Key, so a retried request gets the same answer.
idempotency_keys = sa.Table(
    "idempotency_keys",
    platform_metadata,
    sa.Column("scope", sa.Text, primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("request_hash", sa.Text, nullable=False),
    sa.Column("status_code", sa.Integer, nullable=False),
    sa.Column("response", JSONB, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

PLATFORM_TABLES = (event_store, snapshots, outbox, processed_messages, consumer_positions, idempotency_keys)


class _Operations(Protocol):
    """What the migration helpers need from `alembic.op`."""

    def get_bind(self) -> sa.Connection: ...


def create_platform_tables(op: _Operations) -> None:
    """Create the platform tables inside an Alembic migration (`upgrade`); those already there are
    left alone, so a later migration can call it to add a platform table that came after."""
    platform_metadata.create_all(op.get_bind(), tables=list(PLATFORM_TABLES), checkfirst=True)


def drop_platform_tables(op: _Operations) -> None:
    """Drop the platform tables inside an Alembic migration (`downgrade`)."""
    platform_metadata.drop_all(op.get_bind(), tables=list(PLATFORM_TABLES))


async def create_platform_schema(engine: AsyncEngine) -> None:
    """Create the platform tables directly (tests and tools without Alembic); idempotent."""
    async with engine.begin() as conn:
        await conn.run_sync(platform_metadata.create_all)


_SAFE_NAME: Final = re.compile(r"^[a-z_][a-z0-9_]*$")


CONNECT_TIMEOUT_S: Final = 10.0


async def plain_connection(database_url: str) -> asyncpg.Connection:
    """A bare asyncpg connection (no SQLAlchemy, no pool) to the database a service URL names, with
    the engine's connect options: for bulk COPY, tools and tests that read a table directly. The
    caller closes it."""
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    return await asyncpg.connect(dsn, timeout=CONNECT_TIMEOUT_S, **asyncpg_connect_args(database_url))


def _maintenance_url(database_url: str) -> tuple[str, str]:
    """URL of the server's `postgres` database, and the database named in `database_url`."""
    url = make_url(database_url)
    name = url.database or ""
    if not _SAFE_NAME.match(name):
        raise ValueError(f"refusing to create or drop a database named {name!r}")
    return with_database(database_url, "postgres"), name


async def create_database(database_url: str) -> None:
    """Create the database `database_url` names, empty (dropping a leftover of the same name).

    For tests and tools (the ranking rebuild's fresh projection); services' databases are made by
    `deploy/local/postgres.sh` or the operator.
    """
    maintenance, name = _maintenance_url(database_url)
    conn = await plain_connection(maintenance)
    try:
        await _drop(conn, name)  # a crashed earlier run may have left it, connections and all
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def drop_database(database_url: str) -> None:
    """Drop the database `database_url` names, closing whatever is still connected to it."""
    maintenance, name = _maintenance_url(database_url)
    conn = await plain_connection(maintenance)
    try:
        await _drop(conn, name)
    finally:
        await conn.close()


async def _drop(conn: asyncpg.Connection, name: str) -> None:
    for attempt in range(20):
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return
        except asyncpg.InsufficientPrivilegeError:
            # An autovacuum worker is in the database after a burst of writes: a process without a
            # role, which FORCE may not end ("must be a member of the role whose process is being
            # terminated"), and which may go on for many seconds over a freshly loaded table. A
            # plain DROP tells autovacuum workers to leave, and fails only if a session is in it.
            with contextlib.suppress(asyncpg.ObjectInUseError):
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
                return
            if attempt == 19:
                raise
            await asyncio.sleep(0.5)


def guarded_upsert_sql(table: sa.Table, key: str, *, where: str | None = None) -> str:
    """An upsert of one row of `table` (every column, `$1..$n` in column order, each cast to its
    column's type), written only when `{written}` holds: the query-table row an aggregate's save
    sends with the append of its events (`shared.eventstore.Followup`). `where`: the DO UPDATE's
    condition (e.g. only a newer version)."""
    dialect = postgresql_dialect()
    columns = [column.name for column in table.c]
    values = ", ".join(
        f"${n}::{column.type.compile(dialect=dialect)}" for n, column in enumerate(table.c, start=1)
    )
    updates = ", ".join(f"{name} = excluded.{name}" for name in columns if name != key)
    return (
        f"INSERT INTO {table.name} ({', '.join(columns)}) SELECT {values} WHERE {{written}} "
        f"ON CONFLICT ({key}) DO UPDATE SET {updates}" + (f" WHERE {where}" if where else "")
    )


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_UTC_Z).decode()


LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "localhost", "::1"})
# Where asyncpg (like libpq) looks for the server's socket when a URL names no host, in this order.
SOCKET_DIRECTORIES: Final = ("/run/postgresql", "/var/run/postgresql", "/tmp", "/private/tmp")


def local_socket_directory(port: int = 5432) -> str | None:
    """The directory holding this machine's server socket for `port`, as asyncpg would find it (for
    tools such as pgbench or psycopg that are handed the same server); None when there is none."""
    return next((d for d in SOCKET_DIRECTORIES if Path(d, f".s.PGSQL.{port}").exists()), None)


def asyncpg_connect_args(database_url: str) -> dict[str, Any]:
    """`ssl=False` for a server on this machine (loopback or a Unix socket), unless the URL asks.

    asyncpg's default (`prefer`) negotiates TLS wherever the server offers it, and then encrypts and
    decrypts every byte: pure cost when the bytes never leave the machine. Remote servers keep the
    default, and an explicit `ssl` or `sslmode` in the URL always wins.
    """
    url = make_url(database_url)
    if "ssl" in url.query or "sslmode" in url.query:
        return {}
    host = url.host or str(url.query.get("host") or "")
    local = not host or host.startswith("/") or host in LOOPBACK_HOSTS
    return {"ssl": False} if local else {}


def create_engine(settings: ServiceSettings, **overrides: Any) -> AsyncEngine:
    """The service's engine: a small pool, checked connections, named in pg_stat_activity."""
    options: dict[str, Any] = {
        "pool_size": settings.db_pool_size,
        "max_overflow": settings.db_max_overflow,
        # A checkout after PostgreSQL restarted gets a fresh connection instead of an error.
        "pool_pre_ping": True,
        # Wait for a pooled connection a bounded time: a request then fails with 503, not hangs.
        "pool_timeout": 10,
        "json_serializer": _json_dumps,
        "json_deserializer": orjson.loads,
        "connect_args": {
            "timeout": 5,
            "server_settings": {"application_name": f"ee-{settings.service_name}"},
            **asyncpg_connect_args(settings.database_url),
        },
    }
    options.update(overrides)
    engine = create_async_engine(settings.database_url, **options)
    if options.get("pool_pre_ping"):
        # SQLAlchemy's asyncpg ping is BEGIN, `;`, ROLLBACK: three round trips on every checkout, the
        # largest single cost of a short request on a busy machine. A server that restarted or went
        # away closes the socket, which asyncpg sees at once (it always reads), so asking whether the
        # connection is closed finds the same dead connections for free; a connection that dies
        # silently fails its first statement instead, and SQLAlchemy invalidates the pool then.
        dialect = engine.sync_engine.dialect
        dialect.do_ping = functools.partial(_connection_open, dialect)  # type: ignore[method-assign]
    return engine


def _connection_open(dialect: Any, dbapi_connection: Any) -> bool:
    """The pre-ping: False (invalidate and reconnect) when asyncpg knows the connection is closed."""
    raw = dialect.get_driver_connection(dbapi_connection)
    if isinstance(raw, asyncpg.Connection):
        return not raw.is_closed()
    dbapi_connection.ping()  # another driver: its own ping
    return True


async def driver_connection(source: AsyncSession | Transaction) -> asyncpg.Connection:
    """The asyncpg connection under `source` (a unit of work's `Transaction`, or a session), inside its
    transaction (begun if need be).

    For the few statements every command runs (the event store's load and append): asyncpg's own
    prepared-statement cache and no SQLAlchemy statement compilation, result machinery or greenlet
    switch, which together cost more CPU per command than the rest of it. Statements sent here are
    in the transaction and commit or roll back with it.
    """
    if isinstance(source, Transaction):
        return await source.connection()
    connection = await source.connection()
    return await _begun((await connection.get_raw_connection()).dbapi_connection)


async def reading_connection(source: AsyncSession | Transaction) -> asyncpg.Connection:
    """Like `driver_connection`, for a statement that only reads: a unit of work's `Transaction` that
    has not begun is not begun for it (`Transaction.reading`)."""
    if isinstance(source, Transaction):
        return await source.reading()
    return await driver_connection(source)


async def _begun(adapted: Any) -> asyncpg.Connection:
    """The asyncpg connection under SQLAlchemy's adapter `adapted`, its transaction begun."""
    if adapted._transaction is None and adapted.isolation_level != "autocommit":
        async with adapted._execute_mutex:
            if adapted._transaction is None:
                # What SQLAlchemy's asyncpg adapter does before its first statement of a transaction.
                await adapted._start_transaction()
    driver: asyncpg.Connection = adapted._connection
    return driver


class Transaction:
    """A unit of work's database transaction: one pooled connection, taken and begun on first use.

    The platform's own statements (the event store's load and append, the outbox) go to asyncpg
    through `connection()`, on a connection checked out of the engine's pool, without an ORM
    session: opening, committing and closing a session cost about as much CPU per command as a
    command's own statements (in-process, a transaction of one SELECT: ~260 µs CPU through a
    session against ~115 µs on the pool's connection). Code that asks for `session` (SQLAlchemy
    statements: queries, idempotency keys, ...) gets one bound to that same connection, in the same
    transaction; once there is a session, it commits and rolls back the transaction.
    """

    __slots__ = ("_adapted", "_bound", "_engine", "_pooled", "_sealed", "_session", "_session_factory")

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._session_factory = session_factory
        bind = session_factory.kw.get("bind")
        # A factory bound to something else than an engine: everything goes through its sessions.
        self._engine: AsyncEngine | None = bind if isinstance(bind, AsyncEngine) else None
        self._pooled: Any = None  # the pool's connection (SQLAlchemy's _ConnectionFairy)
        self._adapted: Any = None  # SQLAlchemy's asyncpg adapter under it
        self._bound: AsyncConnection | None = None  # the session's connection over `_pooled`
        self._session: AsyncSession | None = None
        self._sealed = False  # its one write committed by itself (`unbegun_connection`)

    async def connection(self) -> asyncpg.Connection:
        """The asyncpg connection, inside this transaction (checked out and begun if need be)."""
        self._check_open()
        if self._session is not None or self._engine is None:
            return await driver_connection(self.session)
        return await _begun(await self._checked_out())

    async def reading(self) -> asyncpg.Connection:
        """The asyncpg connection for a statement that only reads: in this transaction once it has
        begun, else outside any, so that a command whose reads come before its writes sends no BEGIN
        for them. Each statement of a READ COMMITTED transaction reads its own snapshot anyway; what
        a transaction adds to reads (locks, `SET LOCAL`) goes through `session` or `connection()`,
        which begin it."""
        if self._session is not None or self._engine is None:
            return await driver_connection(self.session)
        adapted = await self._checked_out()
        driver: asyncpg.Connection = adapted._connection
        return driver

    async def unbegun_connection(self) -> asyncpg.Connection | None:
        """The connection outside any transaction while nothing has begun (no statement through
        `connection()`, no session), else None: for a unit of work whose only write is one statement,
        which then commits by itself. The caller `seal()`s the transaction once that write succeeded."""
        if self._sealed or self._session is not None or self._engine is None:
            return None
        connection = await self.reading()
        return None if connection.is_in_transaction() else connection

    def seal(self) -> None:
        """The write sent on `unbegun_connection()` has committed: nothing more may be written here."""
        self._sealed = True

    @property
    def sealed(self) -> bool:
        return self._sealed

    def _check_open(self) -> None:
        if self._sealed:
            raise RuntimeError(
                "this transaction's one write has committed by itself: nothing more can join it"
            )

    async def _checked_out(self) -> Any:
        assert self._engine is not None
        if self._adapted is None:
            self._pooled = await self._engine.raw_connection()
            self._adapted = self._pooled.dbapi_connection
        return self._adapted

    @property
    def session(self) -> AsyncSession:
        """An ORM session in this transaction (on the connection `connection()` took, if it did)."""
        if self._session is None:
            self._check_open()
            if self._pooled is None or self._engine is None:
                self._session = self._session_factory()
            else:
                # Core's transaction on a connection SQLAlchemy's adapter has already begun: no second
                # BEGIN is sent (the dialect's do_begin is a no-op, the adapter begins lazily).
                sync = Connection(self._engine.sync_engine, self._pooled)
                self._bound = AsyncConnection(self._engine, sync)
                self._session = self._session_factory(bind=self._bound)
        return self._session

    async def commit(self) -> None:
        if self._session is not None:
            await self._session.commit()
        # A session made after the connection ends only a transaction it used; the connection's (its
        # statements sent through `connection()` alone) is ended here.
        await self._end("commit")

    async def rollback(self) -> None:
        if self._session is not None:
            await self._session.rollback()
        await self._end("rollback")

    async def _end(self, how: str) -> None:
        adapted = self._adapted
        if adapted is not None and adapted._transaction is not None:
            await adapted._call_and_discard(getattr(adapted._transaction, how))

    async def close(self) -> None:
        """Roll back whatever was not committed and give the connection back to the pool."""
        session, self._session = self._session, None
        bound, self._bound = self._bound, None
        pooled, self._pooled = self._pooled, None
        adapted, self._adapted = self._adapted, None
        if session is not None:
            try:
                await session.close()
            finally:
                if bound is not None:
                    await bound.close()  # its pool's reset rolls back what the session did not use
            return
        if pooled is None:
            return
        clean = False
        try:
            if adapted._transaction is not None:
                await adapted._call_and_discard(adapted._transaction.rollback)
            clean = True
        finally:
            # Back to the pool, in a greenlet (a pool already full closes an overflow connection); one
            # whose rollback failed or was interrupted (the server went away) is dropped, never lent again.
            await greenlet_spawn(pooled.close if clean else pooled.invalidate)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # expire_on_commit=False: objects stay readable after commit (the response is built after it).
    return async_sessionmaker(engine, expire_on_commit=False)
