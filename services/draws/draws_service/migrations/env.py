"""The draws service's Alembic environment: `shared.migrations.run_migrations` on its tables."""

from draws_service.adapters.tables import metadata
from draws_service.settings import DrawsSettings
from shared.migrations import run_migrations

run_migrations(DrawsSettings, metadata)
