"""Latency measurement for `make bench`: percentiles, bounded HTTP request runs, update → visible.

Pure helpers (unit-tested in `bench/tests/test_bench_helpers.py`):

- `percentile(sorted_samples, q)`: linear interpolation between closest ranks (NumPy's default, R's
  type 7): p50 of [1, 2, 3, 4] is 2.5; one sample is every percentile of itself;
- `summarize(samples_ms, seconds)`: count, p50, p90, p99, max and mean of latencies in ms, with the
  throughput over the wall time of the run;
- `ratio(measured, reference)`: measured / reference, None when either is missing or the reference is 0;
- `send_offsets(rate, duration_s)`: when each request of an open-loop run at `rate` per second goes.

Runners (every one bounded by a request count *and* a time limit, loopback only):

- `run_sequential(call, count, limit_s)`: one request after the other on one keep-alive connection;
- `run_concurrent(call, count, concurrency, limit_s)`: `concurrency` workers sharing the count;
- `measure_update_visibility(...)`: `PUT /v1/profiles/{id}` (If-Match) at a fixed rate, each with its
  own `X-Correlation-Id`; the time until the `Ranked` event continuing that correlation id is read from
  the ranking topic is the update → visible latency.
"""

from __future__ import annotations

import asyncio
import math
import os
import sys
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Generic, TypeVar

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.leanhttp import LeanClient, LeanReads, RequestFailed
from shared import kafka_admin

__all__ = [
    "InFlight",
    "RankedTail",
    "ReadsPlan",
    "RunResult",
    "Summary",
    "TrackedProfile",
    "UpdateRun",
    "create_profiles",
    "measure_history_cost",
    "measure_reads",
    "measure_reads_apart",
    "measure_update_visibility",
    "percentile",
    "ratio",
    "run_concurrent",
    "run_sequential",
    "send_offsets",
    "summarize",
]

RANKED_TYPE_PREFIX: Final = "ee.ranking.Ranked."

Call = Callable[[int], Awaitable[bool]]
"""One request (its index given); True when the answer was the expected one."""


# ============================================================================================
# Pure helpers
# ============================================================================================


def percentile(sorted_samples: Sequence[float], q: float) -> float:
    """The `q`-th percentile (0..100) of ascending samples, interpolating linearly between ranks."""
    if not sorted_samples:
        raise ValueError("no samples")
    if not 0.0 <= q <= 100.0 or math.isnan(q):
        raise ValueError(f"percentile must be within 0..100, got {q}")
    position = (len(sorted_samples) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(sorted_samples) - 1)
    fraction = position - low
    return sorted_samples[low] + (sorted_samples[high] - sorted_samples[low]) * fraction


