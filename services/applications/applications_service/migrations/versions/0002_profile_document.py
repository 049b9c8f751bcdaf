"""The profile document in the profile facts read model: the language results and ECAs an invitation
relied on are checked against it when the application is filed (an expired one refuses it).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("profile_facts", sa.Column("document", JSONB))


def downgrade() -> None:
    op.drop_column("profile_facts", "document")
