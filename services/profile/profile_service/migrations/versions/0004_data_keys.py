"""`data_keys`: each candidate's data key, wrapped by a key-encryption key; `profiles.closed_at`, from
which a profile's erasure is due (docs/PRIVACY.md).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "data_keys",
        sa.Column("profile_id", sa.Text, primary_key=True),
        sa.Column("kek_id", sa.Text, nullable=True),
        sa.Column("wrapped", sa.LargeBinary, nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("erased_at", TZ, nullable=True),
        sa.CheckConstraint("(wrapped IS NULL) = (erased_at IS NOT NULL)", name="ck_data_keys_erased_or_held"),
    )
    op.add_column("profiles", sa.Column("closed_at", TZ, nullable=True))
    op.create_index(
        "ix_profiles_closed", "profiles", ["closed_at"], postgresql_where=sa.text("closed_at IS NOT NULL")
    )
    op.create_index(
        "ix_data_keys_kek", "data_keys", ["kek_id"], postgresql_where=sa.text("wrapped IS NOT NULL")
    )


def downgrade() -> None:
    op.drop_table("data_keys")
    op.drop_index("ix_profiles_closed", table_name="profiles")
    op.drop_column("profiles", "closed_at")