@dataclass(frozen=True, slots=True)
class Summary:
    """Latencies of one run, in milliseconds."""

    count: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    seconds: float  # wall time of the run
    per_second: float  # completed requests per second of wall time

    def as_dict(self) -> dict[str, float | int]:
        return {
            "count": self.count,
            "p50_ms": round(self.p50_ms, 3),
            "p90_ms": round(self.p90_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
            "max_ms": round(self.max_ms, 3),
            "mean_ms": round(self.mean_ms, 3),
            "seconds": round(self.seconds, 3),
            "per_second": round(self.per_second, 1),
        }


def summarize(samples_ms: Iterable[float], seconds: float) -> Summary:
    """Percentiles of `samples_ms` (any order); `seconds` is the wall time they took together."""
    ordered = sorted(samples_ms)
    if not ordered:
        raise ValueError("no samples")
    return Summary(
        count=len(ordered),
        p50_ms=percentile(ordered, 50),
        p90_ms=percentile(ordered, 90),
        p99_ms=percentile(ordered, 99),
        max_ms=ordered[-1],
        mean_ms=sum(ordered) / len(ordered),
        seconds=seconds,
        per_second=len(ordered) / seconds if seconds > 0 else 0.0,
    )


def ratio(measured: float | None, reference: float | None) -> float | None:
    """`measured / reference`; None when either is unknown or the reference is zero."""
    if measured is None or reference is None or reference == 0:
        return None
    return measured / reference


def send_offsets(rate: float, duration_s: float) -> list[float]:
    """Seconds after the start at which each request of an open-loop run goes: `rate` per second."""
    if rate <= 0 or duration_s <= 0:
        return []
    count = math.floor(rate * duration_s + 1e-9)
    return [i / rate for i in range(count)]


# ============================================================================================
# Request runners
# ============================================================================================


@dataclass
class RunResult:
    summary: Summary | None
    errors: int  # requests that failed or answered something unexpected
    stopped_by_time: bool  # the time limit ended the run before `count` requests

    def as_dict(self) -> dict[str, Any]:
        figures: dict[str, Any] = self.summary.as_dict() if self.summary else {"count": 0}
        figures.update(errors=self.errors, stopped_by_time=self.stopped_by_time)
        return figures


async def _timed(call: Call, index: int, samples: list[float]) -> bool:
    started = time.perf_counter_ns()
    try:
        ok = await call(index)
    except httpx.HTTPError:
        ok = False
    samples.append((time.perf_counter_ns() - started) / 1e6)
    return ok


async def run_sequential(call: Call, count: int, limit_s: float) -> RunResult:
    """`count` requests one after the other (fewer if `limit_s` runs out first)."""
    samples: list[float] = []
    errors = 0
    started = time.perf_counter()
    deadline = started + limit_s
    for index in range(count):
        if time.perf_counter() > deadline:
            break
        if not await _timed(call, index, samples):
            errors += 1
    seconds = time.perf_counter() - started
    summary = summarize(samples, seconds) if samples else None
    return RunResult(summary, errors, len(samples) < count)


async def run_concurrent(call: Call, count: int, concurrency: int, limit_s: float) -> RunResult:
    """`count` requests shared by `concurrency` workers, each sending its next as the last returns."""
    samples: list[float] = []
    errors = 0
    next_index = 0
    started = time.perf_counter()
    deadline = started + limit_s

    async def worker() -> None:
        nonlocal next_index, errors
        while next_index < count and time.perf_counter() <= deadline:
            index = next_index
            next_index += 1
            if not await _timed(call, index, samples):
                errors += 1

    await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    seconds = time.perf_counter() - started
    summary = summarize(samples, seconds) if samples else None
    return RunResult(summary, errors, len(samples) < count)


# ============================================================================================
# Ranked events, read as they are published
# ============================================================================================


class RankedTail:
    """A group-less consumer of the ranking topic, from its end when started: every `Ranked` record's
    subject (profile id) and correlation id, with the wall-clock instant this process read it."""

    type_prefix: str = RANKED_TYPE_PREFIX  # records whose `type` starts otherwise are passed over

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.on_ranked: Callable[[str, str | None, float], None] | None = None
        self.seen = 0
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        async with kafka_admin.admin_client(self.bootstrap) as admin:
            described = await admin.describe_topics([self.topic])
        partitions = [
            TopicPartition(self.topic, p["partition"])
            for t in described
            if not t["error_code"]
            for p in t["partitions"]
        ]
        if not partitions:
            raise RuntimeError(f"topic {self.topic} does not exist")
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False, fetch_max_wait_ms=20
        )
        await consumer.start()
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for partition in partitions:
            await consumer.position(partition)  # resolve "end" now, not at the first fetch
        self._consumer = consumer
        self._task = asyncio.create_task(self._run(consumer))

    async def _run(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            batches = await consumer.getmany(timeout_ms=50, max_records=5_000)
            received = time.time()
            for records in batches.values():
                for record in records:
                    self._record(record.value, received)

    def _record(self, value: bytes | None, received: float) -> None:
        if value is None:
            return
        try:
            body = orjson.loads(value)
        except orjson.JSONDecodeError:
            return
        if not isinstance(body, dict) or not str(body.get("type", "")).startswith(self.type_prefix):
            return
        self.seen += 1
        if self.on_ranked is not None:
            self.on_ranked(str(body.get("subject")), body.get("correlationid"), received)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            except Exception:  # the tail's own failure is reported through `failure()`
                pass
            self._task = None
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    def failure(self) -> BaseException | None:
        """The exception that ended the reading task, if it ended on its own."""
        if self._task is not None and self._task.done() and not self._task.cancelled():
            return self._task.exception()
        return None


# ============================================================================================
# Entities lent to one command at a time, until its event is read back
# ============================================================================================

Entity = TypeVar("Entity")


class InFlight(Generic[Entity]):
    """Entities (profiles, invitations) that each take one command at a time: an entity is lent to a
    command when it is sent and comes back once the command was accepted *and* its event was read
    back from Kafka, or at once when the command was refused.

    Giving it back on the answer alone loses measurements: the entity's next update can then be
    accepted before ranking has read the previous one, ranking applies both in one batch and publishes
    one `Ranked` for the profile (continuing the later correlation id), and the earlier update looks
    as if it never became visible. An entity whose event never comes stays lent (its command counts
    as not visible). An entity with a true `retired` attribute (e.g. an application that has landed)
    is not given back."""

    def __init__(self, entities: Iterable[Entity] = ()) -> None:
        self.free: deque[Entity] = deque(entities)
        self._lent: dict[str, Entity] = {}  # correlation id -> the entity its command went to
        self._answered: set[str] = set()
        self._seen: set[str] = set()

    def add(self, entities: Iterable[Entity]) -> None:
        self.free.extend(entities)

    @property
    def lent(self) -> int:
        return len(self._lent)

    def lend(self, correlation: str) -> Entity | None:
        """A free entity for the command `correlation`, or None when every entity is lent."""
        if not self.free:
            return None
        entity = self.free.popleft()
        self._lent[correlation] = entity
        return entity

    def refused(self, correlation: str) -> None:
        """The command was refused (or failed): its entity takes the next one straight away."""
        self._give_back(correlation)

    def accepted(self, correlation: str) -> None:
        if correlation in self._lent:
            self._answered.add(correlation)
            self._give_back_when_done(correlation)

    def seen(self, correlation: str) -> None:
        """The command's event was read back (it may be read before the command's answer)."""
        if correlation in self._lent:
            self._seen.add(correlation)
            self._give_back_when_done(correlation)

    def _give_back_when_done(self, correlation: str) -> None:
        if correlation in self._answered and correlation in self._seen:
            self._give_back(correlation)

    def _give_back(self, correlation: str) -> None:
        self._answered.discard(correlation)
        self._seen.discard(correlation)
        entity = self._lent.pop(correlation, None)
        if entity is not None and not getattr(entity, "retired", False):
            self.free.append(entity)


# ============================================================================================
# Profiles created through the profile service, then updated at a fixed rate
# ============================================================================================


@dataclass
class TrackedProfile:
    profile_id: str
    document: dict[str, Any]
    version: int


async def create_profiles(
    client: httpx.AsyncClient,
    profile_url: str,
    token: str,
    documents: Sequence[dict[str, Any]],
    tail: RankedTail,
    *,
    concurrency: int = 8,
    limit_s: float = 180.0,
) -> tuple[list[TrackedProfile], dict[str, Any]]:
    """Create and submit each document through the API; wait until ranking has ranked each one.

    Returns the profiles that entered the pool (ranked) and the figures of the setup.
    """
    headers = {"Authorization": f"Bearer {token}"}
    created: list[TrackedProfile] = []
    ranked: set[str] = set()
    failures: list[str] = []
    tail.on_ranked = lambda subject, _correlation, _at: ranked.add(subject)
    started = time.perf_counter()
    deadline = started + limit_s
    queue = deque(documents)

    async def worker() -> None:
        while queue and time.perf_counter() < deadline:
            document = queue.popleft()
            answer = await client.post(f"{profile_url}/v1/profiles", json=document, headers=headers)
            if answer.status_code != 201:
                failures.append(f"create {answer.status_code}: {answer.text[:200]}")
                continue
            profile_id = answer.json()["id"]
            submit = {**headers, "If-Match": answer.headers["ETag"]}
            answer = await client.post(f"{profile_url}/v1/profiles/{profile_id}/submit", headers=submit)
            if answer.status_code != 200:
                failures.append(f"submit {answer.status_code}: {answer.text[:200]}")
                continue
            version = int(answer.headers["ETag"].strip('"'))
            created.append(TrackedProfile(profile_id, document, version))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    submitted_s = time.perf_counter() - started
    ids = {p.profile_id for p in created}
    while not ids <= ranked and time.perf_counter() < deadline:
        if tail.failure() is not None:
            break
        await asyncio.sleep(0.1)
    tail.on_ranked = None
    in_pool = [p for p in created if p.profile_id in ranked]
    figures = {
        "requested": len(documents),
        "created_and_submitted": len(created),
        "ranked": len(in_pool),
        "submit_seconds": round(submitted_s, 3),
        "ranked_seconds": round(time.perf_counter() - started, 3),
        "failures": failures[:5],
        "failure_count": len(failures),
    }
    return in_pool, figures


@dataclass
class UpdateRun:
    planned: int
    sent: int = 0
    accepted: int = 0  # 200 answers
    rejected: list[str] = field(default_factory=list)  # non-200 answers (first few)
    rejected_count: int = 0
    skipped: int = 0  # no profile free (its previous update unanswered or not yet seen) at the send time
    late_sends: int = 0  # sent over 50 ms behind schedule (the client could not keep up)
    visible_ms: list[float] = field(default_factory=list)  # PUT sent -> Ranked read, per update
    put_ms: list[float] = field(default_factory=list)  # PUT sent -> answered
    after_put_ms: list[float] = field(default_factory=list)  # PUT answered -> Ranked read (may be < 0)
    not_visible: int = 0  # accepted, but no Ranked with its correlation id within the settle time
    send_seconds: float = 0.0
    tail_error: str | None = None
    # Per accepted update: (second of the run it was sent in, PUT answered ms, Ranked read ms or None).
    timeline: list[tuple[int, float, float | None]] = field(default_factory=list)

    def per_second(self) -> list[dict[str, float | int | None]]:
        """The run second by second (by send time): updates accepted, and the slowest PUT answer and
        Ranked read of the updates sent in it; where a tail came from, which a p99 does not say."""
        seconds: dict[int, list[tuple[float, float | None]]] = {}
        for second, put, visible in self.timeline:
            seconds.setdefault(second, []).append((put, visible))
        rows: list[dict[str, float | int | None]] = []
        for second in sorted(seconds):
            puts = [put for put, _ in seconds[second]]
            seen = [visible for _, visible in seconds[second] if visible is not None]
            rows.append({
                "second": second,
                "accepted": len(puts),
                "put_max_ms": round(max(puts), 1),
                "visible_max_ms": round(max(seen), 1) if seen else None,
            })  # fmt: skip
        return rows

    def as_dict(self, rate: float, duration_s: float) -> dict[str, Any]:
        figures: dict[str, Any] = {
            "rate_per_s": rate,
            "duration_s": duration_s,
            "planned": self.planned,
            "sent": self.sent,
            "accepted": self.accepted,
            "rejected": self.rejected_count,
            "rejected_examples": self.rejected[:5],
            "skipped": self.skipped,
            "late_sends": self.late_sends,
            "achieved_rate_per_s": round(self.sent / self.send_seconds, 1) if self.send_seconds else 0.0,
            "not_visible": self.not_visible,
            "tail_error": self.tail_error,
        }
        if self.visible_ms:
            figures["visible"] = summarize(self.visible_ms, self.send_seconds).as_dict()
        if self.put_ms:
            figures["put"] = summarize(self.put_ms, self.send_seconds).as_dict()
        if self.after_put_ms:
            figures["after_put"] = summarize(self.after_put_ms, self.send_seconds).as_dict()
        if self.timeline:
            figures["per_second"] = self.per_second()
        return figures


def toggled_sibling(document: dict[str, Any]) -> dict[str, Any]:
    """The document with `sibling_in_canada` flipped: 15 CRS points more or less, programs unchanged."""
    return {**document, "sibling_in_canada": not document["sibling_in_canada"]}


IN_FLIGHT: Final = 64  # commands in flight at most (connections), as a partner's client pool would cap them


def lean_client(
    url: str, slots: int, *, timeout_s: float = 30.0, headers: dict[str, str] | None = None
) -> tuple[LeanClient, str]:
    """A `LeanClient` on `url`'s host and port (plain http, loopback in the bench) keeping the answers'
    ETag, and the path its requests' paths go under (`url`'s own, without its last slash)."""
    parsed = httpx.URL(url)
    if parsed.scheme != "http" or parsed.port is None:
        raise ValueError(f"the lean client speaks plain http to an explicit port, not {url}")
    client = LeanClient(parsed.host, parsed.port, headers or {}, slots=slots, timeout_s=timeout_s,
                        keep_headers=("etag",))  # fmt: skip
    return client, parsed.path.rstrip("/")


def json_body(document: dict[str, Any]) -> bytes:
    return orjson.dumps(document)


async def measure_update_visibility(
    profile_url: str,
    token: str,
    profiles: Sequence[TrackedProfile],
    tail: RankedTail,
    *,
    rate: float,
    duration_s: float,
    settle_s: float = 20.0,
    in_flight: int = IN_FLIGHT,
    timeout_s: float = 30.0,
) -> UpdateRun:
    """Open-loop updates at `rate` per second for `duration_s`, each profile's next update only after
    its previous one was answered and its `Ranked` read (`InFlight`); then wait up to `settle_s` for
    the last Ranked events.

    The PUTs go over `in_flight` keep-alive connections of a `LeanClient` (64 in `make bench`, the
    client's limit); a PUT with none free waits its turn, in order, inside the timed span, as it would
    in a client's connection pool. An httpx client would measure the same latency at a cost in the
    bench's own CPU, on the same 2 cores as the services: its pool scans every queued request against
    every connection whenever one comes or goes (py-spy: ~8 ms of bench CPU per accepted update with
    the profile service saturated), and even one connection per client costs several hundred µs per
    request in its models and anyio."""
    offsets = send_offsets(rate, duration_s)
    auth = {"Authorization": f"Bearer {token}"}
    client, base = lean_client(profile_url, in_flight, timeout_s=timeout_s, headers=auth)
    run = UpdateRun(planned=len(offsets))
    idle: InFlight[TrackedProfile] = InFlight(profiles)
    sent_at: dict[str, float] = {}  # correlation id -> wall-clock send instant (accepted or in flight)
    visible: dict[str, float] = {}
    put_ms: dict[str, float] = {}  # accepted updates: PUT sent -> answered
    answered_ok: set[str] = set()
    second_of: dict[str, int] = {}  # accepted updates: the second of the run they were sent in

    def on_ranked(_subject: str, correlation: str | None, received: float) -> None:
        if correlation is not None and correlation in sent_at and correlation not in visible:
            visible[correlation] = (received - sent_at[correlation]) * 1000.0
            idle.seen(correlation)

    tail.on_ranked = on_ranked

    async def update(profile: TrackedProfile, correlation: str) -> None:
        document = toggled_sibling(profile.document)
        headers = {"If-Match": f'"{profile.version}"', "X-Correlation-Id": correlation}
        body = json_body(document)
        started = time.perf_counter()
        sent_at[correlation] = time.time()
        try:
            path = f"{base}/v1/profiles/{profile.profile_id}"
            answer = await client.request("PUT", path, body=body, headers=headers)
        except RequestFailed as exc:
            run.rejected_count += 1
            run.rejected.append(f"{exc.kind}: {exc}")
            sent_at.pop(correlation, None)
            idle.refused(correlation)
            return
        answered_ms = (time.perf_counter() - started) * 1000.0
        run.put_ms.append(answered_ms)
        if answer.status == 200:
            run.accepted += 1
            put_ms[correlation] = answered_ms
            second_of[correlation] = int(started - run_started)
            answered_ok.add(correlation)
            profile.document = document
            profile.version = int(answer.headers["etag"].strip('"'))
            idle.accepted(correlation)
        else:
            run.rejected_count += 1
            run.rejected.append(f"{answer.status}: {answer.body[:200].decode(errors='replace')}")
            sent_at.pop(correlation, None)
            idle.refused(correlation)

    tasks: set[asyncio.Task[None]] = set()
    started = run_started = time.perf_counter()
    try:
        for index, offset in enumerate(offsets):
            delay = started + offset - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -0.05:
                run.late_sends += 1
            correlation = f"bench-update-{index}-{uuid.uuid4().hex[:12]}"
            profile = idle.lend(correlation)
            if profile is None:
                run.skipped += 1
                continue
            task = asyncio.create_task(update(profile, correlation))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            run.sent += 1
        run.send_seconds = time.perf_counter() - started
        settle_deadline = time.perf_counter() + settle_s
        if tasks:
            await asyncio.wait(set(tasks), timeout=settle_s)
        while not answered_ok <= visible.keys() and time.perf_counter() < settle_deadline:
            if tail.failure() is not None:
                break
            await asyncio.sleep(0.05)
    finally:
        unfinished = list(tasks)
        for task in unfinished:
            task.cancel()
        await asyncio.gather(*unfinished, return_exceptions=True)
        await client.close()
        tail.on_ranked = None
    failure = tail.failure()
    run.tail_error = None if failure is None else repr(failure)
    run.visible_ms = [visible[c] for c in answered_ok if c in visible]
    run.after_put_ms = [visible[c] - put_ms[c] for c in answered_ok if c in visible]
    run.timeline = [(second_of[c], put_ms[c], visible.get(c)) for c in answered_ok]
    run.not_visible = len(answered_ok) - len(run.visible_ms)
    return run


# ============================================================================================
# A PUT on a long history against one on a short one (snapshots keep them alike)
# ============================================================================================


async def measure_history_cost(
    client: httpx.AsyncClient,
    profile_url: str,
    token: str,
    document: dict[str, Any],
    *,
    history: int = 1_000,
    samples: int = 100,
    block: int = 10,
    limit_s: float = 240.0,
    server_cpu_s: Callable[[], float | None] = lambda: None,
) -> dict[str, Any]:
    """Sequential PUTs: `samples` each on a fresh profile (1 prior event: its creation), and `samples`
    on one profile after `history` PUTs on it. Returns both latency summaries and p50(long) /
    p50(short), and with `server_cpu_s` (the profile service's CPU seconds so far) its CPU per PUT in
    each case.

    The two kinds alternate in blocks of `block` PUTs once the history is built, so whatever else the
    machine or the service does meanwhile (a consumer catching up, autovacuum after the runs before)
    falls on both alike: timed one after the other, a background spell during the second half alone
    read as a 1.55x dearer long history."""
    headers = {"Authorization": f"Bearer {token}"}
    deadline = time.perf_counter() + limit_s

    async def create() -> tuple[str, int]:
        answer = await client.post(f"{profile_url}/v1/profiles", json=document, headers=headers)
        if answer.status_code != 201:
            raise RuntimeError(f"create {answer.status_code}: {answer.text[:200]}")
        return answer.json()["id"], int(answer.headers["ETag"].strip('"'))

    async def put(profile_id: str, version: int, flip: bool) -> tuple[int, float]:
        body = toggled_sibling(document) if flip else document
        started = time.perf_counter()
        answer = await client.put(
            f"{profile_url}/v1/profiles/{profile_id}",
            json=body,
            headers={**headers, "If-Match": f'"{version}"'},
        )
        elapsed = (time.perf_counter() - started) * 1000.0
        if answer.status_code != 200:
            raise RuntimeError(f"PUT {answer.status_code}: {answer.text[:200]}")
        return int(answer.headers["ETag"].strip('"')), elapsed

    fresh = [await create() for _ in range(samples)]
    long_id, version = await create()
    for n in range(history):
        if time.perf_counter() > deadline:
            raise RuntimeError(f"building the history took over {limit_s:.0f} s ({n} of {history} PUTs)")
        version, _ = await put(long_id, version, n % 2 == 0)
    short: list[float] = []
    long: list[float] = []
    cpu: dict[str, float | None] = {"short": 0.0, "long": 0.0}

    def add_cpu(kind: str, before: float | None) -> None:
        after, spent = server_cpu_s(), cpu[kind]
        cpu[kind] = None if before is None or after is None or spent is None else spent + after - before

    for start in range(0, samples, block):
        before = server_cpu_s()
        for profile_id, fresh_version in fresh[start : start + block]:
            short.append((await put(profile_id, fresh_version, True))[1])
        add_cpu("short", before)
        before = server_cpu_s()
        for _ in range(min(block, samples - start)):
            version, elapsed = await put(long_id, version, (history + len(long)) % 2 == 0)
            long.append(elapsed)
        add_cpu("long", before)
    cpu_short, cpu_long = (_per_put(0.0, cpu[kind], samples) for kind in ("short", "long"))
    short_summary, long_summary = summarize(short, 1.0), summarize(long, 1.0)
    return {
        "history": history,
        "samples": samples,
        "short": short_summary.as_dict(),
        "long": long_summary.as_dict(),
        "ratio_p50": ratio(long_summary.p50_ms, short_summary.p50_ms),
        "server_cpu_ms_per_put_short": cpu_short,
        "server_cpu_ms_per_put_long": cpu_long,
        "ratio_cpu": ratio(cpu_long, cpu_short),
    }


def _per_put(before: float | None, after: float | None, count: int) -> float | None:
    if before is None or after is None or count <= 0:
        return None
    return round((after - before) / count * 1000.0, 3)


# ============================================================================================
# Candidate reads in a process of their own (while the update run loads this one)
# ============================================================================================


@dataclass(frozen=True)
class ReadsPlan:
    """GET candidate from each client of `clients` in turn ("lean": `bench.leanhttp`, "httpx": an
    httpx AsyncClient), sequentially for `part_s`, then `concurrency` in flight for `part_s`, after
    `lead_s` (each part also bounded by `count` requests).

    `expected[i]` is `[crs, submitted_at]` of `ids[i]` (from the pool's rows): an answer whose body
    does not carry them is an error (the answer has no profile id; the CRS and the microsecond
    submission instant together tell the candidate asked for from any other). `server_pid`: the
    ranking process, whose CPU per request is read from /proc for each part."""

    url: str  # the ranking service's base URL
    token: str
    ids: list[str]
    count: int
    concurrency: int
    lead_s: float
    part_s: float
    expected: list[tuple[int, str]] | None = None
    clients: tuple[str, ...] = ("lean", "httpx")
    server_pid: int | None = None
    warmup: int = 0  # sequential requests of each client before its parts, not counted


CANDIDATE_PREFIX: Final = "/v1/pool/candidates/"


def candidate_check(ids: Sequence[str], expected: Sequence[tuple[int, str]]) -> Callable[[str, bytes], bool]:
    """Whether a GET candidate answer's body is the candidate of its path: its `crs` and
    `submitted_at` (compared as instants) are the ones expected of that id."""
    wanted = {
        pid: (int(crs), datetime.fromisoformat(at)) for pid, (crs, at) in zip(ids, expected, strict=True)
    }

    def check(path: str, body: bytes) -> bool:
        want = wanted.get(path[len(CANDIDATE_PREFIX) :]) if path.startswith(CANDIDATE_PREFIX) else None
        if want is None:
            return False
        try:
            answer = orjson.loads(body)
            return bool(
                answer["crs"] == want[0] and datetime.fromisoformat(answer["submitted_at"]) == want[1]
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return False

    return check


def process_cpu_times(pid: int) -> tuple[float, float]:
    """User and system CPU seconds process `pid` has used so far (Linux /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def process_cpu_s(pid: int | None) -> float | None:
    """CPU (user + system) process `pid` has used so far, from /proc; None when unreadable."""
    if pid is None:
        return None
    try:
        return sum(process_cpu_times(pid))
    except (OSError, ValueError, IndexError):
        return None


def _us_per(before: float | None, after: float | None, count: int) -> float | None:
    if before is None or after is None or count <= 0:
        return None
    return round((after - before) / count * 1e6, 1)


async def _timed_part(
    run: Callable[[], Awaitable[RunResult]], server_pid: int | None
) -> tuple[RunResult, dict[str, Any]]:
    """One part of the reads, with this process's CPU (the client's) and the server's per request."""
    load_before = [round(x, 2) for x in os.getloadavg()]
    client_before, server_before = time.process_time(), process_cpu_s(server_pid)
    result = await run()
    client_after, server_after = time.process_time(), process_cpu_s(server_pid)
    done = result.summary.count if result.summary else 0
    extra: dict[str, Any] = {
        "loadavg_before": load_before,
        "client_cpu_us_per_request": _us_per(client_before, client_after, done),
    }
    if server_pid is not None:
        extra["server_cpu_us_per_request"] = _us_per(server_before, server_after, done)
    return result, extra


async def measure_reads(plan: ReadsPlan) -> dict[str, Any]:
    """The reads of `plan` from this process: for each client, a sequential run then a concurrent
    one, each with its client CPU (this process's: run it where nothing else runs) and server CPU per
    request. `{"lean": {"sequential": ..., "concurrent": ...}, "httpx": {...}}`."""
    headers = {"Authorization": f"Bearer {plan.token}"}
    ids = plan.ids
    check = candidate_check(ids, plan.expected) if plan.expected is not None else None
    url = httpx.URL(plan.url)
    host, port = url.host, url.port or 80
    paths = [f"{CANDIDATE_PREFIX}{profile_id}" for profile_id in ids]
    await asyncio.sleep(plan.lead_s)
    figures: dict[str, Any] = {}
    for kind in plan.clients:
        if kind == "lean":
            parts = await _lean_parts(plan, host, port, headers, paths, check)
        elif kind == "httpx":
            parts = await _httpx_parts(plan, headers, paths, check)
        else:
            raise ValueError(f"unknown client {kind!r}")
        figures[kind] = parts
    return figures


async def _lean_parts(
    plan: ReadsPlan,
    host: str,
    port: int,
    headers: dict[str, str],
    paths: Sequence[str],
    check: Callable[[str, bytes], bool] | None,
) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    if plan.warmup:
        warm = LeanReads(host, port, headers, slots=1, check=check)
        await run_sequential(lambda i: warm.get(paths[i % len(paths)]), plan.warmup, limit_s=plan.part_s)
        await warm.close()
    for part, slots in (("sequential", 1), ("concurrent", plan.concurrency)):
        client = LeanReads(host, port, headers, slots=slots, check=check)  # fresh connections per part
        result, extra = await _timed_part(_lean_run(client, paths, plan, slots), plan.server_pid)
        await client.close()
        if part == "concurrent":
            extra["concurrency"] = slots
        figures[part] = {**result.as_dict(), **extra, "client": "lean", **client.figures()}
    return figures


def _lean_run(
    client: LeanReads, paths: Sequence[str], plan: ReadsPlan, slots: int
) -> Callable[[], Awaitable[RunResult]]:
    def get(index: int) -> Awaitable[bool]:
        return client.get(paths[index % len(paths)])

    if slots == 1:
        return lambda: run_sequential(get, plan.count, limit_s=plan.part_s)
    return lambda: run_concurrent(get, plan.count, slots, limit_s=plan.part_s)


async def _httpx_parts(
    plan: ReadsPlan,
    headers: dict[str, str],
    paths: Sequence[str],
    check: Callable[[str, bytes], bool] | None,
) -> dict[str, Any]:
    connections = 2 * plan.concurrency
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    figures: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=plan.url, limits=limits, timeout=60, trust_env=False) as client:

        async def get(index: int) -> bool:
            path = paths[index % len(paths)]
            answer = await client.get(path, headers=headers)
            return answer.status_code == 200 and (check is None or check(path, answer.content))

        if plan.warmup:
            await run_sequential(get, plan.warmup, limit_s=plan.part_s)
        result, extra = await _timed_part(
            lambda: run_sequential(get, plan.count, limit_s=plan.part_s), plan.server_pid
        )
        figures["sequential"] = {**result.as_dict(), **extra, "client": "httpx"}
        result, extra = await _timed_part(
            lambda: run_concurrent(get, plan.count, plan.concurrency, limit_s=plan.part_s), plan.server_pid
        )
        figures["concurrent"] = {
            **result.as_dict(),
            **extra,
            "client": "httpx",
            "concurrency": plan.concurrency,
        }
    return figures


async def measure_reads_apart(plan: ReadsPlan, limit_s: float) -> dict[str, Any]:
    """`measure_reads` in a child process (`python -m bench.latency reads`, the plan on stdin, the
    figures on stdout): the bench's own loop is busy sending updates and reading `Ranked` events, and
    a read timed there would include the time the bench made it wait."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.latency", "reads",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(child.communicate(orjson.dumps(asdict(plan))), limit_s)
    except TimeoutError:
        child.kill()
        await child.wait()
        raise
    if child.returncode != 0:
        raise RuntimeError(f"the reads process failed ({child.returncode}): {err.decode()[-2000:]}")
    figures: dict[str, Any] = orjson.loads(out)
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args != ["reads"]:
        print("usage: python -m bench.latency reads  (a ReadsPlan as JSON on stdin)", file=sys.stderr)
        return 2
    plan = ReadsPlan(**orjson.loads(sys.stdin.buffer.read()))
    sys.stdout.buffer.write(orjson.dumps(asyncio.run(measure_reads(plan))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
