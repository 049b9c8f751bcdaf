"""`make bench`, write capacity: the highest rate each command path holds with p99 ≤ 250 ms (issue 10).

    python -m bench.writes --profile-url http://127.0.0.1:8001 --prefix ''   # profile, on running services
    python -m bench.writes --applications                                      # applications, self-contained

A **step ladder**, short and bounded: open-loop commands at each rate of `--rates` (ascending) for
`--step-s` seconds, each entity's next command sent only once its previous one answered; the ladder
stops at the first rate not held. A rate is **held** when every command sent was accepted, the accepted
commands per second reached 95% of the rate, and the p99 of command sent → its event read back from
Kafka (continuing the command's `X-Correlation-Id`) is ≤ 250 ms, none missing.

- **profile**: `PUT /v1/profiles/{id}` (If-Match) on profiles in the pool; visible = the `Ranked` event
  read from the ranking topic (the same measure as `bench.latency.measure_update_visibility`, which
  runs each step). Runs on the suite's services (`bench.run`), with the rest of the system running.
- **applications**: its own applications service process (database `applications_benchwrites<time>`,
  topics `benchwrites<time>.`), invitations written to the draws topic as the draws service would, then
  per invitation apply → officer's decision (approved) → landing; visible = the command's event on
  `ee.applications.events`. Everything it started is removed at the end.

Each step also gives the service's CPU per accepted command (from `/proc/<pid>/stat`) and the load
average, since wall-clock rates on a shared machine say as much about the neighbours as about the code.
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
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import httpx
import orjson

from bench.latency import (
    IN_FLIGHT,
    InFlight,
    RankedTail,
    json_body,
    lean_client,
    process_cpu_s,
    ratio,
    send_offsets,
    summarize,
)
from bench.leanhttp import RequestFailed

ROOT: Final = Path(__file__).resolve().parents[1]
RUN_DIR: Final = ROOT / ".local" / "bench"
P99_TARGET_MS: Final = 250.0
HELD_SHARE: Final = 0.95  # of the asked rate, accepted per second
DEFAULT_RATES: Final = (50.0, 100.0, 150.0, 200.0, 250.0, 300.0, 400.0)
APPLICATIONS_ALEMBIC: Final = ROOT / "services" / "applications" / "alembic.ini"
APPLICATIONS_ROOTS: Final = (".", "services/applications")
COMMANDS_PER_INVITATION: Final = 3  # apply, decide, land


# ============================================================================================
# The ladder (pure)
# ============================================================================================


@dataclass
class Step:
    """One rung: what was asked, what came back."""

    rate: float
    seconds: float
    sent: int = 0
    accepted: int = 0
    rejected: int = 0
    skipped: int = 0  # no entity free at the send time (its previous command unanswered or not yet seen)
    not_visible: int = 0
    visible_ms: list[float] = field(default_factory=list)
    answered_ms: list[float] = field(default_factory=list)
    cpu_ms_per_command: float | None = None
    load: float | None = None
    examples: list[str] = field(default_factory=list)

    @property
    def accepted_per_s(self) -> float:
        return self.accepted / self.seconds if self.seconds > 0 else 0.0

    @property
    def p99_ms(self) -> float | None:
        return summarize(self.visible_ms, 1.0).p99_ms if self.visible_ms else None

    @property
    def held(self) -> bool:
        p99 = self.p99_ms
        return (
            self.rejected == 0
            and self.not_visible == 0
            and self.accepted_per_s >= HELD_SHARE * self.rate
            and p99 is not None
            and p99 <= P99_TARGET_MS
        )

    def as_dict(self) -> dict[str, Any]:
        figures: dict[str, Any] = {
            "rate_per_s": self.rate,
            "seconds": round(self.seconds, 2),
            "sent": self.sent,
            "accepted": self.accepted,
            "accepted_per_s": round(self.accepted_per_s, 1),
            "rejected": self.rejected,
            "skipped": self.skipped,
            "not_visible": self.not_visible,
            "held": self.held,
            "cpu_ms_per_command": self.cpu_ms_per_command,
            "load": self.load,
            "examples": self.examples[:3],
        }
        if self.visible_ms:
            figures["visible"] = summarize(self.visible_ms, self.seconds).as_dict()
        if self.answered_ms:
            figures["answered"] = summarize(self.answered_ms, self.seconds).as_dict()
        return figures


async def run_ladder(step: Callable[[float], Awaitable[Step]], rates: Sequence[float]) -> dict[str, Any]:
    """Each rate in ascending order until the first one not held; the highest held (None if none)."""
    steps: list[Step] = []
    for rate in sorted(rates):
        result = await step(rate)
        steps.append(result)
        if not result.held:
            break
    held = [s for s in steps if s.held]
    best = held[-1] if held else None
    return {
        "steps": [s.as_dict() for s in steps],
        "highest_rate_held": best.rate if best else None,
        "at_highest": best.as_dict() if best else None,
        "p99_target_ms": P99_TARGET_MS,
    }


def ladder_rows(
    label: str, ladder: dict[str, Any] | None, target_rate: float = 200.0
) -> list[dict[str, Any]]:
    """The table's rows of one ladder (`bench.run.Row`'s fields; results.json keeps `what`, `measured`,
    `target`, `meets`, `value`): the highest rate held, then accepted/s, p99 and CPU at that rate."""
    held_target = f"≥ {target_rate:g}/s"
    p99_target = f"p99 ≤ {P99_TARGET_MS:g} ms"
    if not ladder:
        return [_row(f"{label}: highest rate held with p99 ≤ {P99_TARGET_MS:g} ms", "not measured",
                     held_target, None, None, None)]  # fmt: skip
    best = ladder.get("highest_rate_held")
    tried = " ".join(f"{s['rate_per_s']:g}{'✓' if s['held'] else '✗'}" for s in ladder.get("steps") or [])
    rows = [_row(
        f"{label}: highest rate held with p99 ≤ {P99_TARGET_MS:g} ms (step ladder)",
        f"{best:g}/s (steps {tried})" if best is not None else f"none held (steps {tried})",
        held_target, ratio(best, target_rate), best is not None and best >= target_rate, best,
    )]  # fmt: skip
    shown = ladder.get("at_highest") or (ladder.get("steps") or [None])[-1]
    if shown and shown.get("visible"):
        p99 = shown["visible"]["p99_ms"]
        answered = shown.get("answered", {}).get("p99_ms")
        rows.append(_row(
            f"{label}: at {shown['rate_per_s']:g}/s asked",
            f"{shown['accepted_per_s']}/s accepted, p99 {p99:,.1f} ms (answered p99 {answered:,.1f} ms), "
            f"{shown['cpu_ms_per_command']} ms service CPU per command, load {shown['load']}",
            p99_target, ratio(p99, P99_TARGET_MS), p99 <= P99_TARGET_MS, p99,
        ))  # fmt: skip
    return rows


def _row(
    what: str,
    measured: str,
    target: str,
    ratio_to_target: float | None,
    meets: bool | None,
    value: float | None,
) -> dict[str, Any]:
    return {"what": what, "measured": measured, "target": target, "ratio_to_target": ratio_to_target,
            "meets": meets, "vs_baseline": "—", "value": value}  # fmt: skip


def rows(figures: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Every row of the write-capacity step (profile, then applications)."""
    figures = figures or {}
    return [
        *ladder_rows("profile PUT → Ranked", figures.get("profile")),
        *ladder_rows("applications command → its event", figures.get("applications")),
    ]


