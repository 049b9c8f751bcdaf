"""Benchmark of the projection rebuild: N generated profiles' events into fresh topics, then `rebuild` timed.

    python -m bench.ranking_rebuild [--profiles 100000] [--updates 0.5] [--seed 7]
                                            [--prefix P] [--keep] [--workers N]

    from bench.ranking_rebuild import measure_rebuild
    figures = measure_rebuild(100_000)          # a dict; prints nothing (see the keys below)

The candidates come from `bench.pool_generator` (seeded, IRCC's score distribution): each has
ProfileCreated and ProfileSubmitted on `<prefix>ee.profile.events` (NominationIssued too for the
nominated share), and a share `updates` of them a ProfileUpdated after that (same document, a later
stream version). The topics get a fresh prefix (`benchrebuild<unix time>.`), so nothing else is read,
and are deleted afterwards unless `keep`; `--prefix` of kept topics skips writing and measures again.

The rebuild runs as `python -m ranking_service.rebuild` would, into a fresh database
(`<ranking db>_bench`, dropped afterwards unless `keep`), with a clock frozen at noon UTC of the
generation day, so every generated candidate is in the pool with the generator's score. Figures:

- `events_per_second`: events replayed / `replay_seconds` (log bounds read, events merged, profiles
  scored, rows and positions written), the DESIGN.md budget figure;
- `scored_reference_share`: profiles scored the reference way (facts new to the scoring cache), over
  the pool: the generated pool varies a few thousand templates, so most profiles share their scoring
  facts with another; a real pool's dates make nearly every profile's facts its own (about 6x the
  cost of a cached one: see `ranking_service.domain.scoring`);
- `rebuild_seconds`: the whole `rebuild()` call (database created and migrated, replay, pool loaded);
- `rebuild_cpu_seconds`, `cpu_us_per_event`: CPU time of that call in this process and its worker
  processes (not PostgreSQL's or Kafka's): comparable on a busy machine, where wall time is not;
- `restart_seconds`, `restart_pool_size`: the ranking service started over the rebuilt database, as a
  restart would: seconds until its pool is loaded from the table (the consumers resume at the stored
  positions, nothing replayed), and the pool's size then;
- `rescore_*` (`measure_next_day_rescore`): the time-based rescoring pass the service runs after
  midnight UTC, on the rebuilt database: how many profiles are due five minutes into the next day,
  and the ranking CPU (and wall time) per profile of evaluating a sample of them through the
  service's own pass, each chunk rolled back; `rescore_reference_share` is the part of the sample
  whose scoring facts were new that day (scored the reference way, ~6x the cost of a cached one);
  `rescore_day_cpu_seconds` the per-profile CPU times the profiles due;
- `load_average`: the machine's 1-, 5- and 15-minute load averages at the end (cores are shared);
- `score_mismatches`: rebuilt pool rows whose CRS differs from the generator's, plus generated
  candidates missing from the pool (0 when the rebuild is right; None when the topics were reused).

Nothing here asserts a budget: it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from datetime import time as day_time
from typing import TYPE_CHECKING, Any, Final

import orjson

from ranking_service.adapters.database import drop_database
from ranking_service.rebuild import rebuild, rebuild_settings
from ranking_service.settings import RankingSettings
from shared import kafka_admin
from shared.clock import Clock
from shared.db import plain_connection
from shared.envelope import Envelope, encode
from shared.events.catalogue import PROFILE_TOPIC, ProfileUpdated
from shared.messages import envelope_for
from shared.rules.crs import CURRENT_RULES
from shared.settings import with_database

if TYPE_CHECKING:
    from bench.pool_generator import GeneratedCandidate

DEFAULT_SEED: Final = 7
DEFAULT_UPDATES: Final = 0.5
CHUNK: Final = 5_000
PROFILE_SOURCE: Final = "ee/profile"
RESCORE_SAMPLE: Final = 10_000
"""Profiles of the next day's rescoring pass timed (about 3 s at ~300 µs each)."""


def measure_rebuild(
    n_profiles: int,
    *,
    seed: int = DEFAULT_SEED,
    updates: float = DEFAULT_UPDATES,
    prefix: str | None = None,
    keep: bool = False,
    workers: int | None = None,
    generator_workers: int = 2,
    rescore_sample: int = RESCORE_SAMPLE,
) -> dict[str, Any]:
    """Write `n_profiles` candidates' events to fresh topics, rebuild, and return the figures.

    Runs its own event loop (`asyncio.run`); from async code await `measure_rebuild_async`.
    """
    return asyncio.run(
        measure_rebuild_async(
            n_profiles, seed=seed, updates=updates, prefix=prefix, keep=keep, workers=workers,
            generator_workers=generator_workers, rescore_sample=rescore_sample,
        )
    )  # fmt: skip


