"""The replay's shards: worker processes, each reading its partitions of the profile topic, merging,
scoring and writing its own profiles.

Profile events are keyed by `profile_id`, so each profile's stream lives in one partition of
`ee.profile.events`: those partitions are split between worker processes (2 on this machine). The
events of the other topics (invitations, applications: few) are read first, in the parent, and handed
to every worker, which applies those about its profiles.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import multiprocessing
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ranking_service.domain.scoring import CACHE_STATS
from ranking_service.replay.decode import Item
from ranking_service.replay.kafka import Partition, read_partitions
from ranking_service.replay.merge import Merge, Stats
from ranking_service.replay.store import write_rows
from ranking_service.settings import RankingSettings


@dataclass(frozen=True, slots=True)
class Job:
    """What a shard does: its partitions of the profile topic, and where everything goes."""

    settings: dict[str, Any]  # RankingSettings fields (picklable for a worker process)
    consumer_name: str
    partitions: tuple[Partition, ...]
    others: tuple[Item, ...]  # events of the other topics, about any profile
    rules_name: str
    now: datetime


@dataclass(frozen=True, slots=True)
class ShardResult:
    stats: Stats
    others_used: frozenset[str]  # profiles of `others` this shard wrote (had profile events here)


def run_shard(job: Job) -> ShardResult:
    """Entry point of a worker process."""
    return asyncio.run(replay_shard(job))


async def replay_shard(job: Job) -> ShardResult:
    settings = RankingSettings(**job.settings)
    merge = Merge()
    with _no_cyclic_gc():
        await read_partitions(settings, job.consumer_name, job.partitions, merge.apply, merge.stats)
        own = {item.profile_id for item in job.others if item.profile_id in merge.facts}
        for item in job.others:
            if item.profile_id in own:
                merge.apply(item)
        ids = sorted(merge.changed)
        before = CACHE_STATS.scored_reference
        merge.stats.written = await write_rows(settings, merge.rows(job.now, job.rules_name, ids))
        merge.stats.scored_reference = CACHE_STATS.scored_reference - before
    return ShardResult(merge.stats, frozenset(own))


@contextlib.contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """No cyclic garbage collection while replaying: the merged facts grow to millions of objects,
    and each full collection would walk them all again (a third of the replay's time at 100,000
    profiles) to find no cycle; reference counting frees what the replay drops."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class Processes:
    """Worker processes for the shards ("spawn": fresh interpreters, no copy of this event loop).

    Started on entry (importing the service takes them about a second), stopped on exit; on a failure,
    a cancellation or a timeout they are terminated, so no shard goes on writing in the background.
    """

    def __init__(self, count: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.pool = ProcessPoolExecutor(max_workers=count, mp_context=context)
        self.count = count

    async def __aenter__(self) -> Processes:
        loop = asyncio.get_running_loop()
        self.started = [loop.run_in_executor(self.pool, _started) for _ in range(self.count)]
        return self

    async def run(self, jobs: Sequence[Job]) -> list[ShardResult]:
        loop = asyncio.get_running_loop()
        await asyncio.gather(*self.started)
        return list(await asyncio.gather(*(loop.run_in_executor(self.pool, run_shard, job) for job in jobs)))

    async def __aexit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is not None:
            processes = getattr(self.pool, "_processes", None) or {}  # the executor's map: pid -> Process
            for process in list(processes.values()):
                process.terminate()
        self.pool.shutdown(wait=False, cancel_futures=True)


def _started() -> bool:
    """A worker's first task: by then it has imported this module, and with it the service."""
    return True


def split(partitions: Sequence[Partition], shards: int) -> list[list[Partition]]:
    """Partitions in `shards` groups of about the same number of events (largest first, to the least)."""
    groups: list[list[Partition]] = [[] for _ in range(shards)]
    loads = [0] * shards
    for partition in sorted(partitions, key=lambda p: p[3] - p[2], reverse=True):
        lightest = loads.index(min(loads))
        groups[lightest].append(partition)
        loads[lightest] += partition[3] - partition[2]
    return [group for group in groups if group] or [[]]