def _per_command(before: float | None, after: float | None, count: int) -> float | None:
    if before is None or after is None or count <= 0:
        return None
    return round((after - before) * 1000 / count, 3)


# ============================================================================================
# Events read back, by correlation id
# ============================================================================================


class EventTail(RankedTail):
    """`RankedTail` for any event of the topic: each record's subject and correlation id as read."""

    type_prefix = ""


# ============================================================================================
# An open-loop step over entities that each take one command at a time
# ============================================================================================

Send = Callable[[Any, str], Awaitable[tuple[bool, str | None]]]
"""Send the entity's next command with that correlation id: (accepted, why not)."""


async def open_loop_step(
    rate: float,
    seconds: float,
    entities: InFlight[Any],
    send: Send,
    tail: RankedTail,
    *,
    settle_s: float = 10.0,
    cpu_s: Callable[[], float | None] = lambda: None,
) -> Step:
    """`rate` commands per second for `seconds` over the free `entities` (one command in flight each,
    until its event is read back: `InFlight`)."""
    step = Step(rate, seconds)
    sent_at: dict[str, float] = {}
    seen: dict[str, float] = {}
    accepted: set[str] = set()

    def on_event(_subject: str, correlation: str | None, received: float) -> None:
        if correlation is not None and correlation in sent_at and correlation not in seen:
            seen[correlation] = (received - sent_at[correlation]) * 1000.0
            entities.seen(correlation)

    async def one(entity: Any, correlation: str) -> None:
        started = time.perf_counter()
        sent_at[correlation] = time.time()
        try:
            ok, why = await send(entity, correlation)
        except (httpx.HTTPError, RequestFailed) as exc:
            ok, why = False, f"{type(exc).__name__}: {exc}"
        step.answered_ms.append((time.perf_counter() - started) * 1000.0)
        if ok:
            step.accepted += 1
            accepted.add(correlation)
            entities.accepted(correlation)
        else:
            step.rejected += 1
            step.examples.append(str(why)[:200])
            sent_at.pop(correlation, None)
            entities.refused(correlation)

    tail.on_ranked = on_event
    tasks: set[asyncio.Task[None]] = set()
    cpu_before = cpu_s()
    started = time.perf_counter()
    try:
        for index, offset in enumerate(send_offsets(rate, seconds)):
            delay = started + offset - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            correlation = f"bench-writes-{index}-{uuid.uuid4().hex[:12]}"
            entity = entities.lend(correlation)
            if entity is None:
                step.skipped += 1
                continue
            task = asyncio.create_task(one(entity, correlation))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            step.sent += 1
        step.seconds = time.perf_counter() - started
        if tasks:
            await asyncio.wait(set(tasks), timeout=settle_s)
        cpu_after = cpu_s()
        deadline = time.perf_counter() + settle_s
        while not accepted <= seen.keys() and time.perf_counter() < deadline:
            if tail.failure() is not None:
                break
            await asyncio.sleep(0.05)
    finally:
        for task in tasks:
            task.cancel()
        tail.on_ranked = None
    step.visible_ms = [seen[c] for c in accepted if c in seen]
    step.not_visible = len(accepted) - len(step.visible_ms)
    step.cpu_ms_per_command = _per_command(cpu_before, cpu_after, step.accepted)
    step.load = round(os.getloadavg()[0], 2)
    return step


