"""Platform tables (event store streams, outbox, consumer bookkeeping), the invitations query table
and the profile facts read model.

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
EMPTY_LIST = sa.text("'[]'::jsonb")


def upgrade() -> None:
    create_platform_tables(op)
    _create_invitations()
    _create_profile_facts()


def downgrade() -> None:
    op.drop_table("profile_facts")
    op.drop_table("invitations")
    drop_platform_tables(op)


def _create_invitations() -> None:
    op.create_table(
        "invitations",
        sa.Column("invitation_id", sa.Text, primary_key=True),
        sa.Column("application_id", sa.Text, unique=True),
        sa.Column("profile_id", sa.Text, nullable=False),
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("round_id", sa.Text, nullable=False),
        sa.Column("round_number", sa.Integer, nullable=False),
        sa.Column("program", sa.Text, nullable=False),
        sa.Column("crs", sa.Integer, nullable=False),
        sa.Column("citizenship", sa.Text, nullable=False),
        sa.Column("invited_at", TZ, nullable=False),
        sa.Column("deadline", TZ, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("applied_at", TZ),
        sa.Column("decided_at", TZ),
        sa.Column("closed_at", TZ),
        sa.Column("reasons", JSONB, nullable=False, server_default=EMPTY_LIST),
        sa.Column("documents", JSONB),
        sa.Column("minimum_funds_cad", sa.Integer),
        sa.Column("copr_number", sa.Text),
        sa.Column("copr_expires_on", sa.Date),
        sa.Column("visa_issued", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("deadline_reminders", JSONB, nullable=False, server_default=EMPTY_LIST),
        sa.Column("copr_reminders", JSONB, nullable=False, server_default=EMPTY_LIST),
        sa.Column("next_due_at", TZ),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_index("ix_invitations_profile", "invitations", ["profile_id", "invited_at"])
    op.create_index("ix_invitations_state", "invitations", ["state"])
    op.create_index(
        "ix_invitations_due",
        "invitations",
        ["next_due_at"],
        postgresql_where=sa.text("next_due_at IS NOT NULL"),
    )


def _create_profile_facts() -> None:
    op.create_table(
        "profile_facts",
        sa.Column("profile_id", sa.Text, primary_key=True),
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("eligible_programs", JSONB, nullable=False),
        sa.Column("authorized_to_work_in_canada", sa.Boolean, nullable=False),
        sa.Column("has_valid_job_offer", sa.Boolean, nullable=False),
        sa.Column("family_size", sa.Integer, nullable=False),
        sa.Column("as_of", TZ, nullable=False),
    )
