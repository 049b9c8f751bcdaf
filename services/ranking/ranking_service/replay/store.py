"""Writing the replay's results: rows by COPY, one transaction per shard, and the consumer positions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any, Final

from ranking_service.adapters.repository import COPY_COLUMNS
from ranking_service.replay.kafka import Partition
from ranking_service.settings import RankingSettings
from shared.db import plain_connection

COPY_CHUNK: Final = 2_000  # rows scored between two hand-overs to the COPY stream


async def write_rows(settings: RankingSettings, rows: Iterable[tuple[Any, ...]]) -> int:
    """COPY the rows into `ranking_profiles` in one transaction; how many were written."""
    count = 0

    async def chunks() -> AsyncIterator[tuple[Any, ...]]:
        nonlocal count
        for row in rows:
            count += 1
            yield row
            if count % COPY_CHUNK == 0:
                await asyncio.sleep(0)  # let the COPY stream send what was scored meanwhile

    conn = await plain_connection(settings.database_url)
    try:
        async with conn.transaction():
            await conn.copy_records_to_table("ranking_profiles", records=chunks(), columns=COPY_COLUMNS)
    finally:
        await conn.close()
    return count


async def save_positions(
    settings: RankingSettings, consumer_name: str, partitions: Sequence[Partition], cluster_id: str
) -> None:
    """The next offset of every partition that had records: where the live consumer resumes."""
    rows = [(consumer_name, topic, p, end, cluster_id) for topic, p, begin, end in partitions if end > begin]
    conn = await plain_connection(settings.database_url)
    try:
        await conn.executemany(
            "INSERT INTO consumer_positions (consumer, topic, partition, next_offset, cluster_id, "
            "updated_at) VALUES ($1, $2, $3, $4, $5, now())",
            rows,
        )
    finally:
        await conn.close()