# ============================================================================================
# Profile: PUT on profiles in the pool, visible = Ranked
# ============================================================================================


@dataclass
class _Profile:
    profile_id: str
    document: dict[str, Any]
    version: int


async def profile_ladder(
    client: httpx.AsyncClient,
    profile_url: str,
    token: str,
    documents: Sequence[dict[str, Any]],
    ranked_tail: RankedTail,
    *,
    rates: Sequence[float] = DEFAULT_RATES,
    step_s: float = 10.0,
    cpu_s: Callable[[], float | None] = lambda: None,
) -> dict[str, Any]:
    """Create and submit `documents` through the API (until ranked), then the ladder of PUTs."""
    from bench.latency import create_profiles, toggled_sibling

    profiles, setup = await create_profiles(client, profile_url, token, documents, ranked_tail, limit_s=300)
    if not profiles:
        raise RuntimeError(f"no profile entered the pool: {setup}")
    free: InFlight[_Profile] = InFlight(_Profile(p.profile_id, p.document, p.version) for p in profiles)
    puts, base = lean_client(profile_url, IN_FLIGHT, headers={"Authorization": f"Bearer {token}"})

    async def put(profile: _Profile, correlation: str) -> tuple[bool, str | None]:
        document = toggled_sibling(profile.document)
        headers = {"If-Match": f'"{profile.version}"', "X-Correlation-Id": correlation}
        path = f"{base}/v1/profiles/{profile.profile_id}"
        answer = await puts.request("PUT", path, body=json_body(document), headers=headers)
        if answer.status != 200:
            return False, f"{answer.status}: {_text(answer.body)}"
        profile.document = document
        profile.version = int(answer.headers["etag"].strip('"'))
        return True, None

    try:
        ladder = await run_ladder(
            lambda rate: open_loop_step(rate, step_s, free, put, ranked_tail, cpu_s=cpu_s), rates
        )
    finally:
        await puts.close()
    return {"setup": setup, **ladder}


