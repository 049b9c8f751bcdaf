"""Appends per second, side by side on the same PostgreSQL: the event store, the `eventsourcing`
package's PostgreSQL recorder, and `pgbench`'s commit rate for an insert of the same size.

    python -m bench.appends [--seconds 10] [--clients 8]

Each writer appends one event per transaction (what a command does), `clients` at a time, for
`seconds`; the payload is a `ProfileUpdated` envelope of the example document, encoded as the event
store stores it, so every contender writes the same number of bytes per event:

- **event store** (`shared.eventstore.EventStore.append` through SQLAlchemy + asyncpg, as the services
  use it): each client its own stream, version after version; the statement checks the version,
  inserts, and counts (optimistic concurrency), the row is JSONB;
- **eventsourcing** (`eventsourcing.postgres.PostgresApplicationRecorder.insert_events`, psycopg 3,
  one thread per client): the package's recorder with its own table (a `bytea` state, a global
  notification id, which it orders by locking the table on each insert);
- **pgbench** (`-n -c clients -j 2 -T seconds -f script`): `INSERT` of a row of the same size into a
  table with the same unique key, autocommit: the commit rate PostgreSQL sustains from a C client on
  this machine, the physical limit the other two are compared with.

Each runs in a database of its own (created and dropped here), one after the other. Wall-clock rates
on a shared machine: read them as ratios within one run (the load average is recorded beside them).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import asyncpg
from sqlalchemy.engine import make_url

from shared.db import create_database, drop_database, local_socket_directory
from shared.envelope import Envelope, encode
from shared.settings import with_database

DB_PREFIX: Final = "eebench_appends"


def profile_envelope() -> Envelope:
    """The payload every contender writes: a ProfileUpdated of the example document."""
    from shared.events.catalogue import ProfileUpdated
    from shared.messages import envelope_for
    from shared.rules.document import PROFILE_DOCUMENT_EXAMPLE

    now = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
    event = ProfileUpdated(
        profile_id=str(uuid.uuid4()),
        owner="bench",
        document=PROFILE_DOCUMENT_EXAMPLE,
        status="in_pool",
        eligible_programs=["fsw"],
        submitted_at=now,
        expires_at=now,
        updated_at=now,
    )
    return envelope_for(event, source="ee/bench", time=now)


def _server(dsn: str) -> dict[str, Any]:
    """Where the peers connect. A URL without a host means this machine's server over its Unix socket
    (what asyncpg, and so the services and the event store here, then use): the peers are given the
    same transport, by the socket directory asyncpg finds."""
    url = make_url(dsn)
    port = url.port or 5432
    return {
        "host": url.host or str(url.query.get("host") or local_socket_directory(port) or "localhost"),
        "port": port,
        "user": url.username or "ee",
        "password": url.password or "",
    }


async def _recreate(dsn: str, name: str, *, drop_only: bool = False) -> None:
    """The peers' database `name`, new and empty (or only dropped): `shared.db`'s, which also waits
    out what bulk writes leave behind (an autovacuum worker)."""
    url = with_database(dsn, name)
    await (drop_database(url) if drop_only else create_database(url))


def _rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else 0.0


# --- the event store ---------------------------------------------------------------------------------


async def event_store_appends(database_url: str, seconds: float, clients: int) -> dict[str, Any]:
    """Appends/s of `EventStore.append`, one event per transaction, `clients` streams in parallel."""
    from dataclasses import replace

    from sqlalchemy.ext.asyncio import create_async_engine

    from shared.db import asyncpg_connect_args, create_platform_schema, session_factory
    from shared.envelope import new_event_id
    from shared.eventstore import EventStore

    engine = create_async_engine(
        database_url,
        pool_size=clients,
        max_overflow=0,
        connect_args=asyncpg_connect_args(database_url),
    )
    try:
        await create_platform_schema(engine)
        sessions = session_factory(engine)
        store = EventStore()
        template = profile_envelope()
        counts = [0] * clients
        stop_at = time.perf_counter() + seconds

        async def client(index: int) -> None:
            stream = f"bench-{index}-{uuid.uuid4().hex[:8]}"
            version = 0
            while time.perf_counter() < stop_at:
                async with sessions() as session:
                    await store.append(session, stream, version, [replace(template, id=new_event_id())])
                    await session.commit()
                version += 1
                counts[index] += 1

        started = time.perf_counter()
        cpu = time.process_time()
        await asyncio.gather(*(client(i) for i in range(clients)))
        elapsed = time.perf_counter() - started
        appended = sum(counts)
        return {
            "appends": appended,
            "seconds": round(elapsed, 2),
            "appends_per_s": _rate(appended, elapsed),
            "client_cpu_us_per_append": round((time.process_time() - cpu) / max(1, appended) * 1e6, 1),
        }
    finally:
        await engine.dispose()


# --- eventsourcing's PostgreSQL recorder -------------------------------------------------------------


def eventsourcing_appends(dsn: str, database: str, seconds: float, clients: int) -> dict[str, Any]:
    """Appends/s of `PostgresApplicationRecorder.insert_events`, one event per call, one thread each."""
    from eventsourcing.persistence import StoredEvent
    from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore

    server = _server(dsn)
    datastore = PostgresDatastore(
        dbname=database,
        host=server["host"],
        port=server["port"],
        user=server["user"],
        password=server["password"],
        pool_size=clients,
        max_overflow=0,
    )
    try:
        recorder = PostgresApplicationRecorder(datastore)
        recorder.create_table()
        state = encode(profile_envelope())
        topic = "bench:ProfileUpdated"
        counts = [0] * clients
        stop_at = time.perf_counter() + seconds

        def client(index: int) -> None:
            originator = uuid.uuid4()
            version = 1
            while time.perf_counter() < stop_at:
                recorder.insert_events([StoredEvent(originator, version, topic, state)])
                version += 1
                counts[index] += 1

        threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
        started = time.perf_counter()
        cpu = time.process_time()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        appended = sum(counts)
        return {
            "appends": appended,
            "seconds": round(elapsed, 2),
            "appends_per_s": _rate(appended, elapsed),
            "client_cpu_us_per_append": round((time.process_time() - cpu) / max(1, appended) * 1e6, 1),
        }
    finally:
        datastore.close()


# --- pgbench -----------------------------------------------------------------------------------------

_PGBENCH_SCHEMA = """
CREATE TABLE appends (stream_id text NOT NULL, version bigint NOT NULL, payload text NOT NULL,
                      UNIQUE (stream_id, version));
