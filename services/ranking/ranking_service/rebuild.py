"""Rebuild the ranking projection from the event log into a fresh database, and prove it matches.

    python -m ranking_service.rebuild [--into-url URL] [--rules VERSION] [--now ISO] [--batch-size N]
                                      [--no-compare]

Replays `ee.profile.events`, `ee.draws.events` and `ee.applications.events` from the beginning, up to
their end offsets when it starts, into a fresh database (default: the service database's name plus
`_rebuild`), through the very handler the live consumer uses, with big batches, emitting nothing. Then
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
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy.ext.asyncio import AsyncEngine

from ranking_service.adapters.consumer import TOPICS, ranking_consumer
from ranking_service.adapters.database import migrate, recreate_database
from ranking_service.adapters.repository import SqlProjectionStore
from ranking_service.application.jobs import RankingJobs
from ranking_service.application.projection import RankingProjection
from ranking_service.domain.pool import Pool
from ranking_service.domain.view import PoolView
from ranking_service.settings import RankingSettings
from shared import kafka_admin
from shared.clock import Clock
from shared.db import create_engine, session_factory
from shared.rules.crs import CURRENT_RULES, RULE_VERSIONS
from shared.uow import UnitOfWork

DEFAULT_BATCH = 5000
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

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    @property
    def matches(self) -> bool | None:
        return None if self.live_fingerprint is None else self.live_fingerprint == self.fingerprint


def rebuild_settings(live: RankingSettings, into_url: str | None = None) -> RankingSettings:
    """Settings of the fresh projection: another database, reading every partition, emitting nothing."""
    url = into_url or live.database_url.rsplit("/", 1)[0] + f"/{live.database_name}_rebuild"
    if url == live.database_url:
        raise ValueError("the rebuild must go into another database than the live projection's")
    return live.model_copy(update={"database_url": url, "replica": True})


async def rebuild(
    live: RankingSettings,
    *,
    into: RankingSettings | None = None,
    clock: Clock | None = None,
    rules_version: str | None = None,
    batch_size: int = DEFAULT_BATCH,
    compare: bool = True,
    timeout_s: float | None = None,
) -> RebuildReport:
    """Replay the topics into `into`'s fresh database and report the rebuilt pool's fingerprint."""
    into = into or rebuild_settings(live)
    clock = clock or Clock()
    rules = rules_version or (await _live_rules(live) if compare else None) or CURRENT_RULES.name
    if rules not in RULE_VERSIONS:
        raise ValueError(f"unknown rules version {rules!r}; use one of {', '.join(RULE_VERSIONS)}")
    await recreate_database(into.database_url)
    await migrate(into.database_url)
    engine = create_engine(into)
    try:
        report = await _replay(live, into, engine, clock, rules, batch_size, timeout_s)
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
    batch_size: int,
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
    begin, end = await _log_bounds(into)
    consumer = ranking_consumer(
        into, sessions, clock, projection, name=live.consumer_name, batch_size=batch_size
    )
    task = asyncio.create_task(consumer.run())
    try:
        await asyncio.wait_for(_caught_up(engine, live.consumer_name, end, task), timeout_s)
    finally:
        await consumer.stop()
        await asyncio.gather(task, return_exceptions=True)
    seconds = time.perf_counter() - started
    await jobs.load()
    pool = view.pool
    events = sum(end.values()) - sum(begin.values())
    return RebuildReport(events, seconds, len(pool), pool.fingerprint(), rules, dict(view.positions))


async def _log_bounds(settings: RankingSettings) -> tuple[PositionMap, PositionMap]:
    """Beginning and end offset of every partition of the three topics, now."""
    topics = [settings.topic(topic) for topic in TOPICS]
    async with kafka_admin.admin_client(settings.kafka_bootstrap_servers) as admin:
        described = await admin.describe_topics(topics)
    partitions = [TopicPartition(t["topic"], p["partition"]) for t in described for p in t["partitions"]]
    if not partitions:
        raise RuntimeError(f"none of the topics {', '.join(topics)} exists")
    reader = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers, group_id=None)
    await reader.start()
    try:
        begin = await reader.beginning_offsets(partitions)
        end = await reader.end_offsets(partitions)
    finally:
        await reader.stop()

    def keyed(offsets: dict[TopicPartition, int]) -> PositionMap:
        return {f"{tp.topic}:{tp.partition}": offset for tp, offset in offsets.items()}

    return keyed(begin), keyed(end)


async def _caught_up(engine: AsyncEngine, consumer: str, end: PositionMap, task: asyncio.Task[None]) -> None:
    """Wait until the stored positions reach `end` on every partition (or the consumer dies)."""
    wanted = {key: offset for key, offset in end.items() if offset > 0}
    query = sa.text("SELECT topic, partition, next_offset FROM consumer_positions WHERE consumer = :c")
    while True:
        if task.done():
            task.result()  # raises what stopped it
            raise RuntimeError("the rebuild consumer stopped before catching up")
        async with engine.connect() as conn:
            stored = {f"{t}:{p}": int(o) for t, p, o in await conn.execute(query, {"c": consumer})}
        if all(stored.get(key, 0) >= offset for key, offset in wanted.items()):
            return
        await asyncio.sleep(0.1)


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
        report.position, live.fingerprint(), len(live),
    )  # fmt: skip


# --- command line -----------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ranking_service.rebuild", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--into-url", help="database of the fresh projection (default: <live db>_rebuild)")
    parser.add_argument("--rules", help="rules version to score with (default: the live projection's)")
    parser.add_argument("--now", help="business time to score as of, ISO 8601 with offset (default: now)")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH)
    parser.add_argument("--no-compare", action="store_true", help="do not read the live projection")
    return parser


async def _main(args: argparse.Namespace) -> int:
    live = RankingSettings()
    clock = Clock.frozen(datetime.fromisoformat(args.now)) if args.now else Clock()
    report = await rebuild(
        live, into=rebuild_settings(live, args.into_url), clock=clock, rules_version=args.rules,
        batch_size=args.batch_size, compare=not args.no_compare,
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