def _text(body: bytes) -> str:
    return body[:200].decode(errors="replace")


# ============================================================================================
# Applications: its own service process; apply → decide → land per invitation
# ============================================================================================


async def wait_until_all_shown(
    ids: Sequence[str],
    shown: Callable[[str], Awaitable[bool]],
    *,
    timeout_s: float,
    batch: int = 32,
    pause_s: float = 0.2,
) -> None:
    """Ask `shown` of every id, `batch` at a time, asking again (after `pause_s`) of those not shown yet,
    until all are; `RuntimeError` naming how many are missing after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    pending = list(ids)
    while pending:
        asked, rest = pending[:batch], pending[batch:]
        answers = await asyncio.gather(*(shown(i) for i in asked))
        missing = [i for i, ok in zip(asked, answers, strict=True) if not ok]
        pending = missing + rest
        if missing:
            if time.monotonic() >= deadline:
                raise RuntimeError(f"{len(pending)} of {len(ids)} not shown within {timeout_s:g} s, "
                                   f"e.g. {missing[0]}")  # fmt: skip
            await asyncio.sleep(pause_s)


@dataclass
class _Invitation:
    invitation_id: str
    next: str = "apply"  # apply, decide, land, done
    application_id: str | None = None
    version: int = 1

    @property
    def retired(self) -> bool:
        """Landed: it takes no more commands."""
        return self.next == "done"


class ApplicationsBench:
    """The applications service on a fresh database and topics, fed invitations, then the ladder."""

    OWNER: Final = "bench-writes-portal"
    OFFICER: Final = "bench-writes-officer"

    def __init__(
        self, rates: Sequence[float], step_s: float, say: Callable[[str], Any] = print, keep: bool = False
    ) -> None:
        from applications_service.settings import ApplicationsSettings

        stamp = int(time.time())
        self.rates = sorted(rates)
        self.step_s = step_s
        self.say = say
        self.keep = keep
        self.prefix = f"benchwrites{stamp}."
        self.db_suffix = f"_benchwrites{stamp}"
        os.environ.pop("EE_APPLICATIONS_DATABASE_URL", None)
        self.settings = ApplicationsSettings(topic_prefix=self.prefix, db_suffix=self.db_suffix)
        from shared.testing import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def _token(self, sub: str, role: str) -> dict[str, str]:
        from shared.auth import mint_token

        token = mint_token(self.settings.auth_secret, sub, role, ttl_seconds=4 * 3600)
        return {"Authorization": f"Bearer {token}"}

    async def run(self) -> dict[str, Any]:
        RUN_DIR.mkdir(parents=True, exist_ok=True)
        try:
            await self._start()
            return await self._measure()
        finally:
            if not self.keep:
                await self._cleanup()

    async def _start(self) -> None:
        from shared import kafka_admin
        from shared.db import create_database
        from shared.migrations import upgrade_to_head
        from shared.testing import spawn

        await create_database(self.settings.database_url)
        await upgrade_to_head(APPLICATIONS_ALEMBIC, self.settings.database_url)
        await kafka_admin.ensure_topics(self.settings.kafka_bootstrap_servers, self.prefix)
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(str(ROOT / r) for r in APPLICATIONS_ROOTS),
            "EE_TOPIC_PREFIX": self.prefix,
            "EE_DB_SUFFIX": self.db_suffix,
        }
        log = RUN_DIR / "applications-writes.log"
        self.process = spawn(
            [sys.executable, "-m", "uvicorn", "applications_service.main:app", "--host", "127.0.0.1",
             "--port", str(self.port), "--log-level", "warning"], ROOT, env=env, log=log,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        async with httpx.AsyncClient(trust_env=False) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"the applications service exited; see {log}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{self.url}/readyz", timeout=2)).status_code == 200:
                        return
                await asyncio.sleep(0.2)
        raise RuntimeError("the applications service was not ready within 120 s")

    async def _invite(self, count: int) -> list[_Invitation]:
        """`count` Invited events on the draws topic; wait until the service shows every one."""
        from shared.envelope import encode
        from shared.events.catalogue import Invited
        from shared.messages import envelope_for
        from shared.producer import start_producer

        now = datetime.now(UTC)
        events = [
            Invited(
                profile_id=f"bench-writes-{uuid.uuid4()}",
                owner=self.OWNER,
                invitation_id=str(uuid.uuid4()),
                round_id="bench-writes",
                round_number=1,
                program="fsw",
                crs=500,
                citizenship="FR",
                invited_at=now,
                deadline=now + timedelta(days=60),
            )
            for _ in range(count)
        ]
        producer = await start_producer(self.settings, role="bench")
        try:
            futures = [
                await producer.send(
                    self.settings.topic(event.topic),
                    value=encode(envelope_for(event, source="ee/draws", time=now)),
                    key=event.key().encode(),
                )
                for event in events
            ]
            await asyncio.gather(*futures)
        finally:
            await producer.stop()
        ops = self._token("bench-writes-ops", "ops")
        # A client of its own each time: kept-alive connections idle through a step were closed by the
        # service (uvicorn's keep-alive timeout), and one reused just then fails with a ReadError.
        async with httpx.AsyncClient(timeout=30, trust_env=False) as client:

            async def shown(invitation_id: str) -> bool:
                answer = await client.get(f"{self.url}/v1/invitations/{invitation_id}", headers=ops)
                return answer.status_code == 200

            # Every one, not a sample: the events are keyed by profile over several partitions, so the
            # first, middle and last being shown says nothing of the others (a step once met a 404).
            await wait_until_all_shown([e.invitation_id for e in events], shown, timeout_s=300)
        return [_Invitation(e.invitation_id) for e in events]

    async def _measure(self) -> dict[str, Any]:
        from shared.events.catalogue import APPLICATIONS_TOPIC

        today = datetime.now(UTC).date()
        owner = self._token(self.OWNER, "partner")
        officer = self._token(self.OFFICER, "officer")
        invited = 0
        commands, _ = lean_client(self.url, IN_FLIGHT)
        free: InFlight[_Invitation] = InFlight()

        async def at(rate: float) -> Step:
            # Enough fresh invitations for this step (three commands each), before its clock starts.
            nonlocal invited
            count = int(rate * self.step_s / COMMANDS_PER_INVITATION) + 50
            started = time.perf_counter()
            free.add(await self._invite(count))
            invited += count
            self.say(f"  {count:,} invitations shown by the service in "
                     f"{time.perf_counter() - started:.1f} s")  # fmt: skip
            return await open_loop_step(
                rate, self.step_s, free, command, tail, cpu_s=lambda: process_cpu_s(pid) if pid else None
            )

        async def command(invitation: _Invitation, correlation: str) -> tuple[bool, str | None]:
            headers = {"If-Match": f'"{invitation.version}"', "X-Correlation-Id": correlation}
            if invitation.next == "apply":
                body = {
                    "invitation_id": invitation.invitation_id,
                    "passport": {"number": "17FR12345", "country": "FR",
                                 "expiry": str(today + timedelta(days=2000))},
                    "medical_exam_date": str(today - timedelta(days=10)),
                    "police_certificates": True,
                    "proof_of_funds_cad": 30_000,
                }  # fmt: skip
                answer = await commands.request("POST", "/v1/applications", body=json_body(body),
                                                headers={**owner, **headers})  # fmt: skip
                expected, following = 201, "decide"
            elif invitation.next == "decide":
                decision = json_body({"decision": "approved", "reasons": ["bench"]})
                answer = await commands.request(
                    "POST", f"/v1/applications/{invitation.application_id}/decision",
                    body=decision, headers={**officer, **headers},
                )  # fmt: skip
                expected, following = 200, "land"
            else:
                answer = await commands.request(
                    "POST", f"/v1/applications/{invitation.application_id}/landing",
                    headers={**officer, **headers},
                )  # fmt: skip
                expected, following = 200, "done"
            if answer.status != expected:
                return False, f"{invitation.next} {answer.status}: {_text(answer.body)}"
            invitation.version = int(answer.headers["etag"].strip('"'))
            if invitation.next == "apply":
                invitation.application_id = orjson.loads(answer.body)["application_id"]
            invitation.next = following
            return True, None

        tail = EventTail(self.settings.kafka_bootstrap_servers, self.settings.topic(APPLICATIONS_TOPIC))
        await tail.start()
        pid = self.process.pid if self.process is not None else None
        try:
            ladder = await run_ladder(at, self.rates)
        finally:
            await tail.stop()
            await commands.close()
        return {"invitations": invited, **ladder}

    async def _cleanup(self) -> None:
        from shared import kafka_admin
        from shared.db import drop_database
        from shared.testing import stop_process

        await asyncio.to_thread(stop_process, self.process, 30)
        with contextlib.suppress(Exception):
            await kafka_admin.delete_topics_with_prefix(self.settings.kafka_bootstrap_servers, self.prefix)
        with contextlib.suppress(Exception):
            await drop_database(self.settings.database_url)


async def measure_applications(
    rates: Sequence[float] = DEFAULT_RATES,
    step_s: float = 10.0,
    say: Callable[[str], Any] = print,
    keep: bool = False,
) -> dict[str, Any]:
    return await ApplicationsBench(rates, step_s, say, keep).run()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.writes", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--rates",
        default=",".join(f"{r:g}" for r in DEFAULT_RATES),
        help="ascending rates per second, comma-separated (default %(default)s)",
    )
    parser.add_argument("--step-s", type=float, default=10.0, help="seconds per rate")
    parser.add_argument(
        "--applications", action="store_true", help="the applications ladder (self-contained)"
    )
    parser.add_argument("--profile-url", help="the profile ladder on a running profile service")
    parser.add_argument("--profile-pid", type=int, help="the profile service's pid (CPU per command)")
    parser.add_argument(
        "--prefix",
        default=os.environ.get("EE_TOPIC_PREFIX", ""),
        help="the running services' topic prefix (the ranking topic is read)",
    )
    parser.add_argument("--profiles", type=int, default=400, help="profiles created for the profile ladder")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    rates = [float(r) for r in args.rates.split(",") if r.strip()]
    figures: dict[str, Any] = {}
    if args.applications:
        figures["applications"] = asyncio.run(measure_applications(rates, args.step_s, keep=args.keep))
    if args.profile_url:
        figures["profile"] = asyncio.run(_profile_main(args, rates))
    table = rows(figures)
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    (RUN_DIR / "writes.json").write_text(json.dumps({"figures": figures, "rows": table}, indent=2))
    print(json.dumps(table, indent=2, ensure_ascii=False))
    return 0


def configured_rates() -> list[float]:
    """`BENCH_WRITE_RATES` (comma-separated), else the default ladder."""
    raw = os.environ.get("BENCH_WRITE_RATES", "")
    return [float(r) for r in raw.split(",") if r.strip()] or list(DEFAULT_RATES)


async def suite_step(suite: Any) -> dict[str, Any]:
    """`make bench`'s step (`bench.run.Suite`): the profile ladder on the suite's services, then the
    applications ladder on its own service process. `BENCH_WRITE_RATES`; each step lasts the suite's
    `write_step_seconds` (`BENCH_WRITE_STEP_S`, 10 s; 6 s in a quick run)."""
    from bench.pool_generator import generate_documents
    from shared.events.catalogue import RANKING_TOPIC
    from shared.kafka_admin import topic_name

    rates = configured_rates()
    step_s = suite.config.write_step_seconds
    figures: dict[str, Any] = {}
    documents = [c.document for c in generate_documents(400, suite.config.seed + 3_000, workers=1)]
    tail = RankedTail(suite.bootstrap, topic_name(RANKING_TOPIC, suite.prefix))
    await tail.start()
    limits = httpx.Limits(max_connections=400, max_keepalive_connections=400)
    try:
        async with httpx.AsyncClient(timeout=30, trust_env=False, limits=limits) as client:
            figures["profile"] = await profile_ladder(
                client, suite.base_url["profile"], suite._token("bench-writes", "partner"), documents, tail,
                rates=rates, step_s=step_s, cpu_s=lambda: suite._cpu_seconds("profile"),
            )  # fmt: skip
    finally:
        await tail.stop()
    _say_ladder(suite.console.print, "profile PUT", figures["profile"])
    figures["applications"] = await measure_applications(rates, step_s, say=suite.console.print)
    _say_ladder(suite.console.print, "applications commands", figures["applications"])
    return figures


def _say_ladder(say: Callable[[str], Any], label: str, ladder: dict[str, Any]) -> None:
    for step in ladder["steps"]:
        visible = step.get("visible", {})
        say(
            f"  {label} at {step['rate_per_s']:g}/s: {step['accepted_per_s']}/s accepted, p99 "
            f"{visible.get('p99_ms', '—')} ms, {step['rejected']} rejected, {step['not_visible']} not seen, "
            f"{step['cpu_ms_per_command']} ms CPU per command, load {step['load']} → "
            f"{'held' if step['held'] else 'not held'}"
        )


async def _profile_main(args: argparse.Namespace, rates: Sequence[float]) -> dict[str, Any]:
    from bench.pool_generator import generate_documents
    from shared.auth import mint_token
    from shared.events.catalogue import RANKING_TOPIC
    from shared.kafka_admin import default_bootstrap, topic_name
    from shared.settings import DEV_AUTH_SECRET

    token = mint_token(os.environ.get("EE_AUTH_SECRET") or DEV_AUTH_SECRET, "bench-writes", "partner",
                       ttl_seconds=4 * 3600)  # fmt: skip
    documents = [c.document for c in generate_documents(args.profiles, 4_242, workers=1)]
    tail = RankedTail(default_bootstrap(), topic_name(RANKING_TOPIC, args.prefix))
    await tail.start()
    limits = httpx.Limits(max_connections=400, max_keepalive_connections=400)
    pid = args.profile_pid
    try:
        async with httpx.AsyncClient(timeout=30, trust_env=False, limits=limits) as client:
            return await profile_ladder(
                client, args.profile_url, token, documents, tail, rates=rates, step_s=args.step_s,
                cpu_s=lambda: process_cpu_s(pid) if pid else None,
            )  # fmt: skip
    finally:
        await tail.stop()


if __name__ == "__main__":
    sys.exit(main())
