"""The notifications service's Alembic environment: `shared.migrations.run_migrations` on its tables."""

from notifications_service.adapters.tables import metadata
from notifications_service.settings import NotificationsSettings
from shared.migrations import run_migrations

run_migrations(NotificationsSettings, metadata)
