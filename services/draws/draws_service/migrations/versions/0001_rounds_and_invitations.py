"""Platform tables, rounds and invitations.

Revision ID: 0001
Revises:
Create Date: 2026-01-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from shared.db import create_platform_tables, drop_platform_tables

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    create_platform_tables(op)
    _create_rounds()
    _create_invitations()


def downgrade() -> None:
    op.drop_table("invitations")
    op.drop_table("rounds")
    drop_platform_tables(op)


def _create_rounds() -> None:
    op.create_table(
        "rounds",
        sa.Column("round_id", UUID(as_uuid=False), primary_key=True),
        sa.Column("round_number", sa.Integer, nullable=False, unique=True),
        sa.Column("round_type", sa.Text, nullable=False),
        sa.Column("category_version", sa.Text),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("invitations_count", sa.Integer, nullable=False),
        sa.Column("cutoff_crs", sa.Integer),
        sa.Column("tie_break_at", TZ),
        sa.Column("held_at", TZ, nullable=False),
        sa.Column("idempotency_key", sa.Text, nullable=False, unique=True),
        sa.Column("request_hash", sa.Text, nullable=False),
        sa.Column("pool_position", JSONB, nullable=False),
        sa.Column("pool_size", sa.BigInteger, nullable=False),
        sa.Column("eligible_count", sa.BigInteger, nullable=False),
    )


def _create_invitations() -> None:
    op.create_table(
        "invitations",
        sa.Column("invitation_id", UUID(as_uuid=False), primary_key=True),
        sa.Column("round_id", UUID(as_uuid=False), sa.ForeignKey("rounds.round_id"), nullable=False),
        sa.Column("rank", sa.Integer, nullable=False),
        sa.Column("profile_id", sa.Text, nullable=False),
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("program", sa.Text, nullable=False),
        sa.Column("crs", sa.Integer, nullable=False),
        sa.Column("citizenship", sa.Text, nullable=False),
        sa.Column("submitted_at", TZ, nullable=False),
        sa.Column("invited_at", TZ, nullable=False),
        sa.Column("deadline", TZ, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="open"),
        sa.Column("closed_at", TZ),
        sa.CheckConstraint(
            "status IN ('open', 'declined', 'expired', 'applied')", name="invitations_status_known"
        ),
    )
    op.create_index("invitations_round_rank", "invitations", ["round_id", "rank"], unique=True)
    op.create_index(
        "invitations_one_open_per_profile",
        "invitations",
        ["profile_id"],
        unique=True,
        postgresql_where=sa.text("status = 'open'"),
    )
