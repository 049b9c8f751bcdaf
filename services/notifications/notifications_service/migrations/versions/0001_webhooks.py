"""Platform tables, subscriptions, nominations, the event log, deliveries and their attempts.

Revision ID: 0001
Revises:
Create Date: 2026-12-04
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
PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    create_platform_tables(op)
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("subscriber", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("province", sa.Text),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("event_types", JSONB, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("candidates", JSONB, nullable=False),
        sa.Column("secret", sa.LargeBinary, nullable=False),
        sa.Column("previous_secret", sa.LargeBinary),
        sa.Column("previous_valid_until", TZ),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("disabled_reason", sa.Text),
        sa.Column("failing_since", TZ),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_index("ix_subscriptions_subscriber", "subscriptions", ["subscriber", "role"])
    op.create_table(
        "nominations",
        sa.Column("profile_id", sa.Text, primary_key=True),
        sa.Column("province", sa.Text),
        sa.Column("as_of", TZ, nullable=False),
    )
    op.create_table(
        "events",
        sa.Column("position", sa.BigInteger, sa.Identity(), nullable=False, unique=True),
        sa.Column("event_id", sa.Text, primary_key=True),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("time", TZ, nullable=False),
        sa.Column("ordering_key", sa.Text, nullable=False),
        sa.Column("envelope", JSONB, nullable=False),
    )
    op.create_index("ix_events_time", "events", ["time"])
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("seq", sa.BigInteger, sa.Identity(), nullable=False, unique=True),
        sa.Column("subscription_id", sa.Text, nullable=False),
        sa.Column("event_id", sa.Text, nullable=False),
        sa.Column("ordering_key", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", TZ, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("last_attempt_at", TZ),
        sa.Column("delivered_at", TZ),
        sa.Column("last_status_code", sa.Integer),
        sa.Column("last_error", sa.Text),
        sa.Column("last_latency_ms", sa.Float),
        sa.UniqueConstraint("subscription_id", "event_id", name="uq_deliveries_subscription_event"),
    )
    op.create_index("ix_deliveries_log", "deliveries", ["subscription_id", "seq"])
    op.create_index("ix_deliveries_pending", "deliveries", ["seq"], postgresql_where=PENDING)
    op.create_index(
        "ix_deliveries_pending_key",
        "deliveries",
        ["subscription_id", "ordering_key", "seq"],
        postgresql_where=PENDING,
    )
    op.create_table(
        "delivery_attempts",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("delivery_id", sa.Text, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("status_code", sa.Integer),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("error", sa.Text),
    )
    op.create_index("ix_delivery_attempts_delivery", "delivery_attempts", ["delivery_id", "attempt"])


def downgrade() -> None:
    for table in ("delivery_attempts", "deliveries", "events", "nominations", "subscriptions"):
        op.drop_table(table)
    drop_platform_tables(op)
