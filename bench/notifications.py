"""`make bench`, webhooks: 10,000 invitations fanned out to 10 subscribers (issue 14).

    python -m bench.notifications [--invitations 10000] [--subscribers 10] [--probe 50]

Self-contained and loopback only: a fresh database (`notifications_benchnotify<unix time>`) migrated with the
service's Alembic migrations, fresh topics (`benchnotify<unix time>.`), the notifications service as
a real uvicorn process on a free port, and one receiver process (`notifications_service.receiver`,
verifying every signature with `standardwebhooks`) serving the subscribers' URLs. Ten partner
subscriptions to `ee.draws.Invited` of the same portal, which owns every invited profile.

1. **probe**: `--probe` invitations one at a time (one every 100 ms): ITA → delivered to all ten, each
   measured from the Invited event's `time` to the receiver's clock (same machine);
2. **burst**: `--invitations` Invited events written to Kafka at once (as a round publishes them);
   deliveries/s (all deliveries ÷ from the first write to the last arrival) and ITA → delivered
   percentiles over every delivery of the burst (queueing included).

Everything it started is stopped and removed at the end (`--keep` leaves it). Bounded: `--limit-s`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import httpx
from aiokafka import AIOKafkaProducer

from bench.latency import process_cpu_times, summarize
from shared.testing import free_port, listening, spawn, stop_process

ROOT: Final = Path(__file__).resolve().parents[1]
RUN_DIR: Final = ROOT / ".local" / "bench"
ALEMBIC_INI: Final = ROOT / "services" / "notifications" / "alembic.ini"
DB_SUFFIX: Final = "_benchnotify"  # + the run's unix time: two runs (two checkouts) never share one
PORTAL: Final = "bench-portal"
IMPORT_ROOTS: Final = (".", "services/notifications")


@dataclass(frozen=True)
class NotifyConfig:
    invitations: int = 10_000
    subscribers: int = 10
    probe: int = 50
    max_in_flight: int = 16
    limit_s: float = 900.0
    keep: bool = False


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(str(ROOT / r) for r in IMPORT_ROOTS)}


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return spawn(args, ROOT, env=env, log=log)


class Tail:
    """Reads the receiver's JSON lines as they grow."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.records: list[dict[str, Any]] = []
        self.ids: set[str] = set()

    def poll(self) -> int:
        if not self.path.exists():
            return 0
        with self.path.open("rb") as handle:
            handle.seek(self.offset)
            chunk = handle.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self.offset += len(complete)
        for line in complete.splitlines():
            record = json.loads(line)
            if "error" in record:
                raise RuntimeError(f"the receiver refused a signature: {record}")
            self.records.append(record)
            self.ids.add(record["webhook_id"])
        return len(self.ids)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc), in seconds."""
    return sum(process_cpu_times(pid))


def invited_envelope(profile_id: str, now: datetime) -> tuple[bytes, bytes]:
    from shared.envelope import encode
    from shared.events.catalogue import Invited
    from shared.messages import envelope_for

    event = Invited(
        profile_id=profile_id, owner=PORTAL, invitation_id=str(uuid.uuid4()), round_id="bench-round",
        round_number=1, program="fsw", crs=500, citizenship="IN", invited_at=now,
        deadline=now + timedelta(days=60),
    )  # fmt: skip
    return profile_id.encode(), encode(envelope_for(event, source="ee/draws", time=now))


def latencies_ms(records: Sequence[dict[str, Any]]) -> list[float]:
    """Event `time` → received, per delivery (first arrival of each webhook-id)."""
    seen: set[str] = set()
    samples = []
    for record in records:
        if record["webhook_id"] in seen:
            continue
        seen.add(record["webhook_id"])
        sent = datetime.fromisoformat(str(record["time"]).replace("Z", "+00:00")).timestamp()
        samples.append((float(record["received_at"]) - sent) * 1000)
    return samples


class NotificationsBench:
    def __init__(self, config: NotifyConfig, say: Any = print) -> None:
        from notifications_service.settings import NotificationsSettings

        self.config = config
        self.say = say
        started = int(time.time())
        self.prefix = f"benchnotify{started}."
        self.db_suffix = f"{DB_SUFFIX}{started}"
        self.settings = NotificationsSettings(topic_prefix=self.prefix, db_suffix=self.db_suffix)
        self.service_port = free_port()
        self.receiver_port = free_port()
        self.out = RUN_DIR / "notifications-received.jsonl"
        self.service: subprocess.Popen[bytes] | None = None
        self.receiver: subprocess.Popen[bytes] | None = None

    async def run(self) -> dict[str, Any]:
        RUN_DIR.mkdir(parents=True, exist_ok=True)
        self.out.unlink(missing_ok=True)
        try:
            await self._prepare()
            figures = await self._measure()
        finally:
            if not self.config.keep:
                await self._cleanup()
        return figures

    async def _prepare(self) -> None:
        from shared import kafka_admin
        from shared.db import create_database
        from shared.migrations import upgrade_to_head

        settings = self.settings
        await create_database(settings.database_url)
        await upgrade_to_head(ALEMBIC_INI, settings.database_url)
        await kafka_admin.ensure_topics(settings.kafka_bootstrap_servers, self.prefix)
        env = {
            **_env(),
            "EE_TOPIC_PREFIX": self.prefix,
            "EE_DB_SUFFIX": self.db_suffix,
            "EE_NOTIFICATIONS_MAX_IN_FLIGHT": str(self.config.max_in_flight),
        }
        env.pop("EE_NOTIFICATIONS_DATABASE_URL", None)
        log = RUN_DIR / "notifications-service.log"
        self.service = _spawn(
            [sys.executable, "-m", "uvicorn", "notifications_service.main:app", "--host", "127.0.0.1",
             "--port", str(self.service_port), "--log-level", "warning"], env, log,
        )  # fmt: skip
        await self._wait_ready(log)

    async def _wait_ready(self, log: Path) -> None:
        deadline = time.monotonic() + 120
        async with httpx.AsyncClient(trust_env=False) as client:
            while time.monotonic() < deadline:
                assert self.service is not None
                if self.service.poll() is not None:
                    raise RuntimeError(f"the notifications service exited; see {log}")
                with contextlib.suppress(httpx.HTTPError):
                    answer = await client.get(f"http://127.0.0.1:{self.service_port}/readyz", timeout=2)
                    if answer.status_code == 200:
                        return
                await asyncio.sleep(0.2)
        raise RuntimeError("the notifications service was not ready within 120 s")

    async def _subscribe(self) -> dict[str, str]:
        from shared.auth import mint_token

        token = mint_token(self.settings.auth_secret, PORTAL, "partner")
        routes = {}
        async with httpx.AsyncClient(trust_env=False, timeout=30) as client:
            for i in range(self.config.subscribers):
                path = f"/subscriber-{i}"
                answer = await client.post(
                    f"http://127.0.0.1:{self.service_port}/v1/webhooks/subscriptions",
                    headers={"Authorization": f"Bearer {token}"},
                    json={
                        "url": f"http://127.0.0.1:{self.receiver_port}{path}",
                        "event_types": ["ee.draws.Invited"],
                        "description": f"bench subscriber {i}",
                    },
                )
                if answer.status_code != 201:
                    raise RuntimeError(f"subscribing failed: {answer.status_code} {answer.text}")
                routes[path] = answer.json()["secret"]
        return routes

    async def _start_receiver(self, routes: dict[str, str]) -> None:
        args = [sys.executable, "-m", "notifications_service.receiver", "--port", str(self.receiver_port),
                "--out", str(self.out), "--summary"]  # fmt: skip
        for path, secret in routes.items():
            args += ["--route", f"{path}={secret}"]
        self.receiver = _spawn(args, _env(), RUN_DIR / "notifications-receiver.log")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if listening(self.receiver_port):
                return
            await asyncio.sleep(0.05)
        raise RuntimeError("the receiver did not listen within 30 s")

    async def _measure(self) -> dict[str, Any]:
        from shared.events.catalogue import DRAWS_TOPIC

        routes = await self._subscribe()
        await self._start_receiver(routes)
        tail = Tail(self.out)
        fan = self.config.subscribers
        topic = self.settings.topic(DRAWS_TOPIC)
        producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.kafka_bootstrap_servers, enable_idempotence=True, linger_ms=5
        )
        await producer.start()
        try:
            # 1. probe: one invitation at a time
            probe_records: list[dict[str, Any]] = []
            for _ in range(self.config.probe):
                before = len(tail.records)
                key, value = invited_envelope(f"probe-{uuid.uuid4()}", datetime.now(UTC))
                await producer.send_and_wait(topic, value, key=key)
                await self._wait_for(tail, len(tail.ids) + fan, 30)
                probe_records += tail.records[before:]
                await asyncio.sleep(0.1)
            figures: dict[str, Any] = {"subscribers": fan}
            if probe_records:
                probe = summarize(latencies_ms(probe_records), 1.0)
                figures["probe"] = {"invitations": self.config.probe, **probe.as_dict()}
                self.say(
                    f"  probe: {self.config.probe} lone ITAs × {fan}: ITA → delivered p50 "
                    f"{probe.p50_ms:.1f} ms, p99 {probe.p99_ms:.1f} ms, max {probe.max_ms:.1f} ms"
                )

            # 2. burst
            before_ids, before_records = len(tail.ids), len(tail.records)
            assert self.service is not None and self.receiver is not None
            cpu_before = cpu_seconds(self.service.pid), cpu_seconds(self.receiver.pid)
            load_before = os.getloadavg()[0]
            now = datetime.now(UTC)
            batch = [
                invited_envelope(f"bench-{i}-{uuid.uuid4().hex[:8]}", now)
                for i in range(self.config.invitations)
            ]
            started = time.time()
            futures = [await producer.send(topic, value, key=key) for key, value in batch]
            await asyncio.gather(*futures)
            written = time.time() - started
        finally:
            await producer.stop()
        expected = before_ids + self.config.invitations * fan
        complete = await self._wait_for(tail, expected, self.config.limit_s, fail=False)
        service_cpu = cpu_seconds(self.service.pid) - cpu_before[0]
        receiver_cpu = cpu_seconds(self.receiver.pid) - cpu_before[1]
        records = tail.records[before_records:]
        last = max(float(r["received_at"]) for r in records) if complete else time.time()
        samples = latencies_ms(records)
        burst = summarize(samples, last - started)
        distinct = len({r["webhook_id"] for r in records})
        figures["burst"] = {
            "complete": complete,
            "invitations": self.config.invitations,
            "deliveries": distinct,
            "duplicates": len(records) - distinct,
            "kafka_write_s": round(written, 3),
            "seconds": round(last - started, 3),
            "deliveries_per_s": round(distinct / (last - started), 1),
            "service_cpu_s": round(service_cpu, 2),
            "service_cpu_ms_per_delivery": round(service_cpu * 1000 / max(distinct, 1), 3),
            "receiver_cpu_s": round(receiver_cpu, 2),
            "loadavg_1m_before": round(load_before, 2),
            "loadavg_1m_after": round(os.getloadavg()[0], 2),
            **{k: v for k, v in burst.as_dict().items() if k.endswith("_ms")},
        }
        self.say(
            f"  burst: {self.config.invitations:,} ITAs × {fan} = {distinct:,} deliveries in "
            f"{last - started:.1f} s: {distinct / (last - started):,.0f} deliveries/s; ITA → delivered "
            f"p50 {burst.p50_ms:,.0f} ms, p99 {burst.p99_ms:,.0f} ms, max {burst.max_ms:,.0f} ms; "
            f"service CPU {service_cpu * 1000 / max(distinct, 1):.2f} ms/delivery; "
            f"load average {os.getloadavg()[0]:.1f}"
        )
        return figures

    async def _wait_for(self, tail: Tail, count: int, limit_s: float, fail: bool = True) -> bool:
        """True once `count` distinct deliveries arrived; at `limit_s`: raise, or False (`fail=False`:
        the figures then cover what arrived by the limit, and say so)."""
        deadline = time.monotonic() + limit_s
        while tail.poll() < count:
            if time.monotonic() > deadline:
                if not fail:
                    self.say(f"  {len(tail.ids):,} of {count:,} deliveries by the {limit_s:g} s limit")
                    return False
                raise RuntimeError(f"{len(tail.ids):,} of {count:,} deliveries after {limit_s:g} s")
            if self.service is not None and self.service.poll() is not None:
                raise RuntimeError("the notifications service exited during the run")
            await asyncio.sleep(0.05)
        return True

    async def _cleanup(self) -> None:
        from shared import kafka_admin
        from shared.db import drop_database

        await asyncio.to_thread(stop_process, self.service, 30)
        await asyncio.to_thread(stop_process, self.receiver, 30)
        with contextlib.suppress(Exception):
            await kafka_admin.delete_topics_with_prefix(self.settings.kafka_bootstrap_servers, self.prefix)
        await drop_database(self.settings.database_url)
        self.out.unlink(missing_ok=True)


async def measure(config: NotifyConfig, say: Any = print) -> dict[str, Any]:
    return await NotificationsBench(config, say).run()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.notifications", description=__doc__.split("\n")[0])
    parser.add_argument("--invitations", type=int, default=10_000)
    parser.add_argument("--subscribers", type=int, default=10)
    parser.add_argument("--probe", type=int, default=50, help="lone invitations timed first (0: none)")
    parser.add_argument("--max-in-flight", type=int, default=16, help="EE_NOTIFICATIONS_MAX_IN_FLIGHT")
    parser.add_argument("--limit-s", type=float, default=900.0)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    config = NotifyConfig(
        args.invitations, args.subscribers, args.probe, args.max_in_flight, args.limit_s, args.keep
    )
    figures = asyncio.run(measure(config))
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    (RUN_DIR / "notifications.json").write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
