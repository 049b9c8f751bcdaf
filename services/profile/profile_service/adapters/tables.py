"""The service's own table: a query model of the profiles, projected from their streams.

The event store is the source of truth. `profiles` only answers what a stream cannot answer cheaply:
whose profiles are these (listing and paging), which profiles are due for the scheduler, and which
nominations a province holds. It is written in the same transaction as the events it reflects.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY

metadata = sa.MetaData()

profiles = sa.Table(
    "profiles",
    metadata,
    sa.Column("profile_id", sa.Text, primary_key=True),
    sa.Column("owner", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("eligible_programs", ARRAY(sa.Text), nullable=False),
    sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("nomination_province", sa.Text, nullable=True),
    sa.Column("nominated_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_profiles_owner_created", "owner", "created_at", "profile_id"),
    sa.Index("ix_profiles_due", "due_at", postgresql_where=sa.text("due_at IS NOT NULL")),
    sa.Index(
        "ix_profiles_nomination", "nomination_province", "nominated_at",
        postgresql_where=sa.text("nomination_province IS NOT NULL"),
    ),
)
