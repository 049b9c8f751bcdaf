"""`ranking_rules.revision`: the active-rules state's revision, the ETag that `POST
/v1/admin/rules/{version}/activate` wants as `If-Match` (0 before any activation; +1 per activation).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # An existing row was set by at least one activation: it starts at 1, so that an ETag read before
    # the upgrade ("0", no row) never matches a state that was changed since.
    op.add_column(
        "ranking_rules",
        sa.Column("revision", sa.BigInteger, nullable=False, server_default=sa.text("1")),
    )
    op.alter_column("ranking_rules", "revision", server_default=None)


def downgrade() -> None:
    op.drop_column("ranking_rules", "revision")
