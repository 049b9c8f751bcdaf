"""`bench.ranking_rebuild` at a small size, on the real broker and database: the rebuild, the restart
and the next day's rescoring sample, which must leave the rebuilt database as it found it."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from bench.ranking_rebuild import measure_rebuild
from ranking_service.adapters.database import drop_database
from ranking_service.settings import RankingSettings
from shared import kafka_admin
from shared.db import plain_connection
from shared.settings import with_database

ROWS = "SELECT profile_id, revision, rescore_at, crs FROM ranking_profiles ORDER BY profile_id"


def test_the_next_day_rescore_sample_times_the_due_profiles_and_changes_nothing() -> None:
    figures = measure_rebuild(120, seed=11, keep=True, rescore_sample=50)
    live = RankingSettings(topic_prefix=figures["prefix"])
    url = with_database(live.database_url, f"{live.database_name}_bench")
    try:
        rows = asyncio.run(_rows(url))
        assert figures["score_mismatches"] == 0 and figures["pool_size"] == 120
        # The generated candidates all hold recent work, so all of them are looked at again the next day.
        assert figures["rescore_due_next_day"] == len(rows) == 120
        assert figures["rescore_sample"] == figures["rescore_written"] == 50
        assert figures["rescore_cpu_us_per_profile"] > 0 and figures["rescore_wall_us_per_profile"] > 0
        assert 0 < figures["rescore_reference_share"] <= 1
        expected_day = figures["rescore_cpu_us_per_profile"] * 120 / 1e6
        assert abs(figures["rescore_day_cpu_seconds"] - expected_day) <= 0.1
        # Rolled back: every row is still the rebuild's (revision 1, and still due that next day).
        next_day = datetime.combine(date.today() + timedelta(days=1), time(0, 5), tzinfo=UTC)
        assert {row["revision"] for row in rows} == {1}
        assert all(row["rescore_at"] <= next_day for row in rows)
    finally:
        asyncio.run(_cleanup(live, url))


async def _rows(url: str) -> list[Any]:
    conn = await plain_connection(url)
    try:
        return list(await conn.fetch(ROWS))
    finally:
        await conn.close()


async def _cleanup(live: RankingSettings, url: str) -> None:
    await kafka_admin.delete_topics_with_prefix(live.kafka_bootstrap_servers, live.topic_prefix)
    await drop_database(url)