CREATE SEQUENCE appends_version;
"""
_PGBENCH_SCRIPT = (
    "INSERT INTO appends VALUES (:client_id, nextval('appends_version'), repeat('x', {size}));\n"
)
_TPS = re.compile(r"tps = ([0-9.]+)")


def pgbench_binary() -> str | None:
    """pgbench on PATH or in the server's bin directory (Debian: postgresql-contrib's files)."""
    found = shutil.which("pgbench")
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/pgbench"))
    return str(candidates[-1]) if candidates else None


async def pgbench_commits(dsn: str, database: str, seconds: float, clients: int, size: int) -> dict[str, Any]:
    """pgbench's tps for one INSERT of `size` bytes per transaction."""
    binary = pgbench_binary()
    if binary is None:
        raise RuntimeError("pgbench not found: deploy/local/bench.sh installs postgresql-contrib")
    conn = await asyncpg.connect(with_database(dsn, database), timeout=10)
    try:
        await conn.execute(_PGBENCH_SCHEMA)
    finally:
        await conn.close()
    server = _server(dsn)
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as script:
        script.write(_PGBENCH_SCRIPT.format(size=size))
    try:
        command = [
            binary,
            "-n",
            "-c",
            str(clients),
            "-j",
            str(min(clients, 2)),
            "-T",
            str(max(1, round(seconds))),
            "-h",
            server["host"],
            "-p",
            str(server["port"]),
            "-U",
            server["user"],
            "-f",
            script.name,
            database,
        ]
        env = {**os.environ, "PGPASSWORD": server["password"]}
        done = await asyncio.to_thread(
            subprocess.run,
            command,
            env=env,
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=False,
        )
    finally:
        os.unlink(script.name)
    match = _TPS.search(done.stdout)
    if done.returncode != 0 or match is None:
        raise RuntimeError(f"pgbench failed ({done.returncode}): {done.stderr[-500:] or done.stdout[-500:]}")
    rate = round(float(match.group(1)), 1)
    return {"appends_per_s": rate, "seconds": seconds, "command": " ".join(command)}


# --- all three ---------------------------------------------------------------------------------------


async def measure_appends(dsn: str, *, seconds: float = 10.0, clients: int = 8) -> dict[str, Any]:
    """The three rates and the event store's ratio to each. `dsn`: asyncpg URL of the `postgres` db."""
    size = len(encode(profile_envelope()))
    figures: dict[str, Any] = {
        "payload_bytes": size,
        "clients": clients,
        "seconds": seconds,
        "loadavg_before": [round(x, 2) for x in os.getloadavg()],
    }
    runs = (("event_store", "es"), ("eventsourcing", "lib"), ("pgbench", "pg"))
    for what, suffix in runs:
        database = f"{DB_PREFIX}_{suffix}_{os.getpid()}"  # two bench runs at once never share one
        await _recreate(dsn, database)
        try:
            if what == "event_store":
                url = with_database(dsn, database, driver="postgresql+asyncpg")
                figures[what] = await event_store_appends(url, seconds, clients)
            elif what == "eventsourcing":
                figures[what] = await asyncio.to_thread(
                    eventsourcing_appends, dsn, database, seconds, clients
                )
            else:
                figures[what] = await pgbench_commits(dsn, database, seconds, clients, size)
        except Exception as exc:  # one contender failing leaves the others' figures
            figures[what] = {"error": f"{type(exc).__name__}: {exc}"}
        finally:
            await _recreate(dsn, database, drop_only=True)
    figures["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    ours = figures["event_store"].get("appends_per_s")
    for other in ("eventsourcing", "pgbench"):
        theirs = figures[other].get("appends_per_s")
        figures[f"ratio_to_{other}"] = round(ours / theirs, 3) if ours and theirs else None
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.appends", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument(
        "--dsn", default=os.environ.get("BENCH_PG_DSN", "postgresql://ee:ee@127.0.0.1:5432/postgres")
    )
    args = parser.parse_args(argv)
    figures = asyncio.run(measure_appends(args.dsn, seconds=args.seconds, clients=args.clients))
    import orjson

    print(orjson.dumps(figures, option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
