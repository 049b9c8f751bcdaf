"""`make up` as a user runs it, isolated (issues 11 and 12): every service of `deploy/services.conf`
answers `/healthz` and `/readyz`, a second `make up` changes nothing, and the front door (real HAProxy)
routes every path prefix of the table to its service, passes `X-Correlation-Id` (or makes one), serves
the merged OpenAPI document and `/docs`, answers problem+json when nothing serves a path, and stops
sending requests to an instance that is down.

The real `make up` runs with `EE_PORT_BASE` (18300: front door on 18300, services on 18301..), its
own run directory (`EE_LOCAL_RUN=.local/e2e-makeup`), databases `<service>_makeup` and a fresh topic
prefix; at the end this module stops only what it started (`frontdoor.sh stop`, `services.sh stop`
with the same variables: not `make down`, which would also stop a broker this checkout started).
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, Final

import httpx
import pytest
from e2e_harness import BOOTSTRAP, POSTGRES_SH, ROOT, SERVICES_SH, poll, run_script

from shared import kafka_admin
from shared.gateway import load_table
from shared.testing import run_prefix

pytestmark = pytest.mark.infra

TABLE: Final = load_table()
RUN_DIR: Final = ROOT / ".local" / "e2e-makeup"
FRONTDOOR_SH: Final = ROOT / "deploy/local/frontdoor.sh"
SECRET: Final = "makeup-" + "s3cret-" * 6
UUID_RE: Final = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def port_base() -> int:
    return int(os.environ.get("EE_E2E_MAKEUP_PORT_BASE") or 18300)


# Databases are machine-wide: one set per port base, unless EE_E2E_MAKEUP_DB_SUFFIX names it.
DB_SUFFIX: Final = os.environ.get("EE_E2E_MAKEUP_DB_SUFFIX") or f"_makeup{port_base()}"


@dataclass
class Stack:
    env: dict[str, str]
    prefix: str
    first_output: str

    @property
    def front(self) -> str:
        return f"http://127.0.0.1:{port_base()}"

    def url(self, service: str) -> str:
        entry = next(e for e in TABLE if e.name == service)
        return f"http://127.0.0.1:{entry.port(port_base())}"

    def pids(self) -> dict[str, str]:
        """Every pid file of the run directory (services, HAProxy, the documents process)."""
        return {p.name: p.read_text().strip() for p in sorted((RUN_DIR / "run").glob("*.pid"))}

    def log(self, name: str) -> str:
        return (RUN_DIR / "logs" / f"{name}.log").read_text(errors="replace")


def make_up(env: dict[str, str]) -> str:
    done = subprocess.run(
        ["make", "up"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"make up failed ({done.returncode}):\n{output[-4000:]}"
    return output


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    prefix = f"{run_prefix()}makeup{uuid.uuid4().hex[:6]}."
    env = dict(os.environ)
    for name in list(env):
        if name.startswith("EE_") and name.endswith("_DATABASE_URL"):
            del env[name]
    env.update(
        EE_ENV="test",
        EE_AUTH_SECRET=SECRET,
        EE_PORT_BASE=str(port_base()),
        EE_LOCAL_RUN=str(RUN_DIR),
        EE_DB_SUFFIX=DB_SUFFIX,
        EE_TOPIC_PREFIX=prefix,
        KAFKA_BOOTSTRAP_SERVERS=BOOTSTRAP,
    )
    env.pop("EE_DRAWS_RANKING_URL", None)  # services.sh derives it from the port base
    env.pop("MAKEFLAGS", None)
    env.pop("MAKELEVEL", None)
    # Leftovers of a killed run (ours by their pids), then fresh databases.
    run_script(FRONTDOOR_SH, "stop", env=env)
    run_script(SERVICES_SH, "stop", env=env)
    run_script(POSTGRES_SH, "dropdbs", DB_SUFFIX, env=env)
    try:
        yield Stack(env, prefix, make_up(env))
    finally:
        run_script(FRONTDOOR_SH, "stop", env=env)
        run_script(SERVICES_SH, "stop", env=env)
        if not os.environ.get("EE_KEEP_TEST_TOPICS"):
            asyncio.run(kafka_admin.delete_topics_with_prefix(BOOTSTRAP, prefix))


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=15) as http:
        yield http


async def test_every_service_answers_healthz_and_readyz_after_make_up(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    for entry in TABLE:
        assert f"{entry.name}: started uvicorn" in stack.first_output, stack.first_output[-3000:]
        for probe in ("/healthz", "/readyz"):
            response = await client.get(stack.url(entry.name) + probe)
            assert response.status_code == 200, (entry.name, probe, response.text)
    for probe in ("/healthz", "/readyz"):
        response = await client.get(stack.front + probe)
        assert response.status_code == 200, (probe, response.text)


async def test_a_second_make_up_changes_nothing(stack: Stack, client: httpx.AsyncClient) -> None:
    before_pids = stack.pids()
    config = (RUN_DIR / "run" / "haproxy.cfg").read_text()
    migrations = stack.log(TABLE[0].name).count("alembic upgrade head")
    assert {f"{e.name}.pid" for e in TABLE} | {"haproxy.pid", "frontdoor-docs.pid"} <= set(before_pids)

    output = await asyncio.to_thread(make_up, stack.env)

    assert stack.pids() == before_pids, output
    assert (RUN_DIR / "run" / "haproxy.cfg").read_text() == config
    assert f"already running: {' '.join(e.name for e in TABLE)}" in output, output
    assert "front door" in output and "(same configuration)" in output, output
    assert "(0 created)" in output and "created " not in output.replace("(0 created)", ""), output
    assert not re.search(r"started uvicorn|started documents|started HAProxy|started kafka", output), output
    assert stack.log(TABLE[0].name).count("alembic upgrade head") == migrations
    for entry in TABLE:
        assert (await client.get(stack.url(entry.name) + "/readyz")).status_code == 200


async def test_the_front_door_routes_every_prefix_of_the_table_to_its_service_with_the_correlation_id(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    sent: dict[str, tuple[str, str]] = {}
    for entry in TABLE:
        for route in entry.routes:
            for path in (route, f"{route}/no-such-thing"):
                correlation = f"makeup-{uuid.uuid4().hex[:12]}"
                response = await client.get(stack.front + path, headers={"X-Correlation-Id": correlation})
                assert response.headers.get("x-correlation-id") == correlation, (path, response.headers)
                # Whatever the service says (200, 401, 404, 405), it says it as itself: problem+json.
                assert response.status_code < 500, (path, response.status_code, response.text)
                if response.status_code >= 400:
                    assert response.headers["content-type"].startswith("application/problem+json"), path
                sent[correlation] = (entry.name, path)

    async def all_logged() -> bool:
        logs = {entry.name: stack.log(entry.name) for entry in TABLE}
        return all(f'"correlation_id":"{cid}"' in logs[name] for cid, (name, _) in sent.items())

    await poll(all_logged, 10, "each request in its service's log under its correlation id")
    logs = {entry.name: stack.log(entry.name) for entry in TABLE}
    for cid, (name, path) in sent.items():
        elsewhere = [other for other in logs if other != name and cid in logs[other]]
        assert not elsewhere, f"{path} also reached {elsewhere}"


async def test_the_front_door_makes_a_correlation_id_when_the_request_has_none(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    response = await client.get(stack.front + "/v1/draws")
    assert response.status_code == 200, response.text
    correlation = response.headers.get("x-correlation-id", "")
    assert UUID_RE.match(correlation), response.headers

    async def logged() -> bool:
        return f'"correlation_id":"{correlation}"' in stack.log("draws")

    await poll(logged, 10, "the generated correlation id in the draws log")


async def test_a_path_no_service_owns_is_a_problem_json_404(stack: Stack, client: httpx.AsyncClient) -> None:
    for path in ("/v1/nothing-here", "/v1/profilesX", "/"):
        response = await client.get(stack.front + path)
        assert response.status_code == 404, (path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert body["status"] == 404 and body["title"] and body["detail"], body


async def test_the_merged_openapi_document_covers_every_route_and_docs_page(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    response = await client.get(stack.front + "/openapi.json")
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    paths = document["paths"]
    for entry in TABLE:
        direct = (await client.get(stack.url(entry.name) + "/openapi.json")).json()
        routed = {p for p in direct["paths"] if entry.owns(p)}
        assert routed, f"{entry.name} serves nothing under {entry.routes}"
        assert routed <= set(paths), routed - set(paths)
        for path in routed:
            for method, operation in paths[path].items():
                if isinstance(operation, dict) and "responses" in operation:
                    assert operation["tags"][0] == entry.name, (path, method)
    assert not [p for p in paths if p in ("/healthz", "/readyz", "/metrics")], sorted(paths)
    refs = set(re.findall(r'"\$ref":\s*"#/components/schemas/([^"]+)"', response.text))
    assert refs <= set(document["components"]["schemas"]), refs - set(document["components"]["schemas"])
    operation_ids = [
        op["operationId"] for item in paths.values() for op in item.values()
        if isinstance(op, dict) and "operationId" in op
    ]  # fmt: skip
    assert len(operation_ids) == len(set(operation_ids))
    docs = await client.get(stack.front + "/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower() and "/openapi.json" in docs.text


async def test_the_front_door_stops_routing_to_a_stopped_service_then_routes_again(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    await asyncio.to_thread(run_script, SERVICES_SH, "stop", "draws", env=stack.env)
    try:

        async def refused() -> httpx.Response | None:
            response = await client.get(stack.front + "/v1/draws")
            return response if response.status_code == 503 else None

        answer = await poll(refused, 15, "503 from the front door with draws stopped")
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["status"] == 503 and answer.headers.get("retry-after")
        assert (await client.get(stack.front + "/v1/pool/distribution")).status_code == 200
    finally:
        await asyncio.to_thread(run_script, SERVICES_SH, "start", "draws", env=stack.env, timeout=180)

    async def routed_again() -> bool:
        return (await client.get(stack.front + "/v1/draws")).status_code == 200

    await poll(routed_again, 15, "the front door routing to draws again")


def test_haproxy_checks_readyz_of_every_instance(stack: Stack) -> None:
    config = (RUN_DIR / "run" / "haproxy.cfg").read_text()
    for entry in TABLE:
        backend = config.split(f"backend be_{entry.name}\n", 1)[1].split("\n\n", 1)[0]
        assert "uri /readyz" in backend and "expect status 200" in backend, backend
        assert f"127.0.0.1:{entry.port(port_base())} check" in backend, backend


async def test_make_down_stops_the_front_door_and_the_services(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    # A bootstrap list that is not literally the local broker: kafka.sh then stops no broker at all
    # (in CI this checkout started the shared one, which the later modules still need).
    env = {**stack.env, "KAFKA_BOOTSTRAP_SERVERS": f"{BOOTSTRAP},{BOOTSTRAP}"}
    done = await asyncio.to_thread(
        subprocess.run, ["make", "down"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "HAProxy stopped" in output and "front door documents stopped" in output, output
    assert not stack.pids(), stack.pids()
    for url in [stack.front, *(stack.url(entry.name) for entry in TABLE)]:
        with pytest.raises(httpx.TransportError):
            await client.get(url + "/healthz", timeout=3)
