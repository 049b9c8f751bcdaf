"""Faults in the cluster (issue 11 part 3): a journey load through the front door while one Kafka broker
and one instance of every service are killed with SIGKILL, then a rolling restart of every instance.

A private cluster (`deploy/local/cluster.sh`): three Kafka nodes, two instances of every service, HAProxy
in front, on ports of its own: front door `EE_E2E_FAULTS_PORT_BASE` (21000), instances base + 101.. and
base + 201.., Kafka `EE_E2E_FAULTS_KAFKA_PORT` (base + 392: 21392/21394/21396, controllers one above),
data and logs in `.local/cluster-faults` (the brokers' data wiped first and last), databases
`<service>_faults<base>`, a fresh topic prefix. Everything it started is stopped at the end by the
scripts (by pid), also when the test fails.

The load: writers create profiles, submit them and update them (If-Match and an Idempotency-Key on every
command), all through the front door; a 503 is retried with the same Idempotency-Key (the documented
retry contract). Phases:

1. `before`: steady load;
2. `kill`: `kill -9` of Kafka node 2 and of instance a of every service; requests may fail only with a
   retryable 503 (problem+json with a Retry-After), never another status and never a connection closed
   without an answer or any other connection error: a request the killed instance held (read or not)
   is resent by HAProxy to the other instance (it buffers every request whole, so each can be resent;
   see shared/gateway.py); the killed processes are started again (`cluster.sh recover`) until
   `cluster.sh status` and every instance's /readyz say ready;
   meanwhile ops hold a general round (before the kill a province nominated NOMINATED new profiles,
   +600: the top of the pool) and each invited candidate applies, through the front door with the same
   retry rule;
3. `rolling`: `cluster.sh rolling-restart` (one instance at a time: drain in HAProxy, SIGTERM, start,
   /readyz, UP in HAProxy, then the next) during the load: no 503 and no other 5xx at all.

Afterwards nothing accepted is lost or applied twice: each accepted command's event is in the profile
event store once, on Kafka once (by event id), the ranking projection holds every profile's last update,
the round, each nomination, invitation and application are on Kafka once, and both ranking instances'
pool fingerprints equal a rebuild from the log (the invited out of the pool). Figures (requests sent and
accepted per phase, 503s, kill to all ready, rolling restart time, events checked) go to
`.local/cluster-faults/figures.json` and pytest's output.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Final

import asyncpg
import httpx
import pytest
from e2e_documents import step_of, variant, varied_documents
from e2e_harness import (
    CLUSTER_SH,
    ROOT,
    SERVICES,
    check_log,
    consumers_behind,
    end_offsets,
    is_problem,
    poll,
    prepare_private_cluster,
    read_topics,
    report_figures,
    run_script,
    script,
)

from ranking_service.adapters.database import drop_database
from ranking_service.rebuild import rebuild, rebuild_settings
from ranking_service.settings import RankingSettings
from shared.auth import mint_token
from shared.clock import Clock
from shared.events.catalogue import APPLICATIONS_TOPIC, DRAWS_TOPIC, EVENT_TOPICS, PROFILE_TOPIC
from shared.gateway import load_table
from shared.haproxy_admin import haproxy_command

pytestmark = pytest.mark.infra

Caller = tuple[str, ...]  # (subject, role) or (subject, role, province) of a token
TABLE: Final = load_table()
RUN_DIR: Final = ROOT / ".local" / "cluster-faults"
FIGURES: Final = RUN_DIR / "figures.json"
SECRET: Final = "faults-" + "s3cret-" * 6
PARTNER: Final = ("partner-cluster-faults", "partner")
OPS: Final = ("ops-cluster-faults", "ops")
OFFICER: Final = ("officer-cluster-faults", "officer")
NOMINATED: Final = 3  # journey profiles a province nominates (+600): the top of the pool, invited when killed
PROVINCE: Final = "ON"
WRITERS: Final = 6
FIRST_PROFILES: Final = 4  # per writer, created before the faults; more are created during them
NEW_PROFILE_EVERY: Final = 8  # every 8th command of a writer creates and submits a new profile
MAX_COMMANDS: Final = 30000  # the load is bounded by count as well as by the phases' time (~10,000 seen)
KILLED_NODE: Final = 2
KILLED_INSTANCE: Final = "a"
KILL_PHASE_S: Final = 10.0  # load on the broken cluster before the killed processes are started again
CONSUMED: Final = (PROFILE_TOPIC, DRAWS_TOPIC, APPLICATIONS_TOPIC)


def port_base() -> int:
    return int(os.environ.get("EE_E2E_FAULTS_PORT_BASE") or 21000)


def kafka_port() -> int:
    return int(os.environ.get("EE_E2E_FAULTS_KAFKA_PORT") or port_base() + 392)


DB_SUFFIX: Final = f"_faults{port_base()}"


@dataclass
class Cluster:
    env: dict[str, str]
    prefix: str
    bootstrap: str
    start_s: float

    @property
    def front(self) -> str:
        return f"http://127.0.0.1:{port_base()}"

    def instance_url(self, service: str, instance: str) -> str:
        offset = next(e.offset for e in TABLE if e.name == service)
        return f"http://127.0.0.1:{port_base() + (100 if instance == 'a' else 200) + offset}"

    def dsn(self, service: str) -> str:
        return f"postgresql://ee:ee@127.0.0.1:5432/{service}{DB_SUFFIX}"

    async def fetch(self, service: str, query: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.dsn(service), timeout=10)
        try:
            return list(await conn.fetch(query, *args))
        finally:
            await conn.close()


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    # No EE_KAFKA_START_TIMEOUT: kafka.sh's default waits as long as the node killed with -9 makes
    # progress recovering its logs (minutes on a loaded machine), up to EE_KAFKA_START_LIMIT.
    private = prepare_private_cluster(
        "faults",
        secret=SECRET,
        port_base=port_base(),
        run_dir=RUN_DIR,
        db_suffix=DB_SUFFIX,
        kafka_port=kafka_port(),
        EE_SERVICE_READY_TIMEOUT="180",  # two cores shared with other runs: starts can be slow
    )
    prefix, env, bootstrap = private.prefix, private.env, private.bootstrap
    started = time.monotonic()
    try:
        run_script(CLUSTER_SH, "start", env=env, timeout=900)
        yield Cluster(env, prefix, bootstrap, round(time.monotonic() - started, 2))
    finally:
        run_script(CLUSTER_SH, "wipe", env=env, timeout=300)  # stop (by pid), then the brokers' data


# --- the load -------------------------------------------------------------------------------------------


@dataclass
class Tracked:
    profile_id: str
    document: dict[str, Any]
    version: int
    status: str  # in_pool, or removed_from_pool (an update made it eligible for no program)
    steps: list[int] = field(default_factory=list)  # accepted updates, in order


@dataclass
class Load:
    """Journey commands through the front door, and what became of each, per phase."""

    cluster: Cluster
    client: httpx.AsyncClient
    documents: Iterator[dict[str, Any]]
    phase: str = "setup"
    commands: int = 0
    profiles: list[Tracked] = field(default_factory=list)
    sent: Counter[str] = field(default_factory=Counter)  # commands (a retry is the same command)
    accepted: Counter[str] = field(default_factory=Counter)
    attempts: Counter[str] = field(default_factory=Counter)  # HTTP requests, retries included
    statuses: Counter[str] = field(default_factory=Counter)  # "phase:METHOD status"
    tolerated: Counter[str] = field(default_factory=Counter)  # reads of what is not there yet (404)
    transport_errors: Counter[str] = field(default_factory=Counter)
    refused: list[str] = field(default_factory=list)  # a final answer that is not a success
    not_problem_json: list[str] = field(default_factory=list)
    retry_after_missing: Counter[str] = field(default_factory=Counter)
    created: set[str] = field(default_factory=set)
    submitted: set[str] = field(default_factory=set)

    def headers(self, key: str, if_match: int | None = None, caller: Caller = PARTNER) -> dict[str, str]:
        token = mint_token(SECRET, caller[0], caller[1], caller[2] if len(caller) > 2 else None,
                           ttl_seconds=3600)  # fmt: skip
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": key}
        if if_match is not None:
            headers["If-Match"] = f'"{if_match}"'
        return headers

    async def command(self, method: str, path: str, ok: int, *, json_body: Any = None,
                      if_match: int | None = None, caller: Caller = PARTNER,
                      tolerate: tuple[int, ...] = ()) -> httpx.Response | None:  # fmt: skip
        """One command (or read), sent again with the same Idempotency-Key while the answer is a 503 or
        the connection fails; its final answer (None: refused with something else, recorded; a status
        in `tolerate` is returned as it is, not a refusal: a read of what is not there yet)."""
        phase = self.phase
        counted = method != "GET"  # commands are counted; reads (the journey's) only by their statuses
        self.sent[phase] += counted
        key = str(uuid.uuid4())
        deadline = time.monotonic() + 180
        while True:
            try:
                response = await self.client.request(
                    method, self.cluster.front + path, json=json_body,
                    headers=self.headers(key, if_match, caller), timeout=30,
                )  # fmt: skip
            except httpx.TransportError as exc:
                response = None
                failure = exc
            now_phase = self.phase  # the phase when the answer came: a kill ends what it interrupts
            self.attempts[now_phase] += 1
            if response is None:
                self.transport_errors[f"{now_phase}:{method} {type(failure).__name__}"] += 1
            if response is not None and response.status_code in tolerate:
                self.tolerated[f"{now_phase}:{method} {response.status_code}"] += 1
                return response
            if response is not None:
                self.statuses[f"{now_phase}:{method} {response.status_code}"] += 1
                if response.status_code == ok:
                    self.accepted[phase] += counted
                    return response
                if not is_problem(response):
                    self.not_problem_json.append(
                        f"{method} {path} {response.status_code} {response.text[:200]}"
                    )
                if response.status_code != 503:
                    self.refused.append(
                        f"{now_phase}: {method} {path} {response.status_code} {response.text[:300]}"
                    )
                    return None
                if "retry-after" not in response.headers:
                    self.retry_after_missing[now_phase] += 1
            if time.monotonic() > deadline:
                raise AssertionError(f"{method} {path}: no answer but 503 or a failed connection for 180 s")
            await asyncio.sleep(0.25)  # Retry-After says 5 s at most; the test keeps the load going

    async def new_profile(self) -> Tracked | None:
        document = next(self.documents)
        created = await self.command("POST", "/v1/profiles", 201, json_body=document)
        if created is None:
            return None
        profile_id = created.json()["id"]
        self.created.add(profile_id)
        version = int(created.json()["version"])
        submitted = await self.command("POST", f"/v1/profiles/{profile_id}/submit", 200, if_match=version)
        if submitted is None:
            return None
        self.submitted.add(profile_id)
        tracked = Tracked(profile_id, document, int(submitted.json()["version"]), submitted.json()["status"])
        self.profiles.append(tracked)
        return tracked

    async def update(self, tracked: Tracked) -> None:
        step = (tracked.steps[-1] if tracked.steps else 0) + 1
        response = await self.command(
            "PUT", f"/v1/profiles/{tracked.profile_id}", 200, json_body=variant(tracked.document, step),
            if_match=tracked.version,
        )  # fmt: skip
        if response is not None:
            tracked.version = int(response.json()["version"])
            tracked.status = response.json()["status"]
            tracked.steps.append(step)

    async def run(self, stop: asyncio.Event) -> None:
        async def writer(index: int) -> None:
            mine: list[Tracked] = []
            for _ in range(FIRST_PROFILES):
                tracked = await self.new_profile()
                assert tracked is not None, self.refused[-3:]
                mine.append(tracked)
            turn = 0
            while not stop.is_set() and self.commands < MAX_COMMANDS:
                self.commands += 1
                turn += 1
                if turn % NEW_PROFILE_EVERY == 0:
                    tracked = await self.new_profile()
                    if tracked is not None:
                        mine.append(tracked)
                else:
                    await self.update(mine[turn % len(mine)])
                await asyncio.sleep(0.1)  # paced: the cores are shared with the cluster

        await asyncio.gather(*(writer(i) for i in range(WRITERS)))

    def bad_statuses(self, phase: str, allowed: set[int]) -> dict[str, int]:
        return {
            k: v for k, v in self.statuses.items()
            if k.startswith(f"{phase}:") and int(k.rsplit(" ", 1)[1]) not in allowed
        }  # fmt: skip

    def count(self, phase: str, status: int) -> int:
        return sum(
            v for k, v in self.statuses.items() if k.startswith(f"{phase}:") and k.endswith(f" {status}")
        )


@dataclass
class Journey:
    """A bounded journey beside the profile load: before the faults a province nominates NOMINATED new
    profiles (+600: the top of the pool); as the instances are killed, ops hold a general round of that
    size and each invited candidate applies, all through the front door with the load's retry rule."""

    load: Load
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)  # profile id -> document
    round_id: str | None = None
    invited: dict[str, str] = field(default_factory=dict)  # profile id -> invitation id
    applications: dict[str, str] = field(default_factory=dict)  # profile id -> application id
    timings: dict[str, float] = field(default_factory=dict)

    async def prepare(self) -> None:
        province = (f"pnp-{PROVINCE.lower()}", "province", PROVINCE)
        for _ in range(NOMINATED):
            document = next(self.load.documents)
            created = await self.load.command("POST", "/v1/profiles", 201, json_body=document)
            assert created is not None, self.load.refused[-3:]
            profile_id = created.json()["id"]
            submitted = await self.load.command(
                "POST", f"/v1/profiles/{profile_id}/submit", 200, if_match=int(created.json()["version"])
            )
            assert submitted is not None, self.load.refused[-3:]
            nominated = await self.load.command(
                "POST", f"/v1/provinces/{PROVINCE}/nominations", 201, json_body={"profile_id": profile_id},
                caller=province,
            )  # fmt: skip
            assert nominated is not None, self.load.refused[-3:]
            self.documents[profile_id] = document

    async def on_top(self) -> bool:
        top = await self.load.command("GET", f"/v1/pool/top?n={NOMINATED}", 200, caller=OPS)
        assert top is not None, self.load.refused[-3:]
        return {c["profile_id"] for c in top.json()["candidates"]} == set(self.documents)

    async def round_and_applications(self) -> None:
        started = time.monotonic()
        held = await self.load.command(
            "POST", "/v1/draws", 201, json_body={"type": "general", "size": NOMINATED}, caller=OPS
        )
        assert held is not None, self.load.refused[-3:]
        self.round_id = held.json()["id"]
        path = f"/v1/draws/{self.round_id}/invitations?limit=100"
        page = await self.load.command("GET", path, 200, caller=OPS)
        assert page is not None, self.load.refused[-3:]
        self.invited = {item["profile_id"]: item["invitation_id"] for item in page.json()["items"]}
        self.timings["round_held_s"] = round(time.monotonic() - started, 2)
        assert set(self.invited) == set(self.documents), (self.invited, list(self.documents))
        await asyncio.gather(*(self.apply(profile_id) for profile_id in self.invited))
        self.timings["all_applied_s"] = round(time.monotonic() - started, 2)

    async def apply(self, profile_id: str) -> None:
        invitation_id = self.invited[profile_id]

        async def open_invitation() -> dict[str, Any] | None:
            got = await self.load.command("GET", f"/v1/invitations/{invitation_id}", 200, tolerate=(404,))
            assert got is not None, self.load.refused[-3:]
            body: dict[str, Any] = got.json()
            return body if got.status_code == 200 and body["state"] == "open" else None

        invitation = await poll(open_invitation, 150, f"invitation {invitation_id} open", interval=0.5)
        today = date.today()
        document = self.documents[profile_id]
        application = {
            "invitation_id": invitation_id,
            "passport": {"number": f"P{profile_id[:8].upper()}", "country": document["citizenship"],
                         "expiry": (today + timedelta(days=5 * 365)).isoformat()},
            "medical_exam_date": (today - timedelta(days=20)).isoformat(),
            "police_certificates": True,
            "proof_of_funds_cad": 60_000,
        }  # fmt: skip
        applied = await self.load.command(
            "POST", "/v1/applications", 201, json_body=application, if_match=int(invitation["version"])
        )
        assert applied is not None, self.load.refused[-3:]
        self.applications[profile_id] = applied.json()["application_id"]


