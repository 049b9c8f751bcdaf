"""The draws service's own tables (the platform tables come from `shared.db`)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

metadata = MetaData()

INVITATION_STATUSES = ("open", "declined", "expired", "applied")

rounds = Table(
    "rounds",
    metadata,
    Column("round_id", UUID(as_uuid=False), primary_key=True),
    Column("round_number", Integer, nullable=False, unique=True),
    Column("round_type", Text, nullable=False),
    Column("category_version", Text),
    Column("size", Integer, nullable=False),
    Column("invitations_count", Integer, nullable=False),
    Column("cutoff_crs", Integer),
    Column("tie_break_at", DateTime(timezone=True)),
    Column("held_at", DateTime(timezone=True), nullable=False),
    Column("idempotency_key", Text, nullable=False, unique=True),
    Column("request_hash", Text, nullable=False),
    Column("pool_position", JSONB, nullable=False),
    Column("pool_size", BigInteger, nullable=False),
    Column("eligible_count", BigInteger, nullable=False),
)

invitations = Table(
    "invitations",
    metadata,
    Column("invitation_id", UUID(as_uuid=False), primary_key=True),
    Column("round_id", UUID(as_uuid=False), ForeignKey("rounds.round_id"), nullable=False),
    Column("rank", Integer, nullable=False),
    Column("profile_id", Text, nullable=False),
    Column("owner", Text, nullable=False),
    Column("program", Text, nullable=False),
    Column("crs", Integer, nullable=False),
    Column("citizenship", Text, nullable=False),
    Column("submitted_at", DateTime(timezone=True), nullable=False),
    Column("invited_at", DateTime(timezone=True), nullable=False),
    Column("deadline", DateTime(timezone=True), nullable=False),
    Column("status", Text, nullable=False, server_default="open"),
    Column("closed_at", DateTime(timezone=True)),
    CheckConstraint(f"status IN {INVITATION_STATUSES!r}", name="invitations_status_known"),
    Index("invitations_round_rank", "round_id", "rank", unique=True),
    # The last line of defence: one open invitation per candidate, whatever the code above does.
    Index(
        "invitations_one_open_per_profile",
        "profile_id",
        unique=True,
        postgresql_where=text("status = 'open'"),
    ),
)
