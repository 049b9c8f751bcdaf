"""`event_store.transaction_id` and its index, so that `EventStore.read_all` reads in commit order
without the sequence-gap trap; for databases whose platform tables were created before the column.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

from collections.abc import Sequence

from alembic import op

from shared.db import add_platform_columns

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    add_platform_columns(op)  # idempotent: a fresh database already has them from 0001


def downgrade() -> None:
    op.drop_index("ix_event_store_commit_order", table_name="event_store")
    op.drop_column("event_store", "transaction_id")
