"""`event_store.transaction_id` and its index (the platform's `shared.migrations.event_store_commit_order_*`).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""

from collections.abc import Sequence

from alembic import op

from shared.migrations import event_store_commit_order_downgrade, event_store_commit_order_upgrade

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    event_store_commit_order_upgrade(op)


def downgrade() -> None:
    event_store_commit_order_downgrade(op)