# --- faults ---------------------------------------------------------------------------------------------


def kill9(pid_file: Path, *words: str) -> int:
    pid = int(pid_file.read_text().strip())
    command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    assert all(word in command for word in words), f"pid {pid} of {pid_file} is not ours: {command}"
    os.kill(pid, signal.SIGKILL)
    return pid


async def gone(pid: int) -> None:
    async def dead() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    await poll(dead, 20, f"pid {pid} to exit after SIGKILL", interval=0.05)


def haproxy_retries(cluster: Cluster) -> dict[str, int]:
    """HAProxy's counters over the service backends (cumulative since it started): connection
    attempts retried (`wretr`), requests sent again to another instance (`wredis`), connection and
    response errors (`econ`, `eresp`)."""
    csv_text = haproxy_command(str(RUN_DIR / "run" / "haproxy.sock"), "show stat")
    lines = csv_text.strip().splitlines()
    columns = lines[0][2:].split(",")
    totals = Counter[str]()
    for line in lines[1:]:
        row = dict(zip(columns, line.split(","), strict=False))
        if row["svname"] == "BACKEND" and row["pxname"] not in ("be_docs", "be_not_found"):
            for name in ("wretr", "wredis", "econ", "eresp"):
                totals[name] += int(row.get(name) or 0)
    return dict(totals)


