"""Bad input end to end (issue 7, faults): garbage on the topics, a race of 100 writers, schemathesis.

- A malformed message on every consumed topic (`ee.profile.events`, `ee.draws.events`,
  `ee.applications.events`) lands in its `.dlq`, once per consumer, with the reason and the original
  position, and every consumer carries on: a real event right after it on the same partition is
  applied (each consumer's stored position passes it, and its effect shows over HTTP).
- 100 concurrent updates of one profile (each reads the ETag and writes with it, and tries again after
  a 412, three tries at most): each accepted write (200) is on the topic exactly once, in the order of
  the versions it was given, no rejected one is; every other answer is 412.
- Schemathesis against each service's OpenAPI document (100 cases per operation and phase, and the
  stateful phase that follows the OpenAPI links; an ops, officer, partner or province token): no 5xx,
  every error is problem+json. It runs last here: with an ops token it moves the clock and holds rounds.

`ee.ranking.events` is consumed by no service, so it has no garbage test.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from e2e_documents import step_of, variant, varied_documents
from e2e_harness import (
    ROOT,
    RUN_DIR,
    SERVICES,
    World,
    poll,
    produce_raw,
    read_topics,
    report_figures,
    running_world,
)

from shared.events.catalogue import APPLICATIONS_TOPIC, DRAWS_TOPIC, PROFILE_TOPIC
from shared.messages import HEADER_CONSUMER, HEADER_ORIGINAL_OFFSET, HEADER_ORIGINAL_PARTITION, HEADER_REASON

pytestmark = pytest.mark.infra

PARTNER = ("partner-bad", "partner")
OPS = ("ops-bad", "ops")
OFFICER = ("officer-bad", "officer")
RACERS = 100
SCHEMATHESIS_EXAMPLES = int(os.environ.get("EE_E2E_SCHEMATHESIS_EXAMPLES") or 100)
# Each run stops after this many seconds whatever it has left (schemathesis's --max-time, which keeps a
# share for the stateful phase): on an idle 2-core machine the 100 cases per operation fit well inside
# it; on a loaded one the run is cut short rather than the suite held up.
SCHEMATHESIS_MAX_TIME_S = int(os.environ.get("EE_E2E_SCHEMATHESIS_MAX_TIME") or 240)
SCHEMATHESIS_TIMEOUT_S = SCHEMATHESIS_MAX_TIME_S + 120
# (service, token, operations): a role's run covers the operations it may call (the others answer 403
# whatever the input), and every operation is covered by at least one run.
SCHEMATHESIS_RUNS = (
    ("profile", ("st-partner", "partner", None), "^/v1/profiles"),
    ("profile", ("st-province", "province", "ON"), "^/(v1/provinces|healthz|readyz|metrics)"),
    ("profile", ("st-ops", "ops", None), "^/v1/admin/profiles"),  # officers' and ops' view, erasure
    ("ranking", ("st-ops", "ops", None), None),
    ("draws", ("st-ops", "ops", None), None),
    ("applications", ("st-officer", "officer", None), None),
    ("applications", ("st-partner", "partner", None), "^/v1/(invitations|applications|candidates)"),
)


@pytest.fixture(scope="module")
async def world(pytestconfig: pytest.Config) -> AsyncIterator[World]:
    async with running_world("bad") as running:
        try:
            yield running
        finally:
            report_figures(pytestconfig, "bad_input", running.figures)


@pytest.fixture(scope="module")
async def profiles(world: World) -> list[dict[str, Any]]:
    """Five profiles in the pool: their views (id, version, document)."""
    today = await world.today("profile")
    views = []
    for document in varied_documents(5, today, seed=11):
        created = await world.call("profile", "POST", "/v1/profiles", as_=PARTNER, json_body=document)
        assert created.status_code == 201, created.text
        submitted = await world.call(
            "profile",
            "POST",
            f"/v1/profiles/{created.json()['id']}/submit",
            as_=PARTNER,
            headers={"If-Match": created.headers["ETag"]},
        )
        assert submitted.status_code == 200, submitted.text
        views.append(submitted.json())
    return views


async def ranked(world: World, profile_id: str) -> dict[str, Any] | None:
    response = await world.call("ranking", "GET", f"/v1/pool/candidates/{profile_id}", as_=OPS)
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# --- malformed messages -----------------------------------------------------------------------------

GARBAGE: dict[str, bytes] = {
    # Not JSON at all.
    PROFILE_TOPIC: b"\x00\x01 this is not JSON {",
    # JSON, but not a CloudEvents envelope.
    DRAWS_TOPIC: orjson.dumps({"specversion": "1.0", "type": "ee.draws.Invited.v1", "data": {}}),
    # A well-formed envelope whose data does not match the catalogue event.
    APPLICATIONS_TOPIC: orjson.dumps(
        {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": "ee/evil",
            "type": "ee.applications.InvitationDeclined.v1",
            "time": "2026-01-01T00:00:00Z",
            "data": {"profile_id": "x", "declined_at": "yesterday"},
        }
    ),
}


async def inject(world: World, base: str, key: str) -> tuple[int, int]:
    return await produce_raw(world.topic(base), GARBAGE[base], key)


# Every consumer of each topic, as "<service>:<consumer name>". Named here rather than read from the
# databases: a consumer that has not yet stored its first position on the topic would otherwise be
# missed, and the test would pass on the ones that happened to be quicker.
CONSUMERS: dict[str, frozenset[str]] = {
    PROFILE_TOPIC: frozenset(
        {"ranking:ranking", "applications:applications.profiles", "notifications:notifications.fanout"}
    ),
    DRAWS_TOPIC: frozenset(
        {
            "profile:profile-invitations",
            "ranking:ranking",
            "applications:applications.invitations",
            "notifications:notifications.fanout",
        }
    ),
    APPLICATIONS_TOPIC: frozenset(
        {
            "profile:profile-invitations",
            "ranking:ranking",
            "draws:draws-open-invitations",
            "notifications:notifications.fanout",
        }
    ),
}


async def check_dead_lettered_and_carried_on(
    world: World, base: str, partition: int, garbage_offset: int, event: str, key: str
) -> dict[str, Any]:
    """The garbage is in `<topic>.dlq` once per consumer of the topic, and every consumer of the topic
    stored a position past the real `event` (keyed `key`) that follows it on the same partition."""
    topic = world.topic(base)
    expected = CONSUMERS[base]

    async def good_offset() -> int | None:
        records = await read_topics([topic])
        for record in records:
            if record.partition != partition or record.offset <= garbage_offset or record.key != key.encode():
                continue
            if orjson.loads(record.value or b"{}").get("type", "").split(".")[-2:-1] == [event]:
                return record.offset
        return None

    good = await poll(good_offset, 30, f"{event} after the garbage on {base}:{partition}")

    async def consumers_past() -> dict[str, int] | None:
        positions = await world.positions(topic, partition)
        if not expected <= positions.keys():
            return None
        return positions if all(offset > good for offset in positions.values()) else None

    positions = await poll(consumers_past, 30, f"every consumer of {base}:{partition} past offset {good}")

    async def dead_letters() -> list[Any] | None:
        records = await read_topics([topic + ".dlq"])
        mine = [
            r for r in records
            if dict(r.headers).get(HEADER_ORIGINAL_OFFSET) == str(garbage_offset).encode()
            and dict(r.headers).get(HEADER_ORIGINAL_PARTITION) == str(partition).encode()
        ]  # fmt: skip
        return mine if len(mine) >= len(positions) else None

    letters = await poll(dead_letters, 30, f"the garbage of {base} in its DLQ once per consumer")
    consumers = sorted(dict(r.headers)[HEADER_CONSUMER].decode() for r in letters)
    assert positions.keys() == expected, (sorted(positions), sorted(expected))
    assert len(consumers) == len(set(consumers)) == len(positions), (consumers, positions)
    assert {c.split(":", 1)[1] for c in positions} == set(consumers)
    assert all(r.value == GARBAGE[base] and r.key == key.encode() for r in letters)
    assert all(dict(r.headers)[HEADER_REASON] for r in letters)
    return {"consumers": consumers, "garbage_offset": garbage_offset, "next_good_offset": good}


async def test_a_malformed_message_on_every_consumed_topic_lands_in_its_dlq_and_consumers_carry_on(
    world: World, profiles: list[dict[str, Any]]
) -> None:
    figures: dict[str, Any] = {}
    # ee.profile.events (ranking, applications): garbage, then an update of the same profile.
    first = profiles[0]
    partition, offset = await inject(world, PROFILE_TOPIC, first["id"])
    before = await poll(lambda: ranked(world, first["id"]), 30, "the profile ranked")
    document = variant(first["document"], 1)  # sibling in Canada: +15 CRS
    response = await world.call(
        "profile", "PUT", f"/v1/profiles/{first['id']}", as_=PARTNER, json_body=document,
        headers={"If-Match": f'"{first["version"]}"'},
    )  # fmt: skip
    assert response.status_code == 200, response.text
    figures[PROFILE_TOPIC] = await check_dead_lettered_and_carried_on(
        world, PROFILE_TOPIC, partition, offset, "ProfileUpdated", first["id"]
    )
    after = await ranked(world, first["id"])
    assert after is not None and after["crs"] == before["crs"] + 15, (before, after)

    # ee.draws.events (profile, ranking, applications): garbage keyed by the next invitee, then a round.
    top = await world.call("ranking", "GET", "/v1/pool/top", as_=OPS, params={"n": 1})
    invitee = top.json()["candidates"][0]["profile_id"]
    partition, offset = await inject(world, DRAWS_TOPIC, invitee)
    held = await world.call(
        "draws", "POST", "/v1/draws", as_=OPS, json_body={"type": "general", "size": 1},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )  # fmt: skip
    assert held.status_code == 201, held.text
    figures[DRAWS_TOPIC] = await check_dead_lettered_and_carried_on(
        world, DRAWS_TOPIC, partition, offset, "Invited", invitee
    )

    async def invitation() -> dict[str, Any] | None:
        found = await world.call("applications", "GET", f"/v1/candidates/{invitee}/invitations", as_=OFFICER)
        items: list[dict[str, Any]] = found.json()
        return items[0] if items else None

    opened = await poll(invitation, 30, "the invitation in the applications service")
    assert await ranked(world, invitee) is None

    # ee.applications.events (profile, ranking, draws): garbage, then the invitee declines.
    partition, offset = await inject(world, APPLICATIONS_TOPIC, invitee)
    declined = await world.call(
        "applications", "POST", f"/v1/invitations/{opened['invitation_id']}/decline", as_=PARTNER,
        headers={"If-Match": f'"{opened["version"]}"'},
    )  # fmt: skip
    assert declined.status_code == 200, declined.text
    figures[APPLICATIONS_TOPIC] = await check_dead_lettered_and_carried_on(
        world, APPLICATIONS_TOPIC, partition, offset, "InvitationDeclined", invitee
    )
    await poll(lambda: ranked(world, invitee), 30, "the decliner back in ranking's pool")
    world.record("dead_letters", figures)


# --- 100 writers on one profile -----------------------------------------------------------------------


async def test_100_concurrent_updates_of_one_profile_accepted_in_order_the_rest_412(
    world: World, profiles: list[dict[str, Any]]
) -> None:
    target = profiles[-1]
    profile_id, original = target["id"], target["document"]
    gate = asyncio.Event()

    async def racer(step: int) -> list[tuple[int, int, int | None]]:
        """Read the ETag, write with it; after a 412, read again and retry (three tries at most)."""
        await gate.wait()
        answers: list[tuple[int, int, int | None]] = []
        for _ in range(3):
            current = await world.call("profile", "GET", f"/v1/profiles/{profile_id}", as_=PARTNER)
            assert current.status_code == 200, current.text
            headers = {"If-Match": current.headers["ETag"]}
            body = variant(original, step)
            response = await world.call(
                "profile", "PUT", f"/v1/profiles/{profile_id}", as_=PARTNER, json_body=body, headers=headers
            )
            if response.status_code == 200:
                answers.append((step, 200, int(response.json()["version"])))
                break
            assert response.headers["content-type"].startswith("application/problem+json"), response.text
            answers.append((step, response.status_code, None))
        return answers

    tasks = [asyncio.create_task(racer(step)) for step in range(1, RACERS + 1)]
    gate.set()
    results = [answer for answers in await asyncio.gather(*tasks) for answer in answers]
    statuses = {status for _, status, _ in results}
    accepted = sorted((version, step) for step, status, version in results if status == 200)
    assert statuses <= {200, 412}, [r for r in results if r[1] not in (200, 412)]
    assert accepted, "no update was accepted"
    assert len({v for v, _ in accepted}) == len(accepted), "two accepted updates got the same version"

    async def on_the_topic() -> list[tuple[int, int]] | None:
        records = await read_topics([world.topic(PROFILE_TOPIC)])
        updates = []
        for record in sorted(records, key=lambda r: r.offset):
            body = orjson.loads(record.value or b"{}") if record.key == profile_id.encode() else {}
            if body.get("type") == "ee.profile.ProfileUpdated.v1":
                updates.append((int(body["aggregateversion"]), step_of(body["data"]["document"])))
        return updates if len(updates) >= len(accepted) else None

    updates = await poll(on_the_topic, 30, "the accepted updates on the profile topic")
    assert updates == accepted, f"stream {updates} vs accepted {accepted}"
    final = await world.call("profile", "GET", f"/v1/profiles/{profile_id}", as_=PARTNER)
    assert step_of(final.json()["document"]) == accepted[-1][1]
    world.record(
        "concurrent_updates",
        {
            "updates": RACERS,
            "requests": len(results),
            "accepted": len(accepted),
            "rejected_412": len(results) - len(accepted),
        },
    )


# --- schemathesis -------------------------------------------------------------------------------------


def run_schemathesis(
    world: World, service: str, role: tuple[str, str, str | None], paths: str | None, report: Path
) -> dict[str, Any]:
    """One schemathesis run: every phase (examples, coverage, fuzzing, and the stateful phase that
    follows the OpenAPI links), SCHEMATHESIS_EXAMPLES cases per operation, deterministic generation
    (the same cases every run), no shrinking, one worker (hypothesis's coverage generation is not
    thread-safe: two workers made it fail with "AST constructor recursion depth mismatch"); at most
    SCHEMATHESIS_MAX_TIME_S seconds."""
    sub, name, province = role
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "e2e_schemathesis_hooks",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")]),
    }
    command = [
        str(Path(sys.executable).with_name("schemathesis")), "run", world.url(service) + "/openapi.json",
        "--checks", "not_a_server_error,error_is_problem_json", "--max-examples", str(SCHEMATHESIS_EXAMPLES),
        "--phases", "examples,coverage,fuzzing,stateful", "--generation-deterministic",
        "--no-shrink", "--workers", "1", "--request-timeout", "15",
        "--max-time", str(SCHEMATHESIS_MAX_TIME_S),
        "-H", f"Authorization: Bearer {world.token(sub, name, province)}",
        "--report", "json", "--report-json-path", str(report),
    ]  # fmt: skip
    if paths is not None:
        command += ["--include-path-regex", paths]
    started = time.monotonic()
    done = subprocess.run(
        command, cwd=report.parent, env=env, capture_output=True, text=True, timeout=SCHEMATHESIS_TIMEOUT_S
    )
    assert report.exists(), f"schemathesis wrote no report:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    result: dict[str, Any] = json.loads(report.read_text())
    result["seconds"] = round(time.monotonic() - started, 1)
    result["returncode"] = done.returncode
    result["tail"] = done.stdout[-4000:]
    return result


async def test_schemathesis_finds_no_5xx_and_every_error_is_problem_json(world: World) -> None:
    """The runs go side by side (each one waits on the services most of the time), so the whole check
    takes about as long as its longest run."""
    out = RUN_DIR / "schemathesis"
    out.mkdir(parents=True, exist_ok=True)
    labels = [f"{service}-{role[1]}" for service, role, _ in SCHEMATHESIS_RUNS]
    started = time.monotonic()
    results = await asyncio.gather(*(
        asyncio.to_thread(run_schemathesis, world, service, role, paths, out / f"{label}.json")
        for label, (service, role, paths) in zip(labels, SCHEMATHESIS_RUNS, strict=True)
    ))  # fmt: skip
    summary: dict[str, Any] = {"seconds": round(time.monotonic() - started, 1)}
    failed: list[str] = []
    for label, result in zip(labels, results, strict=True):
        summary[label] = {
            "operations": result["operations"]["tested"],
            "test_cases": result["test_cases"]["generated"],
            "stateful": result["phases"].get("stateful", {}).get("status"),
            "stop_reason": result.get("stop_reason"),
            "failures": len(result["failures"]),
            "errors": len(result["errors"]),
            "seconds": result["seconds"],
        }
        if result["returncode"] != 0 or result["failures"] or result["errors"]:
            failed.append(f"{label}: {result['failures'][:3]} {result['errors'][:3]}\n{result['tail']}")
    world.record("schemathesis", summary)
    assert not failed, "\n\n".join(failed)
    # Ops may have moved the clock and switched rules meanwhile: put the world back as it was.
    await world.set_clock(timedelta(0), SERVICES)
