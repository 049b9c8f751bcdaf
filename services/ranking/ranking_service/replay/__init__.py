"""The rebuild's engine: replay the log into a fresh projection database, fast, with the same result.

The live consumer applies events in batches, one transaction each: it claims every event id in
`processed_messages`, locks and rescores the touched rows, upserts them and stores its positions. A
rebuild into a fresh database needs none of that per batch, because the merge of facts is
deterministic whatever the order and the batching (`domain.candidate`): profile facts follow the
stream's `aggregateversion` (an old or repeated version changes nothing), invitation states only move
up. So the replay

1. reads every partition up to its end offset at the start, merging the events into facts in
   memory (a profile event without a stream version, the only kind a redelivery could apply twice,
   is deduplicated by event id);
2. scores each profile whose facts changed **once**, at the end, as of the clock's now (what the
   last batch touching it would have done), and writes the rows with COPY, one transaction per shard;
3. stores the consumer positions (the end offsets, with the cluster id) under the live consumer's
   name, so the rebuilt database can take over from the live one.

The replay decides about every record exactly as the live consumer does, through the consumer's own
decisions (`shared.decisions`: the verdict on a record, the retry count, the dead-letter reason and
the DLQ copy) and the projection's own refusal (`projection.rejection`), so a rebuilt projection
holds what the live one would. It is split by concern:

- `decode`: one record, fast for the common profile events, else judged as the consumer judges it;
- `merge`: facts merged in memory, then each changed profile scored once;
- `kafka`: reading partitions up to their end offsets, dead-lettering what the consumer would;
- `shards`: worker processes over the partitions of the profile topic;
- `store`: rows written with COPY, and the consumer positions.

Profile events are keyed by `profile_id`, so each profile's stream lives in one partition of
`ee.profile.events`: those partitions are split between worker processes (2 on this machine), each
merging, scoring and writing its own profiles. The events of the other topics (invitations,
applications: few) are read first, in this process, and handed to every worker, which applies those
about its profiles; the rest (profiles with no profile event) are written here.

What differs from the rows the live consumer would have written, none of it visible in the pool or its
fingerprint: `revision` is 1 (written once), `processed_messages` stays empty (the positions, and
the merge itself, make a redelivery a no-op), and a profile out of the pool at the end keeps no earlier
score (the live row keeps the last score it had while in the pool).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final

from ranking_service.replay.decode import DeadRecord, Item, read_item
from ranking_service.replay.kafka import Partition, read_partitions
from ranking_service.replay.merge import Merge, Stats
from ranking_service.replay.shards import Job, Processes, replay_shard, split
from ranking_service.replay.store import save_positions, write_rows
from ranking_service.settings import RankingSettings
from shared.events.catalogue import PROFILE_TOPIC

INLINE_BELOW: Final = 20_000
"""Fewer profile events than this: replay in this process (starting workers costs about a second)."""


async def replay(
    settings: RankingSettings,
    consumer_name: str,
    partitions: Sequence[Partition],
    cluster_id: str,
    rules_name: str,
    now: datetime,
    *,
    workers: int | None = None,
) -> Stats:
    """Replay `partitions` (every partition of the three topics) into `settings`' fresh database."""
    profile_topic = settings.topic(PROFILE_TOPIC)
    profile_parts = [p for p in partitions if p[0] == profile_topic]
    other_parts = [p for p in partitions if p[0] != profile_topic]
    profile_events = sum(end - begin for _, _, begin, end in profile_parts)
    count = workers if workers is not None else (2 if profile_events >= INLINE_BELOW else 1)
    shards = split(profile_parts, max(1, min(count, len(profile_parts) or 1)))
    stats = Stats()
    collected: list[Item] = []
    if len(shards) == 1:
        await read_partitions(settings, consumer_name, other_parts, collected.append, stats)
        job = Job(settings.model_dump(), consumer_name, tuple(shards[0]), tuple(collected), rules_name, now)
        results = [await replay_shard(job)]
    else:
        async with Processes(len(shards)) as processes:  # they start up while the other topics are read
            await read_partitions(settings, consumer_name, other_parts, collected.append, stats)
            fields, others = settings.model_dump(), tuple(collected)
            jobs = [Job(fields, consumer_name, tuple(shard), others, rules_name, now) for shard in shards]
            results = await processes.run(jobs)
    used: set[str] = set()
    for result in results:
        stats.add(result.stats)
        used |= result.others_used
    # Profiles heard of only on the other topics (an invitation for a profile with no profile event).
    rest = Merge()
    for item in collected:
        if item.profile_id not in used:
            rest.apply(item)
    rest.stats.written = await write_rows(settings, rest.rows(now, rules_name, sorted(rest.changed)))
    stats.written += rest.stats.written
    stats.applied += rest.stats.applied
    stats.unchanged += rest.stats.unchanged
    await save_positions(settings, consumer_name, partitions, cluster_id)
    return stats


__all__ = ["DeadRecord", "Item", "Merge", "Partition", "Stats", "read_item", "replay", "split"]
