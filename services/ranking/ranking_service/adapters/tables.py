"""The ranking service's own tables (besides the platform tables of `shared.db`)."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

TZ = sa.DateTime(timezone=True)

# One row per profile ever heard of: the merged facts, the last score and the standing. The pool is
# the rows `in_pool`; `rescore_at` is when time alone may change the standing (NULL: only an event can).
# JSON values are JSON text (migration 0004): stored and handed back whole, never queried in SQL.
JSON_TEXT = sa.Text
ranking_profiles = sa.Table(
    "ranking_profiles",
    metadata,
    sa.Column("profile_id", sa.Text, primary_key=True),
    sa.Column("owner", sa.Text, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),  # profile stream aggregate version applied
    sa.Column("document", JSON_TEXT, nullable=True),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("submitted_at", TZ, nullable=True),
    sa.Column("expires_at", TZ, nullable=True),
    sa.Column("nominated", sa.Boolean, nullable=False),
    sa.Column("province", sa.Text, nullable=True),
    sa.Column("invitations", JSON_TEXT, nullable=False),  # {invitation_id: invited|declined|expired|applied}
    sa.Column("in_pool", sa.Boolean, nullable=False),
    sa.Column("reason", sa.Text, nullable=True),  # why not in the pool
    sa.Column("crs", sa.Integer, nullable=True),
    sa.Column("breakdown", JSON_TEXT, nullable=True),
    sa.Column("rules_version", sa.Text, nullable=True),
    sa.Column("programs", JSON_TEXT, nullable=True),
    sa.Column("categories", JSON_TEXT, nullable=True),
    sa.Column("noc_codes", JSON_TEXT, nullable=True),
    sa.Column("lowest_clb", JSON_TEXT, nullable=True),
    sa.Column("citizenship", sa.Text, nullable=True),
    sa.Column("scored_on", sa.Date, nullable=True),
    sa.Column("rescore_on", sa.Date, nullable=True),
    sa.Column("basis_version", sa.Integer, nullable=False),
    sa.Column("rescore_at", TZ, nullable=True),
    sa.Column("revision", sa.BigInteger, nullable=False),
    sa.Column("updated_at", TZ, nullable=False),
    sa.Index(
        "ix_ranking_profiles_rescore_at", "rescore_at", postgresql_where=sa.text("rescore_at IS NOT NULL")
    ),
)

# The CRS rules version in force for the pool (one row), switched by ops.
ranking_rules = sa.Table(
    "ranking_rules",
    metadata,
    sa.Column("id", sa.SmallInteger, primary_key=True),
    sa.Column("version", sa.Text, nullable=False),
    sa.Column("activated_at", TZ, nullable=False),
    # +1 per activation (no row: 0); the ETag of `GET /v1/admin/rules`, the If-Match of an activation.
    sa.Column("revision", sa.BigInteger, nullable=False),
    sa.CheckConstraint("id = 1", name="ck_ranking_rules_single_row"),
)
