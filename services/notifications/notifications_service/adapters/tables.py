"""The service's own tables (the platform's come from `shared.db`).

- `subscriptions`: one row per subscription; its secrets encrypted (AES-GCM, `adapters.secrets`).
- `nominations`: which province's nomination of a candidate stands (a province's scope).
- `events`: every event consumed, in arrival order (`position`): the bodies of deliveries and the
  source of a replay.
- `deliveries`: one per (event, subscription), its id the stable `webhook-id`; `seq` orders the
  deliveries of one candidate (`ordering_key`) to one subscription.
- `delivery_attempts`: the log of every HTTP attempt.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

metadata = sa.MetaData()
TZ = sa.DateTime(timezone=True)
PENDING = sa.text("status = 'pending'")

subscriptions = sa.Table(
    "subscriptions",
    metadata,
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
    sa.Index("ix_subscriptions_subscriber", "subscriber", "role"),
)

nominations = sa.Table(
    "nominations",
    metadata,
    sa.Column("profile_id", sa.Text, primary_key=True),
    sa.Column("province", sa.Text),
    sa.Column("as_of", TZ, nullable=False),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("position", sa.BigInteger, sa.Identity(), nullable=False, unique=True),
    sa.Column("event_id", sa.Text, primary_key=True),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("time", TZ, nullable=False),
    sa.Column("ordering_key", sa.Text, nullable=False),
    sa.Column("envelope", JSONB, nullable=False),
    sa.Index("ix_events_time", "time"),
    sa.Index("ix_events_ordering_key", "ordering_key"),  # a person's events, to erase them (0002)
)

deliveries = sa.Table(
    "deliveries",
    metadata,
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
    sa.Index("ix_deliveries_log", "subscription_id", "seq"),
    sa.Index("ix_deliveries_pending", "seq", postgresql_where=PENDING),
    sa.Index("ix_deliveries_pending_key", "subscription_id", "ordering_key", "seq", postgresql_where=PENDING),
    sa.Index("ix_deliveries_event", "event_id"),  # an erased person's deliveries (0002)
)

delivery_attempts = sa.Table(
    "delivery_attempts",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("delivery_id", sa.Text, nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("at", TZ, nullable=False),
    sa.Column("status_code", sa.Integer),
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Column("error", sa.Text),
    sa.Index("ix_delivery_attempts_delivery", "delivery_id", "attempt"),
)
