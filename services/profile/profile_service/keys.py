"""Operators' commands for the candidates' data keys (docs/PRIVACY.md).

    python -m profile_service.keys status     # data keys per key-encryption key, erased tombstones
    python -m profile_service.keys rewrap     # re-wrap every data key under EE_KEK's first (current) key

Rotation: put the new KEK first in `EE_KEK`, keep the old one after it, restart the services, run
`rewrap` (events are not touched: they are sealed under the data keys, which do not change), check
`status` shows only the current KEK, then drop the old key from `EE_KEK`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

import sqlalchemy as sa

from profile_service.adapters.keystore import KeyStore
from profile_service.adapters.tables import data_keys
from profile_service.settings import ProfileSettings
from shared.db import create_engine, session_factory


async def rewrap_all(settings: ProfileSettings, batch_size: int = 500) -> int:
    """Re-wrap every data key not under the current KEK, one transaction per batch; how many."""
    engine = create_engine(settings)
    sessions = session_factory(engine)
    ring = settings.keyring()
    total = 0
    try:
        while True:
            async with sessions() as session, session.begin():
                done = await KeyStore(session, ring).rewrap(batch_size)
            total += done
            if done == 0:
                return total
    finally:
        await engine.dispose()


async def key_status(settings: ProfileSettings) -> dict[str, int]:
    """Data keys per KEK id (`erased` for the tombstones of erased profiles)."""
    engine = create_engine(settings)
    try:
        async with engine.connect() as conn:
            kek = sa.func.coalesce(data_keys.c.kek_id, "erased")
            rows = (await conn.execute(sa.select(kek, sa.func.count()).group_by(kek))).all()
    finally:
        await engine.dispose()
    return {str(name): int(count) for name, count in rows}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m profile_service.keys", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("command", choices=("status", "rewrap"))
    parser.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args(argv)
    settings = ProfileSettings()
    current = settings.keyring().current_id
    if args.command == "rewrap":
        done = asyncio.run(rewrap_all(settings, args.batch_size))
        print(f"re-wrapped {done} data keys under KEK {current}")
    else:
        for name, count in sorted(asyncio.run(key_status(settings)).items()):
            print(f"{name}{' (current)' if name == current else ''}: {count}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
