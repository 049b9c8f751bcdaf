"""`bench.ranking_rebuild` at a small size, on the real broker and database: the rebuild, the restart
and the rescoring-pass sample, which must leave the rebuilt database as it found it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta
from typing import Any

from bench.ranking_rebuild import measure_next_day_rescore, measure_rebuild
from ranking_service.adapters.database import drop_database
from ranking_service.domain.scoring import clear_caches
from ranking_service.settings import RankingSettings
from shared import kafka_admin
from shared.db import plain_connection
from shared.settings import with_database

ROWS = "SELECT profile_id, revision, rescore_at, crs FROM ranking_profiles ORDER BY profile_id"


def test_the_rescore_sample_times_the_due_profiles_and_changes_nothing() -> None:
    clear_caches()  # below 20,000 events the replay runs in this process: no scoring met here before
    figures = measure_rebuild(120, seed=11, keep=True, rescore_sample=50)
    live = RankingSettings(topic_prefix=figures["prefix"])
    into = live.model_copy(
        update={"database_url": with_database(live.database_url, f"{live.database_name}_bench")}
    )
    try:
        assert figures["score_mismatches"] == 0 and figures["pool_size"] == 120
        assert 0 < figures["scored_reference_share"] <= 1
        rows = asyncio.run(_rows(into.database_url))
        # The next day: the rows whose rescore_at has come by five past midnight, and no more.
        as_of = datetime.now(UTC).date()
        next_day = datetime.combine(as_of + timedelta(days=1), time(0, 5), tzinfo=UTC)
        due = sum(1 for row in rows if row["rescore_at"] <= next_day)
        assert figures["rescore_due_next_day"] == due < 120  # not the whole pool every day
        assert figures["rescore_sample"] == figures["rescore_written"] == min(50, due)
        # 31 days later every row is due (each is looked at again within 30 days): 50 of them timed.
        later = asyncio.run(measure_next_day_rescore(into, as_of, 50, days_ahead=31))
        assert later["rescore_due_next_day"] == 120
        assert later["rescore_sample"] == later["rescore_written"] == 50
        assert later["rescore_cpu_us_per_profile"] > 0 and later["rescore_wall_us_per_profile"] > 0
        assert 0 < later["rescore_reference_share"] <= 1
        assert abs(later["rescore_day_cpu_seconds"] - later["rescore_cpu_us_per_profile"] * 120 / 1e6) <= 0.1
        # Rolled back: every row is still the rebuild's.
        assert asyncio.run(_rows(into.database_url)) == rows
        assert {row["revision"] for row in rows} == {1}
    finally:
        asyncio.run(_cleanup(live, into.database_url))


async def _rows(url: str) -> list[Any]:
    conn = await plain_connection(url)
    try:
        return [dict(row) for row in await conn.fetch(ROWS)]
    finally:
        await conn.close()


async def _cleanup(live: RankingSettings, url: str) -> None:
    await kafka_admin.delete_topics_with_prefix(live.kafka_bootstrap_servers, live.topic_prefix)
    await drop_database(url)