async def measure_rebuild_async(
    n_profiles: int,
    *,
    seed: int = DEFAULT_SEED,
    updates: float = DEFAULT_UPDATES,
    prefix: str | None = None,
    keep: bool = False,
    workers: int | None = None,
    generator_workers: int = 2,
    rescore_sample: int = RESCORE_SAMPLE,
) -> dict[str, Any]:
    prefix = prefix or f"benchrebuild{int(time.time())}."
    live = RankingSettings(topic_prefix=prefix)
    into = rebuild_settings(live, with_database(live.database_url, f"{live.database_name}_bench"))
    bootstrap = live.kafka_bootstrap_servers
    as_of = datetime.now(UTC).date()
    figures: dict[str, Any] = {"profiles": n_profiles, "prefix": prefix, "workers": workers}
    await kafka_admin.ensure_topics(bootstrap, prefix)
    expected: dict[str, int] | None = None
    try:
        if await _events_in(live) == 0:
            started = time.perf_counter()
            expected, written = await _write_events(live, n_profiles, seed, updates, as_of, generator_workers)
            figures["write_seconds"] = round(time.perf_counter() - started, 3)
            figures["written"] = written
        clock = Clock.frozen(datetime.combine(as_of, day_time(12), tzinfo=UTC))
        cpu = _cpu_seconds()
        started = time.perf_counter()
        report = await rebuild(
            live, into=into, clock=clock, rules_version=CURRENT_RULES.name, workers=workers, compare=False,
        )  # fmt: skip
        rebuild_seconds = time.perf_counter() - started
        cpu = _cpu_seconds() - cpu
        figures.update(
            events=report.events,
            replay_seconds=round(report.seconds, 3),
            events_per_second=round(report.events_per_second),
            rebuild_seconds=round(rebuild_seconds, 3),
            rebuild_cpu_seconds=round(cpu, 3),
            cpu_us_per_event=round(cpu / report.events * 1e6, 1) if report.events else None,
            pool_size=report.pool_size,
            scored_reference_share=round(report.scored_reference / report.pool_size, 4)
            if report.pool_size
            else None,
            fingerprint=report.fingerprint,
            score_mismatches=None if expected is None else await _mismatches(into, expected),
        )
        restart_seconds, restart_pool = await _restart_to_ready(into, clock)
        figures.update(
            restart_seconds=round(restart_seconds, 3),
            restart_pool_size=restart_pool,
            **await measure_next_day_rescore(into, as_of, rescore_sample),
            load_average=[round(load, 2) for load in os.getloadavg()],
        )
    finally:
        if not keep:
            await kafka_admin.delete_topics_with_prefix(bootstrap, prefix)
            await drop_database(into.database_url)
    return figures


async def _restart_to_ready(into: RankingSettings, clock: Clock) -> tuple[float, int]:
    """The ranking service started over the rebuilt database (its projection and stored positions):
    seconds until its pool is loaded and answering, and the pool's size then."""
    from ranking_service.main import build_app
    from shared.testing import wait_until

    started = time.perf_counter()
    app = build_app(into, clock=clock)
    async with app.router.lifespan_context(app):
        view = app.state.ranking.view
        await wait_until(lambda: view.loaded, timeout=900, interval=0.005, message="the pool did not load")
        return time.perf_counter() - started, len(view.pool)


async def measure_next_day_rescore(
    into: RankingSettings, as_of: date, sample: int, *, days_ahead: int = 1
) -> dict[str, Any]:
    """The time-based rescoring the ranking service runs after midnight UTC, measured on a sample.

    Every profile whose `rescore_at` has come is evaluated again (`RankingJobs.rescore_due`): how many
    of the rebuilt pool are due five minutes into the next day (or `days_ahead` days later), and what
    evaluating `sample` of them costs the ranking process, through the service's own pass
    (`RankingProjection.rescore`: rows locked, evaluated as of that instant, written), each chunk in a
    transaction rolled back, so the rebuilt database the suite goes on with is left as it was. The
    CPU for the whole pass is that per-profile cost times the profiles due (PostgreSQL's own work is
    not in it)."""
    from ranking_service.adapters.repository import SqlProjectionStore
    from ranking_service.application.jobs import CHUNK as RESCORE_CHUNK
    from ranking_service.application.projection import Outcome, RankingProjection
    from ranking_service.domain import scoring
    from ranking_service.domain.view import PoolView
    from shared.db import create_engine, session_factory
    from shared.uow import UnitOfWork

    clock = Clock.frozen(datetime.combine(as_of + timedelta(days=days_ahead), day_time(0, 5), tzinfo=UTC))
    engine = create_engine(into)
    try:
        sessions = session_factory(engine)
        conn = await plain_connection(into.database_url)
        try:
            due = await conn.fetchval(
                "SELECT count(*) FROM ranking_profiles WHERE rescore_at <= $1", clock.now()
            )
        finally:
            await conn.close()
        projection = RankingProjection(PoolView(CURRENT_RULES.name), SqlProjectionStore, clock, emit=False)
        async with UnitOfWork(sessions, into, clock) as uow:
            ids = await SqlProjectionStore(uow.session).due(clock.now(), sample)
        misses = scoring.CACHE_STATS.scored_reference
        outcome, cpu, started = Outcome(), time.process_time(), time.perf_counter()
        for start in range(0, len(ids), RESCORE_CHUNK):
            async with UnitOfWork(sessions, into, clock) as uow:  # left uncommitted: rolled back
                outcome += await projection.rescore(uow, sorted(ids[start : start + RESCORE_CHUNK]))
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        misses = scoring.CACHE_STATS.scored_reference - misses
    finally:
        await engine.dispose()
    timed = len(ids)
    cpu_us = cpu / timed * 1e6 if timed else None
    return {
        "rescore_due_next_day": due,
        "rescore_sample": timed,
        "rescore_written": outcome.written,
        "rescore_cpu_us_per_profile": None if cpu_us is None else round(cpu_us, 1),
        "rescore_wall_us_per_profile": round(wall / timed * 1e6, 1) if timed else None,
        "rescore_reference_share": round(misses / timed, 4) if timed else None,
        "rescore_day_cpu_seconds": None if cpu_us is None else round(due * cpu_us / 1e6, 1),
    }


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the rebuild's worker processes)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


