"""One active instance of a background job across replicas: a PostgreSQL session advisory lock held
by a dedicated connection (the outbox relay's scheme, for any job).

```python
async with advisory_leadership(engine, "notifications.dispatcher") as conn:
    if conn is None:
        ...  # another instance leads: wait and try again
    else:
        ...  # lead; run the job's queries on `conn`, so losing the connection stops the job
```

The connection is invalidated on exit (a session lock survives a return to the pool), so the lock
never lingers; a process killed outright loses it with its connection.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger(__name__)


def advisory_key(name: str) -> int:
    """A stable signed 64-bit advisory lock id for `name`."""
    digest = hashlib.blake2b(f"ee.leader:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@asynccontextmanager
async def advisory_leadership(engine: AsyncEngine, name: str) -> AsyncIterator[AsyncConnection | None]:
    """A connection holding the lock `name`, or None when another session holds it."""
    conn = await engine.connect()
    held = False
    try:
        result = await conn.execute(sa.select(sa.func.pg_try_advisory_lock(advisory_key(name))))
        held = bool(result.scalar())
        await conn.commit()
        yield conn if held else None
    finally:
        try:
            if held:
                await conn.invalidate()
            await conn.close()
        except Exception as exc:  # a broken connection: the server already dropped the lock
            log.debug("closing the leadership connection of %s: %r", name, exc)
