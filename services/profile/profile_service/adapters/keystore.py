"""Candidates' data keys in the profile database, wrapped by the KEKs of `EE_KEK` (docs/PRIVACY.md).

The unwrapped key lives only in memory, for one unit of work. Destroying a key (erasure) leaves a
tombstone, so that no new key is ever made for that profile again.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from profile_service.adapters.tables import data_keys
from shared.crypto import KeyRing, WrappedKey, new_data_key
from shared.db import Transaction, driver_connection

_GET_SQL = "SELECT kek_id, wrapped FROM data_keys WHERE profile_id = $1"


class KeyErased(Exception):
    """The profile's data key was destroyed: its personal data can never be written again."""


@lru_cache(maxsize=8)
def keyring(kek_setting: str) -> KeyRing:
    return KeyRing.parse(kek_setting)


class KeyStore:
    def __init__(self, db: AsyncSession | Transaction, ring: KeyRing) -> None:
        self.db = db
        self.ring = ring

    @property
    def session(self) -> AsyncSession:
        """A session in the key store's transaction (a unit of work's makes it on first use)."""
        return self.db.session if isinstance(self.db, Transaction) else self.db

    # The same, as scalar subqueries on the profile id `$3` (read with a profile's snapshot and events).
    SELECTED_BY_PROFILE_3 = (
        "$3::text",
        "(SELECT kek_id FROM data_keys WHERE profile_id = $3::text)",
        "(SELECT wrapped FROM data_keys WHERE profile_id = $3::text)",
    )

    async def get(self, profile_id: str) -> bytes | None:
        """The profile's data key; None when it has none yet or it was erased."""
        connection = await driver_connection(self.db)
        row = await connection.fetchrow(_GET_SQL, profile_id)
        if row is None:
            return None
        return self.unwrapped(profile_id, row["kek_id"], row["wrapped"])

    def unwrapped(self, profile_id: str, kek_id: str | None, wrapped: bytes | None) -> bytes | None:
        """The data key from its stored row (None: none yet, or erased)."""
        if wrapped is None or kek_id is None:
            return None
        return self.ring.unwrap(WrappedKey(kek_id, wrapped), profile_id)

    async def get_or_create(self, profile_id: str, now: datetime) -> bytes:
        """The profile's data key, made and stored (wrapped) on first use; KeyErased after erasure."""
        data_key = new_data_key()
        wrapped = self.ring.wrap(data_key, profile_id)
        inserted = await self.session.execute(
            insert(data_keys)
            .values(profile_id=profile_id, kek_id=wrapped.kek_id, wrapped=wrapped.wrapped, created_at=now)
            .on_conflict_do_nothing(index_elements=["profile_id"])
            .returning(data_keys.c.profile_id)
        )
        if inserted.first() is not None:
            return data_key
        existing = await self.get(profile_id)
        if existing is None:
            raise KeyErased(profile_id)
        return existing

    async def created_at(self, profile_id: str) -> datetime | None:
        """When the profile's data key was made; None when it has none (or it was erased)."""
        found = await self.session.execute(
            sa.select(data_keys.c.created_at).where(
                data_keys.c.profile_id == profile_id, data_keys.c.wrapped.is_not(None)
            )
        )
        return found.scalar_one_or_none()

    async def is_erased(self, profile_id: str) -> bool:
        erased = await self.session.execute(
            sa.select(data_keys.c.erased_at).where(data_keys.c.profile_id == profile_id)
        )
        return erased.scalar_one_or_none() is not None

    async def destroy(self, profile_id: str, now: datetime) -> None:
        """Crypto-shredding: the wrapped key is overwritten by NULL (a tombstone stays)."""
        statement = insert(data_keys).values(
            profile_id=profile_id, kek_id=None, wrapped=None, created_at=now, erased_at=now
        )
        await self.session.execute(
            statement.on_conflict_do_update(
                index_elements=["profile_id"], set_={"kek_id": None, "wrapped": None, "erased_at": now}
            )
        )

    async def rewrap(self, batch_size: int = 500) -> int:
        """Re-wrap up to `batch_size` keys not under the current KEK; how many were re-wrapped.

        Events are never touched: they are sealed under the data keys, which do not change."""
        rows = (
            await self.session.execute(
                sa.select(data_keys.c.profile_id, data_keys.c.kek_id, data_keys.c.wrapped)
                .where(data_keys.c.wrapped.is_not(None), data_keys.c.kek_id != self.ring.current_id)
                .limit(batch_size)
                .with_for_update(skip_locked=True)
            )
        ).all()
        for row in rows:
            fresh = self.ring.rewrap(WrappedKey(row.kek_id, row.wrapped), row.profile_id)
            await self.session.execute(
                sa.update(data_keys)
                .where(data_keys.c.profile_id == row.profile_id)
                .values(kek_id=fresh.kek_id, wrapped=fresh.wrapped)
            )
        return len(rows)
