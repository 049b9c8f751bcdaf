"""The platform's `snapshots` table (a profile's state every few versions, so that loading it does not
read its whole history), for databases migrated before it was a platform table.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""

from collections.abc import Sequence

from alembic import op

from shared.db import create_platform_tables

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_platform_tables(op)  # only the missing ones: here `snapshots`


def downgrade() -> None:
    op.drop_table("snapshots")
