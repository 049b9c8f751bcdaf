"""Platform tables (event store, outbox, consumer bookkeeping, idempotency keys) and the profiles
query table.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

from shared.db import create_platform_tables, drop_platform_tables

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    create_platform_tables(op)
    op.create_table(
        "profiles",
        sa.Column("profile_id", sa.Text, primary_key=True),
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("eligible_programs", ARRAY(sa.Text), nullable=False),
        sa.Column("submitted_at", TZ, nullable=True),
        sa.Column("expires_at", TZ, nullable=True),
        sa.Column("due_at", TZ, nullable=True),
        sa.Column("nomination_province", sa.Text, nullable=True),
        sa.Column("nominated_at", TZ, nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_index("ix_profiles_owner_created", "profiles", ["owner", "created_at", "profile_id"])
    op.create_index("ix_profiles_due", "profiles", ["due_at"], postgresql_where=sa.text("due_at IS NOT NULL"))
    op.create_index(
        "ix_profiles_nomination",
        "profiles",
        ["nomination_province", "nominated_at"],
        postgresql_where=sa.text("nomination_province IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_table("profiles")
    drop_platform_tables(op)
