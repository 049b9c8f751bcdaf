"""`ranking_profiles`' JSON columns as text, not jsonb: the projection stores those values and hands them
back whole (the document to rescore it, the score's parts to load the pool); no query looks inside
them. As jsonb, PostgreSQL parsed every value written into its binary form and printed it again on
every read: for a row, about 36 µs of the server's CPU for a 2 KB document and 6 µs for the six small
values on write, 10 µs and 2 µs on read, most of the database's work in a rebuild. The service writes
the text with orjson and decodes it with orjson on read, so the columns always hold valid JSON.

The conversion rewrites the table once, under an exclusive lock: 2.4 s for 100,000 rows on the 2-core
machine of `make bench` (back to jsonb: 4.1 s), so expect about half a minute for a pool of 1M.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_COLUMNS = ("document", "invitations", "breakdown", "programs", "categories", "noc_codes", "lowest_clb")


def upgrade() -> None:
    _retype("text")


def downgrade() -> None:
    _retype("jsonb")


def _retype(kind: str) -> None:
    # One ALTER TABLE: the table is rewritten once, not once per column.
    changes = ", ".join(f"ALTER COLUMN {name} TYPE {kind} USING {name}::{kind}" for name in JSON_COLUMNS)
    op.execute(f"ALTER TABLE ranking_profiles {changes}")
