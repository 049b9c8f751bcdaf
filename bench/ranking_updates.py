"""The ranking service's CPU per `ProfileUpdated` applied (issue 10), without the profile service.

    python -m bench.ranking_updates [--candidates 5000] [--rates 50,200] [--seconds 15] [--py-spy out.txt]

Self-contained: its own database (`ranking_benchrank<time>`), topics (`benchrank<time>.`) and ranking
process (uvicorn, one port). It writes the generated candidates' ProfileCreated / ProfileSubmitted
(`bench.pool_generator`) to the profile topic, waits until ranking applied them, then, at each rate,
writes `ProfileUpdated` events open loop (each flips `sibling_in_canada`: ±15 CRS, so each one is a
`Ranked`), waits until every one is applied and every `Ranked` relayed, and reads the service's CPU
from `/proc/<pid>/stat` before and after. What the profile service and HTTP would cost is not in it:
only what ranking spends on an update (consume, claim, lock, score, write, outbox, relay, follow its own
scored stream).

Per step: CPU µs per update (raw, and with the idle CPU of the same span taken off), consumer batches
(distinct transaction instants of the step's outbox rows: one per batch that ranked something) and the
mean batch, relay passes (distinct `published_at`), the load average. Figures only; nothing asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from bench.latency import process_cpu_times

ROOT: Final = Path(__file__).resolve().parents[1]
RUN_DIR: Final = ROOT / ".local" / "bench"
RANKING_ALEMBIC: Final = ROOT / "services" / "ranking" / "alembic.ini"
RANKING_ROOTS: Final = (".", "services/ranking")


def _cpu_s(pid: int) -> float:
    return sum(process_cpu_times(pid))


class RankingUpdatesBench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        stamp = int(time.time())
        self.prefix = f"benchrank{stamp}."
        self.db_suffix = f"_benchrank{stamp}"
        self.port = args.port
        os.environ["EE_DB_SUFFIX"] = self.db_suffix
        os.environ["EE_TOPIC_PREFIX"] = self.prefix
        os.environ.pop("EE_RANKING_DATABASE_URL", None)
        from ranking_service.settings import RankingSettings

        self.settings = RankingSettings()
        self.dsn = "postgresql://" + self.settings.database_url.split("://", 1)[1]
        self.produced = 0
        self.process: Any = None
        self.versions: dict[str, int] = {}
        self.flags: dict[str, bool] = {}

    async def run(self) -> dict[str, Any]:
        RUN_DIR.mkdir(parents=True, exist_ok=True)
        try:
            await self._start()
            figures: dict[str, Any] = {"candidates": self.args.candidates, "steps": []}
            figures["idle_cpu_ms_per_s"] = await self._idle_cpu()
            for rate in self.args.rates:
                step = await self._step(rate, self.args.seconds, figures["idle_cpu_ms_per_s"])
                figures["steps"].append(step)
                _say(json.dumps(step))
            return figures
        finally:
            if not self.args.keep:
                await self._cleanup()

    # -- setup ------------------------------------------------------------------------------------

    async def _start(self) -> None:
        from bench.pool_generator import candidate_envelopes, generate_documents
        from shared import kafka_admin
        from shared.db import create_database
        from shared.envelope import encode
        from shared.migrations import upgrade_to_head
        from shared.testing import spawn

        t0 = time.monotonic()
        await create_database(self.settings.database_url)
        await upgrade_to_head(RANKING_ALEMBIC, self.settings.database_url)
        await kafka_admin.ensure_topics(self.settings.kafka_bootstrap_servers, self.prefix)
        self.candidates = list(generate_documents(self.args.candidates, self.args.seed, workers=2))
        _say(f"{len(self.candidates)} candidates generated ({time.monotonic() - t0:.1f} s)")
        records = []
        for candidate in self.candidates:
            envelopes = candidate_envelopes(candidate)
            self.versions[candidate.profile_id] = len(envelopes)
            self.flags[candidate.profile_id] = bool(candidate.document["sibling_in_canada"])
            records += [(candidate.profile_id.encode(), encode(e)) for e in envelopes]
        await self._produce(records)
        self.seeded = self.produced = len(records)
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(str(ROOT / r) for r in RANKING_ROOTS),
            "EE_TOPIC_PREFIX": self.prefix,
            "EE_DB_SUFFIX": self.db_suffix,
        }
        log = RUN_DIR / "ranking-updates.log"
        self.process = spawn(
            [sys.executable, "-m", "uvicorn", "ranking_service.main:app", "--host", "127.0.0.1",
             "--port", str(self.port), "--log-level", "warning"], ROOT, env=env, log=log,
        )  # fmt: skip
        await self._wait_applied(self.seeded, 600)
        _say(f"ranking applied the {self.seeded} seed events ({time.monotonic() - t0:.1f} s)")

    async def _produce(self, records: Sequence[tuple[bytes, bytes]]) -> None:
        from shared.events.catalogue import PROFILE_TOPIC
        from shared.producer import start_producer

        producer = await start_producer(self.settings, role="bench")
        try:
            topic = self.settings.topic(PROFILE_TOPIC)
            futures = [await producer.send(topic, value=v, key=k) for k, v in records]
            await asyncio.gather(*futures)
        finally:
            await producer.stop()

    async def _wait_applied(self, count: int, limit_s: float) -> None:
        """Until ranking stored positions past `count` records of the profile topic (read from its
        database: polling its /metrics would cost the service CPU, a Kafka request each)."""
        import asyncpg

        from shared.events.catalogue import PROFILE_TOPIC

        deadline = time.monotonic() + limit_s
        last: Any = None
        db = await asyncpg.connect(self.dsn)
        try:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError("the ranking service exited; see .local/bench/ranking-updates.log")
                with contextlib.suppress(asyncpg.UndefinedTableError):
                    last = await db.fetchval(
                        "SELECT coalesce(sum(next_offset), 0) FROM consumer_positions WHERE topic = $1",
                        self.settings.topic(PROFILE_TOPIC),
                    )
                    if last >= count:
                        return
                await asyncio.sleep(0.05)
        finally:
            await db.close()
        raise TimeoutError(f"ranking applied {last} of {count} events in {limit_s} s")

    async def _idle_cpu(self, seconds: float = 5.0) -> float:
        pid = self.process.pid
        before, started = _cpu_s(pid), time.monotonic()
        await asyncio.sleep(seconds)
        return round((_cpu_s(pid) - before) * 1000 / (time.monotonic() - started), 2)

    # -- a step -----------------------------------------------------------------------------------

    def _update(self, profile_id: str, now: datetime) -> tuple[bytes, bytes]:
        from bench.pool_generator import PROFILE_SOURCE
        from shared.envelope import encode
        from shared.events.catalogue import ProfileUpdated
        from shared.messages import envelope_for

        candidate = self.by_id[profile_id]
        self.versions[profile_id] += 1
        self.flags[profile_id] = not self.flags[profile_id]
        event = ProfileUpdated(
            profile_id=profile_id, owner=candidate.owner,
            document={**candidate.document, "sibling_in_canada": self.flags[profile_id]},
            status="in_pool", eligible_programs=list(candidate.eligible_programs),
            submitted_at=candidate.submitted_at, expires_at=candidate.expires_at, updated_at=now,
        )  # fmt: skip
        envelope = envelope_for(
            event, source=PROFILE_SOURCE, time=now, aggregate_id=profile_id,
            aggregate_version=self.versions[profile_id],
        )  # fmt: skip
        return profile_id.encode(), encode(envelope)

    async def _step(self, rate: float, seconds: float, idle_ms_per_s: float) -> dict[str, Any]:
        import asyncpg

        from shared.events.catalogue import PROFILE_TOPIC
        from shared.producer import start_producer

        self.by_id = {c.profile_id: c for c in self.candidates}
        ids = list(self.by_id)
        count = int(rate * seconds)
        db = await asyncpg.connect(self.dsn)
        try:
            outbox_before = await db.fetchval("SELECT coalesce(max(id), 0) FROM outbox")
            producer = await start_producer(self.settings, role="bench")
            topic = self.settings.topic(PROFILE_TOPIC)
            pid = self.process.pid
            load_before = os.getloadavg()
            (user_before, sys_before), started = process_cpu_times(pid), time.monotonic()
            pending = []
            spy = await self._py_spy(seconds)
            try:
                for i in range(count):
                    delay = started + i / rate - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    key, value = self._update(ids[i % len(ids)], datetime.now(UTC))
                    pending.append(await producer.send(topic, value=value, key=key))
                await asyncio.gather(*pending)
            finally:
                await producer.stop()
            sent_s = time.monotonic() - started
            self.produced += count
            await self._wait_applied(self.produced, 300)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                left = await db.fetchval(
                    "SELECT count(*) FROM outbox WHERE id > $1 AND published_at IS NULL", outbox_before
                )
                if left == 0:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)  # the follower reads the last Ranked back
            if spy is not None:
                await spy.wait()
            (user_after, sys_after), ended = process_cpu_times(pid), time.monotonic()
            load_after = os.getloadavg()
            rows, batches, passes = await db.fetchrow(
                "SELECT count(*), count(DISTINCT created_at), count(DISTINCT published_at) FROM outbox "
                "WHERE id > $1", outbox_before,
            )  # fmt: skip
        finally:
            await db.close()
        span = ended - started
        cpu_ms = (user_after + sys_after - user_before - sys_before) * 1000
        return {
            "rate": rate,
            "updates": count,
            "sent_s": round(sent_s, 2),
            "span_s": round(span, 2),
            "cpu_ms": round(cpu_ms, 1),
            "cpu_us_per_update": round(cpu_ms * 1000 / count, 1),
            "sys_us_per_update": round((sys_after - sys_before) * 1e6 / count, 1),
            "cpu_us_per_update_less_idle": round((cpu_ms - idle_ms_per_s * span) * 1000 / count, 1),
            "core_share": round(cpu_ms / 1000 / span, 3),
            "ranked_rows": rows,
            "batches": batches,
            "mean_batch": round(rows / batches, 1) if batches else None,
            "relay_passes": passes,
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in load_after],
        }

    async def _py_spy(self, seconds: float) -> asyncio.subprocess.Process | None:
        """py-spy on the service for the sending span (--py-spy FILE: raw stacks, one run per step)."""
        if not self.args.py_spy:
            return None
        from bench.profiling import py_spy

        binary = py_spy()
        if binary is None:
            return None
        self.spied = getattr(self, "spied", 0) + 1
        out = f"{self.args.py_spy}.{self.spied}"
        return await asyncio.create_subprocess_exec(
            binary, "record", "--pid", str(self.process.pid), "--duration", str(max(1, round(seconds))),
            "--rate", "200", "--format", "raw", "--nonblocking", "--output", out,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip

    async def _cleanup(self) -> None:
        from shared import kafka_admin
        from shared.db import drop_database
        from shared.testing import stop_process

        await asyncio.to_thread(stop_process, self.process)
        with contextlib.suppress(Exception):
            await drop_database(self.settings.database_url)
        with contextlib.suppress(Exception):
            await kafka_admin.delete_topics_with_prefix(self.settings.kafka_bootstrap_servers, self.prefix)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--candidates", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rates", type=lambda s: [float(x) for x in s.split(",")], default=[50.0, 200.0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--port", type=int, default=18391)
    parser.add_argument("--py-spy", help="record each step's stacks into FILE.<step> (py-spy raw)")
    parser.add_argument("--keep", action="store_true", help="leave the process, database and topics")
    args = parser.parse_args(argv)
    figures = asyncio.run(RankingUpdatesBench(args).run())
    print(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
