"""The ranking service's Alembic environment: `shared.migrations.run_migrations` on its tables."""

from ranking_service.adapters.tables import metadata
from ranking_service.settings import RankingSettings
from shared.migrations import run_migrations

run_migrations(RankingSettings, metadata)
