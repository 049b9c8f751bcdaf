"""The service's own tables: the invitations/applications query table and the profile facts.

The aggregate's history lives in the platform's `event_store` (one stream per invitation,
`invitation-<id>`); `invitations` is a projection of it, rewritten in the same transaction as every
append, so a read never sees a state the stream does not hold.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

metadata = sa.MetaData()
TZ = sa.DateTime(timezone=True)

invitations = sa.Table(
    "invitations",
    metadata,
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
    sa.Column("reasons", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
    sa.Column("documents", JSONB),
    sa.Column("minimum_funds_cad", sa.Integer),
    sa.Column("copr_number", sa.Text),
    sa.Column("copr_expires_on", sa.Date),
    sa.Column("visa_issued", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("deadline_reminders", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
    sa.Column("copr_reminders", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
    sa.Column("next_due_at", TZ),
    sa.Column("updated_at", TZ, nullable=False),
    sa.Index("ix_invitations_profile", "profile_id", "invited_at"),
    sa.Index("ix_invitations_state", "state"),
    sa.Index("ix_invitations_due", "next_due_at", postgresql_where=sa.text("next_due_at IS NOT NULL")),
)

profile_facts = sa.Table(
    "profile_facts",
    metadata,
    sa.Column("profile_id", sa.Text, primary_key=True),
    sa.Column("owner", sa.Text, nullable=False),
    sa.Column("eligible_programs", JSONB, nullable=False),
    sa.Column("authorized_to_work_in_canada", sa.Boolean, nullable=False),
    sa.Column("has_valid_job_offer", sa.Boolean, nullable=False),
    sa.Column("family_size", sa.Integer, nullable=False),
    sa.Column("as_of", TZ, nullable=False),
    # The profile document as last received: the language results and ECAs the invitation relied on
    # are checked against it on the filing day.
    sa.Column("document", JSONB),
)