# --- the events ---------------------------------------------------------------------------------------


async def _events_in(settings: RankingSettings) -> int:
    offsets = await kafka_admin.log_offsets(settings.kafka_bootstrap_servers, [settings.topic(PROFILE_TOPIC)])
    return sum(end - begin for _, _, begin, end in offsets)


async def _write_events(
    settings: RankingSettings, n: int, seed: int, updates: float, as_of: date, workers: int
) -> tuple[dict[str, int], int]:
    """Produce the candidates' events; their expected scores by profile id, and the events written."""
    from bench.pool_generator import RecordChunk, generate_documents, write_kafka

    expected: dict[str, int] = {}
    rng = random.Random(f"updates:{seed}")
    midnight = datetime.combine(as_of, day_time.min, tzinfo=UTC)

    def chunks() -> Iterator[RecordChunk]:
        records: list[tuple[bytes, bytes]] = []
        scores: list[int] = []
        for candidate in generate_documents(n, seed, as_of, workers=workers):
            expected[candidate.profile_id] = candidate.crs
            key = candidate.profile_id.encode()
            records += [(key, encode(e)) for e in _envelopes(candidate, rng, updates, midnight)]
            scores.append(candidate.crs)
            if len(scores) >= CHUNK:
                yield RecordChunk(records, scores)
                records, scores = [], []
        if scores:
            yield RecordChunk(records, scores)

    result = await write_kafka(
        chunks(), bootstrap=settings.kafka_bootstrap_servers, topic=settings.topic(PROFILE_TOPIC)
    )
    return expected, result.events


def _envelopes(
    candidate: GeneratedCandidate, rng: random.Random, updates: float, midnight: datetime
) -> list[Envelope]:
    from bench.pool_generator import candidate_envelopes

    envelopes = candidate_envelopes(candidate)
    if rng.random() >= updates:
        return envelopes
    last = envelopes[-1].time
    room_us = max(int((midnight - last) / timedelta(microseconds=1)), 2)
    updated_at = last + timedelta(microseconds=rng.randrange(1, room_us))
    event = ProfileUpdated(
        profile_id=candidate.profile_id,
        owner=candidate.owner,
        document=candidate.document,
        status="in_pool",
        eligible_programs=list(candidate.eligible_programs),
        submitted_at=candidate.submitted_at,
        expires_at=candidate.expires_at,
        updated_at=updated_at,
    )
    version = len(envelopes) + 1
    update = envelope_for(
        event, source=PROFILE_SOURCE, time=updated_at, aggregate_id=candidate.profile_id,
        aggregate_version=version,
    )  # fmt: skip
    return [*envelopes, update]


async def _mismatches(into: RankingSettings, expected: dict[str, int]) -> int:
    conn = await plain_connection(into.database_url)
    try:
        rows = await conn.fetch("SELECT profile_id, crs FROM ranking_profiles WHERE in_pool")
    finally:
        await conn.close()
    rebuilt = {row["profile_id"]: row["crs"] for row in rows}
    wrong = sum(1 for profile_id, crs in rebuilt.items() if expected.get(profile_id) != crs)
    missing = sum(1 for profile_id in expected if profile_id not in rebuilt)
    return wrong + missing


# --- command line -----------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ranking_rebuild", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--profiles", type=int, default=100_000)
    parser.add_argument("--updates", type=float, default=DEFAULT_UPDATES, help="share with a ProfileUpdated")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--prefix", help="topic prefix (kept topics holding events are measured again)")
    parser.add_argument("--keep", action="store_true", help="keep the topics and the rebuilt database")
    parser.add_argument("--workers", type=int, help="rebuild processes (default: the rebuild's choice)")
    parser.add_argument("--generator-workers", type=int, default=2, help="generator processes")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    figures = measure_rebuild(
        args.profiles, seed=args.seed, updates=args.updates, prefix=args.prefix, keep=args.keep,
        workers=args.workers, generator_workers=args.generator_workers,
    )  # fmt: skip
    print(orjson.dumps(figures, option=orjson.OPT_INDENT_2).decode())
    return 0 if figures.get("score_mismatches") in (0, None) else 1


if __name__ == "__main__":
    sys.exit(main())
