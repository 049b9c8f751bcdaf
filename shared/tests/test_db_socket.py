"""The default database URL names no host: services reach this machine's server over its Unix socket."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from shared.db import create_engine, local_socket_directory, plain_connection
from shared.settings import with_database
from shared.testing import PlatformDatabase


async def test_the_default_url_speaks_to_the_local_server_over_its_unix_socket(
    platform_db: PlatformDatabase,
) -> None:
    # The fixture's settings take the default URL (only the database suffix is the test's own).
    assert make_url(platform_db.settings.database_url).host is None
    async with platform_db.engine.connect() as conn:
        row = (await conn.execute(sa.text("SELECT inet_server_addr(), inet_client_addr()"))).one()
    # Both are NULL only for a Unix-socket connection; over TCP loopback they are 127.0.0.1.
    assert tuple(row) == (None, None)


async def test_a_url_naming_the_socket_directory_keeps_it_when_pointed_at_another_database(
    platform_db: PlatformDatabase,
) -> None:
    """`?host=<directory>` is how a URL names a socket directory that is not asyncpg's default; the
    database name comes before the query, so another database's URL must be built by parsing it."""
    directory = local_socket_directory()
    assert directory is not None, "no server socket where asyncpg looks"
    name = platform_db.settings.database_name
    url = with_database(platform_db.settings.database_url, "postgres") + f"?host={directory}"
    settings = platform_db.settings.model_copy(update={"database_url": with_database(url, name)})
    assert settings.database_name == name
    assert make_url(settings.database_url).query == {"host": directory}

    engine = create_engine(settings)
    try:
        async with engine.connect() as conn:
            row = (await conn.execute(sa.text("SELECT current_database(), inet_server_addr()"))).one()
    finally:
        await engine.dispose()
    assert tuple(row) == (name, None)  # that database, over the socket


@pytest.mark.parametrize("socket_in_query", [False, True])
async def test_a_plain_connection_reaches_the_named_database_as_the_engine_does(
    platform_db: PlatformDatabase, socket_in_query: bool
) -> None:
    """The bulk paths (COPY, tools) speak asyncpg without SQLAlchemy: the same URL must take them to
    the same database, by the same socket, without TLS."""
    name = platform_db.settings.database_name
    url = platform_db.settings.database_url
    if socket_in_query:
        url = with_database(with_database(url, "postgres") + f"?host={local_socket_directory()}", name)
    conn = await plain_connection(url)
    try:
        row = await conn.fetchrow("SELECT current_database(), inet_server_addr()")
        tls = await conn.fetchval("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
    finally:
        await conn.close()
    assert row is not None and tuple(row) == (name, None)
    assert tls is False


def test_the_socket_directory_is_the_first_where_asyncpg_finds_the_server_socket() -> None:
    directory = local_socket_directory()
    assert directory is not None and Path(directory, ".s.PGSQL.5432").exists()
    assert local_socket_directory(port=1) is None  # no server listens there
