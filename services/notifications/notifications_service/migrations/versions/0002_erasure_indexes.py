"""Indexes for erasing a person: `events(ordering_key)` and `deliveries(event_id)`.

On PersonalDataErased the fan-out drops the person's events and their deliveries (`forget_person`):
the events whose ordering key is the profile id, then the deliveries of those events. Without these
indexes each of its statements scanned the whole event log (416 ms over 155,424 events, 260 MB, on the
2-core development machine), inside the fan-out's transaction, so every webhook waited behind each
erasure, longer as the log grows. Each index costs one more entry per event or delivery written.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_events_ordering_key", "events", ["ordering_key"])
    op.create_index("ix_deliveries_event", "deliveries", ["event_id"])


def downgrade() -> None:
    op.drop_index("ix_deliveries_event", table_name="deliveries")
    op.drop_index("ix_events_ordering_key", table_name="events")
