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
    # When it left for good (withdrawn, expired, invitation expired): its erasure is due a retention
    # period later (docs/PRIVACY.md); the row itself goes at erasure.
    sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Index("ix_profiles_closed", "closed_at", postgresql_where=sa.text("closed_at IS NOT NULL")),
    sa.Index("ix_profiles_owner_created", "owner", "created_at", "profile_id"),
    sa.Index("ix_profiles_due", "due_at", postgresql_where=sa.text("due_at IS NOT NULL")),
    sa.Index(
        "ix_profiles_nomination",
        "nomination_province",
        "nominated_at",
        postgresql_where=sa.text("nomination_province IS NOT NULL"),
    ),
)

# Each candidate's data key (docs/PRIVACY.md), wrapped by a key-encryption key of EE_KEK (named by
# `kek_id`). Never on Kafka, never in an event. Erasure destroys the key and leaves a tombstone
# (`wrapped` NULL, `erased_at` set), so no new key is ever made for an erased profile.
data_keys = sa.Table(
    "data_keys",
    metadata,
    sa.Column("profile_id", sa.Text, primary_key=True),
    sa.Column("kek_id", sa.Text, nullable=True),
    sa.Column("wrapped", sa.LargeBinary, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("(wrapped IS NULL) = (erased_at IS NOT NULL)", name="ck_data_keys_erased_or_held"),
    sa.Index("ix_data_keys_kek", "kek_id", postgresql_where=sa.text("wrapped IS NOT NULL")),
)
