"""The default database URL names no host: services reach this machine's server over its Unix socket."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import make_url

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