async def everything_ready(cluster: Cluster, client: httpx.AsyncClient) -> bool:
    """`cluster.sh status` exits 0 and every instance's /readyz answers 200."""
    done = await asyncio.create_subprocess_exec(
        str(CLUSTER_SH), "status", cwd=ROOT, env=cluster.env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    if await done.wait() != 0:
        return False

    async def code(url: str) -> int:
        try:
            return (await client.get(url + "/readyz", timeout=5)).status_code
        except httpx.TransportError:
            return 0

    urls = [cluster.instance_url(e.name, i) for e in TABLE for i in ("a", "b")]
    return all(c == 200 for c in await asyncio.gather(*(code(url) for url in urls)))


# --- checks ---------------------------------------------------------------------------------------------


async def settled(cluster: Cluster, timeout: float = 180) -> float:  # noqa: ASYNC109
    """Every outbox published and every consumer's stored position at the end of what it reads."""
    started = time.monotonic()

    async def outboxes_empty() -> bool:
        query = "SELECT count(*) AS n FROM outbox WHERE published_at IS NULL"
        counts = [int((await cluster.fetch(service, query))[0]["n"]) for service in SERVICES]
        return not any(counts)

    async def consumers_at_the_end() -> bool:
        ends = await end_offsets((cluster.prefix + t for t in CONSUMED), cluster.bootstrap)
        return not await consumers_behind(cluster.fetch, SERVICES, ends)

    await poll(outboxes_empty, timeout, "every outbox published", interval=0.5)
    await poll(consumers_at_the_end, timeout, "every consumer at the end of its partitions", interval=0.5)
    await poll(outboxes_empty, timeout, "every outbox published again", interval=0.5)
    return time.monotonic() - started


async def check_exactly_once(cluster: Cluster, load: Load, journey: Journey) -> dict[str, Any]:
    """Each accepted command's event once in the event store and once on Kafka (by event id); ranking's
    projection holds each profile's last accepted update; the journey's round, invitations and
    applications once each on Kafka. Returns what was counted."""
    rows = await cluster.fetch(
        "profile",
        "SELECT event_id, stream_id, type, envelope->'data'->'document'->>'settlement_funds_cad' AS funds "
        "FROM event_store WHERE type LIKE '%.ProfileCreated.%' OR type LIKE '%.ProfileSubmitted.%' "
        "OR type LIKE '%.ProfileUpdated.%' ORDER BY position",
    )
    stored: dict[str, Counter[str]] = {}
    stored_steps: dict[str, list[int]] = {}
    store_ids = set()
    for row in rows:
        name = row["type"].split(".")[-2]
        stored.setdefault(row["stream_id"], Counter())[name] += 1
        store_ids.add(str(row["event_id"]))
        if name == "ProfileUpdated":
            stored_steps.setdefault(row["stream_id"], []).append(int(row["funds"]) - 100_000)

    report = check_log(
        await read_topics((cluster.prefix + t for t in EVENT_TOPICS), cluster.bootstrap), cluster.prefix
    )
    assert not report.problems(), report.problems()
    on_kafka: dict[str, Counter[str]] = {}
    kafka_steps: dict[str, list[int]] = {}
    kafka_ids = set()
    for event in report.events:  # check_log keeps the first record of each event id
        key = event.key or ""
        if event.name in ("ProfileCreated", "ProfileSubmitted", "ProfileUpdated"):
            on_kafka.setdefault(key, Counter())[event.name] += 1
            kafka_ids.add(event.envelope.id)
        if event.name == "ProfileUpdated":
            kafka_steps.setdefault(key, []).append(step_of(event.data["document"]))

    problems = []
    for profile_id in load.created:
        want = Counter({"ProfileCreated": 1})
        if profile_id in load.submitted:
            want["ProfileSubmitted"] = 1
        tracked = next((t for t in load.profiles if t.profile_id == profile_id), None)
        if tracked is not None and tracked.steps:
            want["ProfileUpdated"] = len(tracked.steps)
        if stored.get(profile_id, Counter()) != want:
            problems.append(
                f"{profile_id}: event store {dict(stored.get(profile_id, {}))}, accepted {dict(want)}"
            )
        if on_kafka.get(profile_id, Counter()) != want:
            problems.append(
                f"{profile_id}: Kafka {dict(on_kafka.get(profile_id, {}))}, accepted {dict(want)}"
            )
        steps = tracked.steps if tracked is not None else []
        if stored_steps.get(profile_id, []) != steps or sorted(kafka_steps.get(profile_id, [])) != steps:
            problems.append(
                f"{profile_id}: accepted steps {steps[-5:]}, stored {stored_steps.get(profile_id, [])[-5:]}"
            )
    # The journey: one round, and for each nominated profile one nomination, one invitation and one
    # application (distinct events, by id: a record published twice is one event, two events are two).
    journey_events: dict[str, Counter[str]] = {}
    for event in report.events:
        if event.key in journey.documents or event.key == journey.round_id:
            journey_events.setdefault(event.key or "", Counter())[event.name] += 1
    if journey.round_id is not None:
        held = journey_events.get(journey.round_id, Counter())["RoundOfInvitationsHeld"]
        if held != 1:
            problems.append(f"round {journey.round_id}: RoundOfInvitationsHeld {held} times on Kafka")
    once = ("ProfileCreated", "ProfileSubmitted", "NominationIssued", "Invited", "Applied")
    for profile_id in journey.documents:
        counted = journey_events.get(profile_id, Counter())
        if any(counted[name] != 1 for name in once):
            problems.append(f"journey {profile_id}: {dict(counted)}, each of {once} once expected")
    if store_ids != kafka_ids:
        problems.append(
            f"event ids: {len(store_ids - kafka_ids)} stored, not on Kafka; "
            f"{len(kafka_ids - store_ids)} on Kafka, not stored"
        )

    projection = {
        row["profile_id"]: row for row in await cluster.fetch(
            "ranking",
            "SELECT profile_id, version, document FROM ranking_profiles WHERE profile_id = ANY($1)",
            [t.profile_id for t in load.profiles],
        )
    }  # fmt: skip
    for tracked in load.profiles:
        row = projection.get(tracked.profile_id)
        document = json.loads(row["document"]) if row is not None else {}
        last = tracked.steps[-1] if tracked.steps else None
        if row is None or row["version"] != tracked.version or (last and step_of(document) != last):
            problems.append(
                f"{tracked.profile_id}: ranking holds version {row and row['version']}, "
                f"accepted {tracked.version}"
            )
    assert not problems, f"{len(problems)} problems, e.g. {problems[:5]}"
    return {
        "profiles_created": len(load.created),
        "profiles_submitted": len(load.submitted),
        "updates_accepted": sum(len(t.steps) for t in load.profiles),
        "events_in_store_checked": len(rows),
        "events_on_kafka_checked": len(kafka_ids),
        "records_on_kafka": report.records,
        "duplicate_records": report.duplicates,
        "profiles_in_ranking_checked": len(projection),
        "journey_profiles_checked": len(journey.documents),
        "journey_events_checked": sum(sum(c.values()) for c in journey_events.values()),
    }


async def fingerprints(cluster: Cluster, client: httpx.AsyncClient) -> dict[str, Any]:
    """Both ranking instances' pool fingerprints (they converge once settled) and a rebuild's."""
    token = mint_token(SECRET, OPS[0], OPS[1], None)

    async def live() -> dict[str, str] | None:
        prints = {}
        for instance in ("a", "b"):
            url = cluster.instance_url("ranking", instance) + "/v1/admin/pool/fingerprint"
            response = await client.get(url, headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 200, response.text
            prints[instance] = response.json()["fingerprint"]
        return prints if prints["a"] == prints["b"] else None

    both = await poll(live, 60, "both ranking instances to hold the same pool", interval=0.5)
    settings = RankingSettings(
        env="test", auth_secret=SECRET, topic_prefix=cluster.prefix, db_suffix=DB_SUFFIX,
        database_url=f"postgresql+asyncpg://ee:ee@127.0.0.1:5432/ranking{DB_SUFFIX}",
        kafka_bootstrap_servers=cluster.bootstrap, replica=False,
    )  # fmt: skip
    try:
        rebuilt = await rebuild(settings, clock=Clock(), timeout_s=120)
    finally:
        await drop_database(rebuild_settings(settings).database_url)
    return {
        "ranking_a": both["a"], "ranking_b": both["b"], "table": rebuilt.live_fingerprint,
        "rebuilt": rebuilt.fingerprint, "pool_size": rebuilt.pool_size, "rebuild_events": rebuilt.events,
    }  # fmt: skip


# --- the test -------------------------------------------------------------------------------------------


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=32, max_keepalive_connections=16)
    async with httpx.AsyncClient(limits=limits, timeout=30) as http:
        yield http


async def _accepted_at_least(load: Load, count: int) -> bool:
    return sum(load.accepted.values()) >= count


async def test_kill_9_of_a_broker_and_an_instance_of_each_service_then_a_rolling_restart_under_load(
    cluster: Cluster, client: httpx.AsyncClient, pytestconfig: pytest.Config
) -> None:
    load = Load(cluster, client, iter(varied_documents(2000, date.today(), seed=111)))
    journey = Journey(load)
    figures: dict[str, Any] = {"cluster_start_s": cluster.start_s, "writers": WRITERS}
    stop = asyncio.Event()
    writers = asyncio.create_task(load.run(stop))
    try:
        load.phase = "before"
        await poll(lambda: _accepted_at_least(load, WRITERS * FIRST_PROFILES * 2 + 60), 180, "steady load")
        await journey.prepare()
        await poll(journey.on_top, 90, "the nominated profiles at the top of the pool", interval=0.5)

        # 2. kill -9 a broker and instance a of every service, mid-load.
        load.phase = "kill"
        killed_at = time.monotonic()
        pids = [kill9(RUN_DIR / f"kafka-{KILLED_NODE}" / "kafka.pid", "java", f"kafka-{KILLED_NODE}")]
        for entry in TABLE:
            pid_file = RUN_DIR / KILLED_INSTANCE / "run" / f"{entry.name}.pid"
            pids.append(kill9(pid_file, "uvicorn", f"{entry.name}_service.main:app"))
        await asyncio.gather(*(gone(pid) for pid in pids))
        journeying = asyncio.create_task(journey.round_and_applications())  # a round while broken
        accepted_at_kill = sum(load.accepted.values())
        await asyncio.sleep(KILL_PHASE_S)
        figures["accepted_while_broken"] = sum(load.accepted.values()) - accepted_at_kill
        restart_began = time.monotonic()
        await script(CLUSTER_SH, "recover", env=cluster.env, limit_s=600)
        await poll(lambda: everything_ready(cluster, client), 180, "cluster.sh status and every /readyz")
        figures["kill_to_all_ready_s"] = round(time.monotonic() - killed_at, 2)
        counters_after_kill = haproxy_retries(cluster)
        figures["haproxy_kill"] = counters_after_kill
        figures["restart_to_all_ready_s"] = round(time.monotonic() - restart_began, 2)
        await asyncio.wait_for(journeying, 240)  # its requests answered in the kill phase
        figures["journey"] = {
            "round": journey.round_id, "invited": len(journey.invited),
            "applications": len(journey.applications), **journey.timings,
        }  # fmt: skip

        # 3. a rolling restart of every instance during the load: not one request may fail.
        load.phase = "rolling"
        accepted_before = sum(load.accepted.values())
        rolling_began = time.monotonic()
        output = await script(CLUSTER_SH, "rolling-restart", env=cluster.env, limit_s=1500)  # 841 s seen
        figures["rolling_restart_s"] = round(time.monotonic() - rolling_began, 2)
        figures["haproxy_rolling"] = {
            k: v - counters_after_kill.get(k, 0) for k, v in haproxy_retries(cluster).items()
        }
        figures["accepted_during_rolling_restart"] = sum(load.accepted.values()) - accepted_before
        assert "rolling restart done" in output, output[-2000:]
        load.phase = "after"
        target = sum(load.accepted.values()) + 20
        await poll(lambda: _accepted_at_least(load, target), 60, "load after the rolling restart")
    finally:
        stop.set()
        try:
            await asyncio.wait_for(writers, 240)
        except TimeoutError:
            writers.cancel()
            raise

    figures["requests"] = {
        phase: {
            "commands_sent": load.sent[phase], "commands_accepted": load.accepted[phase],
            "http_requests": load.attempts[phase], "answered_503": load.count(phase, 503),
            "503_without_retry_after": load.retry_after_missing[phase],
        }
        for phase in ("setup", "before", "kill", "rolling", "after")
    }  # fmt: skip
    figures["statuses"] = dict(sorted(load.statuses.items()))
    figures["transport_errors"] = dict(load.transport_errors)
    figures["reads_not_there_yet"] = dict(load.tolerated)
    try:
        # An instance killed while it held a request: HAProxy resends it to the other instance, whether
        # the dead one had read it (an empty answer) or not (a reset). No connection closed without an
        # answer (HAProxy 2.6's way of giving up on a kept-alive one) and no other connection error.
        closed = {k: v for k, v in load.transport_errors.items() if k.endswith(" RemoteProtocolError")}
        figures["closed_without_answer_at_kill"] = sum(v for k, v in closed.items() if k.startswith("kill:"))
        assert not load.transport_errors, f"connection errors reached the client: {load.transport_errors}"
        assert not load.not_problem_json, load.not_problem_json[:3]
        assert not load.refused, load.refused[:5]
        assert not load.retry_after_missing, f"503 without Retry-After: {dict(load.retry_after_missing)}"
        for phase in ("setup", "before", "kill"):
            assert not load.bad_statuses(phase, {200, 201, 503}), load.bad_statuses(phase, {200, 201, 503})
        for phase in ("rolling", "after"):
            assert not load.bad_statuses(phase, {200, 201}), (phase, load.bad_statuses(phase, {200, 201}))
        assert figures["accepted_during_rolling_restart"] > 0, figures

        # 5. nothing accepted lost or applied twice; the cluster ready again.
        figures["settle_s"] = round(await settled(cluster), 2)
        figures["events"] = await check_exactly_once(cluster, load, journey)
        prints = await fingerprints(cluster, client)
        figures["fingerprints"] = prints
        assert prints["ranking_a"] == prints["ranking_b"] == prints["table"] == prints["rebuilt"], prints
        in_pool = [t for t in load.profiles if t.status == "in_pool"]
        figures["profiles_in_pool"] = len(in_pool)
        assert prints["pool_size"] == len(in_pool), prints
        assert await everything_ready(cluster, client), "the cluster does not report ready at the end"
    finally:
        FIGURES.parent.mkdir(parents=True, exist_ok=True)
        FIGURES.write_text(json.dumps(figures, indent=2, sort_keys=True, default=str) + "\n")
        report_figures(pytestconfig, "cluster_faults", figures)
