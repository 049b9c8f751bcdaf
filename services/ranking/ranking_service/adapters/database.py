"""Creating, migrating and dropping a ranking database (the rebuild's fresh projection, and tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from shared.db import create_database as recreate_database
from shared.db import drop_database
from shared.migrations import upgrade_to_head

__all__ = ["ALEMBIC_INI", "drop_database", "migrate", "recreate_database"]

ALEMBIC_INI: Final = Path(__file__).resolve().parents[2] / "alembic.ini"
"""`recreate_database(url)`: an empty database named by `url` (a leftover of the same name is dropped
first); `drop_database(url)`; both from `shared.db`."""


async def migrate(database_url: str) -> None:
    """Run the service's Alembic migrations up to head."""
    await upgrade_to_head(ALEMBIC_INI, database_url)
