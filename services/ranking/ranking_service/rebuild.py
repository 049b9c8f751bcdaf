"""Rebuild the ranking projection from the event log into a fresh database, and prove it matches.

    python -m ranking_service.rebuild [--into-url URL] [--rules VERSION] [--now ISO] [--workers N]
                                      [--no-compare]

Replays `ee.profile.events`, `ee.draws.events` and `ee.applications.events` from the beginning, up to
their end offsets when it starts, into a fresh database (default: the service database's name plus
`_rebuild`), emitting nothing: the events are merged in memory with the projection's own merge, each
profile is scored once at the end and the rows are written with COPY (`ranking_service.replay`). Then
it loads the rebuilt pool from that database and prints its fingerprint, and the live projection's:
the two are equal when the live service has applied the same events (same clock day, same rules).
The rebuilt database can then replace the live one (it holds the positions, under the live name).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from ranking_service.adapters.consumer import TOPICS
from ranking_service.adapters.database import migrate, recreate_database
from ranking_service.adapters.repository import SqlProjectionStore
from ranking_service.application.jobs import RankingJobs
from ranking_service.application.projection import RankingProjection
from ranking_service.domain.pool import Pool
from ranking_service.domain.view import PoolView
from ranking_service.replay import Partition, replay
from ranking_service.settings import RankingSettings
from shared import kafka_admin
from shared.clock import Clock
from shared.db import create_engine, session_factory
from shared.rules.crs import IN_FORCE, RULES_CHOICES, is_rules_choice
from shared.settings import with_database
from shared.uow import UnitOfWork

PositionMap = dict[str, int]


@dataclass(frozen=True, slots=True)
class RebuildReport:
    events: int
    seconds: float
    pool_size: int
    fingerprint: str
    rules_version: str
    position: PositionMap
    live_fingerprint: str | None = None
    live_pool_size: int | None = None
    scored_reference: int = 0  # profiles whose facts the scoring cache had not seen (see `scoring`)

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    @property
    def matches(self) -> bool | None:
        return None if self.live_fingerprint is None else self.live_fingerprint == self.fingerprint


def rebuild_settings(live: RankingSettings, into_url: str | None = None) -> RankingSettings:
    """Settings of the fresh projection: another database, reading every partition, emitting nothing."""
    url = into_url or with_database(live.database_url, f"{live.database_name}_rebuild")
    if url == live.database_url:
        raise ValueError("the rebuild must go into another database than the live projection's")
    return live.model_copy(update={"database_url": url, "replica": True})


async def rebuild(
    live: RankingSettings,
    *,
    into: RankingSettings | None = None,
    clock: Clock | None = None,
    rules_version: str | None = None,
    workers: int | None = None,
    compare: bool = True,
    timeout_s: float | None = None,
) -> RebuildReport:
    """Replay the topics into `into`'s fresh database and report the rebuilt pool's fingerprint.

    `workers`: processes that replay the profile topic's partitions (default: 2 for a log of 20,000
    profile events or more, else the replay runs in this process); see `ranking_service.replay`.
    """
    into = into or rebuild_settings(live)
    clock = clock or Clock()
    rules = rules_version or (await _live_rules(live) if compare else None) or IN_FORCE
    if not is_rules_choice(rules):
        raise ValueError(f"unknown rules version {rules!r}; use one of {', '.join(RULES_CHOICES)}")
    await recreate_database(into.database_url)
    await migrate(into.database_url)
    engine = create_engine(into)
    try:
        report = await _replay(live, into, engine, clock, rules, workers, timeout_s)
    finally:
        await engine.dispose()
    if compare:
        live_pool = await _live_pool(live)
        report = _with_live(report, live_pool)
    return report


async def _replay(
    live: RankingSettings,
    into: RankingSettings,
    engine: AsyncEngine,
    clock: Clock,
    rules: str,
    workers: int | None,
    timeout_s: float | None,
) -> RebuildReport:
    sessions = session_factory(engine)

    def uow() -> UnitOfWork:
        return UnitOfWork(sessions, into, clock)

    view = PoolView(rules)
    projection = RankingProjection(view, SqlProjectionStore, clock, emit=False)
    jobs = RankingJobs(projection, SqlProjectionStore, uow, live.consumer_name)
    async with uow() as unit:
        await SqlProjectionStore(unit.session).set_active_rules(rules, clock.now())
        await unit.commit()
    started = time.perf_counter()
    partitions = await _log_partitions(into)
    cluster = await kafka_admin.cluster_id(into.kafka_bootstrap_servers)
    work = replay(into, live.consumer_name, partitions, cluster, rules, clock.now(), workers=workers)
    stats = await asyncio.wait_for(work, timeout_s)
    seconds = time.perf_counter() - started
    await jobs.load()
    pool = view.pool
    events = sum(end - begin for _, _, begin, end in partitions)
    return RebuildReport(
        events, seconds, len(pool), pool.fingerprint(), rules, dict(view.positions),
        scored_reference=stats.scored_reference,
    )  # fmt: skip


async def _log_partitions(settings: RankingSettings) -> list[Partition]:
    """Every partition of the three topics with its beginning and end offset, now."""
    topics = [settings.topic(topic) for topic in TOPICS]
    partitions = await kafka_admin.log_offsets(settings.kafka_bootstrap_servers, topics)
    if not partitions:
        raise RuntimeError(f"none of the topics {', '.join(topics)} exists")
    return partitions


async def _live_rules(live: RankingSettings) -> str | None:
    engine = create_engine(live)
    try:
        async with session_factory(engine)() as session:
            return await SqlProjectionStore(session).active_rules()
    finally:
        await engine.dispose()


async def _live_pool(live: RankingSettings) -> Pool:
    engine = create_engine(live)
    try:
        async with session_factory(engine)() as session:
            rows = [row async for row, _info in SqlProjectionStore(session).pool_rows()]
    finally:
        await engine.dispose()
    return Pool.from_rows(rows)


def _with_live(report: RebuildReport, live: Pool) -> RebuildReport:
    return RebuildReport(
        report.events, report.seconds, report.pool_size, report.fingerprint, report.rules_version,
        report.position, live.fingerprint(), len(live), report.scored_reference,
    )  # fmt: skip


# --- command line -----------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ranking_service.rebuild", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--into-url", help="database of the fresh projection (default: <live db>_rebuild)")
    parser.add_argument("--rules", help="rules version to score with (default: the live projection's)")
    parser.add_argument("--now", help="business time to score as of, ISO 8601 with offset (default: now)")
    parser.add_argument("--workers", type=int, help="replay processes (default: 2 for big logs, else 1)")
    parser.add_argument("--no-compare", action="store_true", help="do not read the live projection")
    return parser


async def _main(args: argparse.Namespace) -> int:
    live = RankingSettings()
    clock = Clock.frozen(datetime.fromisoformat(args.now)) if args.now else Clock()
    report = await rebuild(
        live, into=rebuild_settings(live, args.into_url), clock=clock, rules_version=args.rules,
        workers=args.workers, compare=not args.no_compare,
    )  # fmt: skip
    summary = {
        "events": report.events,
        "seconds": round(report.seconds, 3),
        "events_per_second": round(report.events_per_second),
        "pool_size": report.pool_size,
        "rules_version": report.rules_version,
        "fingerprint": report.fingerprint,
        "live_fingerprint": report.live_fingerprint,
        "live_pool_size": report.live_pool_size,
        "matches": report.matches,
    }
    print(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
    return 0 if report.matches in (True, None) else 1


def main(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(_main(_parser().parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
