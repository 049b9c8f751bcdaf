"""The profile service's Alembic environment: `shared.migrations.run_migrations` on its tables."""

from profile_service.adapters.tables import metadata
from profile_service.settings import ProfileSettings
from shared.migrations import run_migrations

run_migrations(ProfileSettings, metadata)
