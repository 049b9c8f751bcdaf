"""The applications service's Alembic environment: `shared.migrations.run_migrations` on its tables."""

from applications_service.adapters.tables import metadata
from applications_service.settings import ApplicationsSettings
from shared.migrations import run_migrations

run_migrations(ApplicationsSettings, metadata)
