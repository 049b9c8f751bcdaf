"""Platform tables (outbox, consumer bookkeeping), the ranking projection and the active rules version.

Revision ID: 0001
Revises:
Create Date: 2026-01-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from shared.db import create_platform_tables, drop_platform_tables

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    create_platform_tables(op)
    _create_profiles()
    op.create_table(
        "ranking_rules",
        sa.Column("id", sa.SmallInteger, primary_key=True),
        sa.Column("version", sa.Text, nullable=False),
        sa.Column("activated_at", TZ, nullable=False),
        sa.CheckConstraint("id = 1", name="ck_ranking_rules_single_row"),
    )


def downgrade() -> None:
    op.drop_table("ranking_rules")
    op.drop_table("ranking_profiles")
    drop_platform_tables(op)


def _create_profiles() -> None:
    op.create_table(
        "ranking_profiles",
        sa.Column("profile_id", sa.Text, primary_key=True),
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("document", JSONB, nullable=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("submitted_at", TZ, nullable=True),
        sa.Column("expires_at", TZ, nullable=True),
        sa.Column("nominated", sa.Boolean, nullable=False),
        sa.Column("province", sa.Text, nullable=True),
        sa.Column("invitations", JSONB, nullable=False),
        sa.Column("in_pool", sa.Boolean, nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("crs", sa.Integer, nullable=True),
        sa.Column("breakdown", JSONB, nullable=True),
        sa.Column("rules_version", sa.Text, nullable=True),
        sa.Column("programs", JSONB, nullable=True),
        sa.Column("categories", JSONB, nullable=True),
        sa.Column("noc_codes", JSONB, nullable=True),
        sa.Column("lowest_clb", JSONB, nullable=True),
        sa.Column("citizenship", sa.Text, nullable=True),
        sa.Column("scored_on", sa.Date, nullable=True),
        sa.Column("rescore_on", sa.Date, nullable=True),
        sa.Column("basis_version", sa.Integer, nullable=False),
        sa.Column("rescore_at", TZ, nullable=True),
        sa.Column("revision", sa.BigInteger, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_index(
        "ix_ranking_profiles_rescore_at",
        "ranking_profiles",
        ["rescore_at"],
        postgresql_where=sa.text("rescore_at IS NOT NULL"),
    )
