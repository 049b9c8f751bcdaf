"""`make cluster` (issue 11 part 2's infrastructure), isolated: three Kafka nodes (KRaft, three
controllers) holding every topic with replication factor 3 and min.insync.replicas=2, two instances of
every service, all behind the front door (real HAProxy), which spreads requests over both instances; a
profile written through the front door is scored, and both ranking instances answer for it (each holds
the whole pool); a second `make cluster` changes nothing; `make cluster-down` stops it all.

Isolation (`EE_E2E_CLUSTER_PORT_BASE`, 18700): front door 18700, instances 18801.. and 18901.., Kafka on
base + 1392, + 1394, + 1396 (20092/20094/20096; controllers one above each; `EE_E2E_CLUSTER_KAFKA_PORT`
moves them), `EE_LOCAL_RUN` = `.local/e2e-cluster` (brokers' data wiped first), databases
`<service>_cluster<base>`, a fresh topic prefix.
The faults in the cluster (issue 11 part 3) are not tested here.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Final

import httpx
import pytest
from e2e_documents import varied_documents
from e2e_harness import ROOT, poll, prepare_private_cluster

from shared.auth import mint_token
from shared.gateway import load_table
from shared.kafka_admin import admin_client, all_topic_names, topic_configs

pytestmark = pytest.mark.infra

TABLE: Final = load_table()
RUN_DIR: Final = ROOT / ".local" / "e2e-cluster"
SECRET: Final = "cluster-" + "s3cret-" * 6


def port_base() -> int:
    return int(os.environ.get("EE_E2E_CLUSTER_PORT_BASE") or 18700)


def kafka_port() -> int:
    """`EE_E2E_CLUSTER_KAFKA_PORT`, else the port base + 1392 (20092 for 18700): per port base."""
    return int(os.environ.get("EE_E2E_CLUSTER_KAFKA_PORT") or port_base() + 1392)


DB_SUFFIX: Final = f"_cluster{port_base()}"  # databases are machine-wide: one set per port base


@dataclass
class Cluster:
    env: dict[str, str]
    prefix: str
    bootstrap: str
    first_output: str

    @property
    def front(self) -> str:
        return f"http://127.0.0.1:{port_base()}"

    def instance_url(self, service: str, instance: str) -> str:
        entry = next(e for e in TABLE if e.name == service)
        return f"http://127.0.0.1:{port_base() + (100 if instance == 'a' else 200) + entry.offset}"

    def pids(self) -> dict[str, str]:
        files = [*RUN_DIR.glob("*/run/*.pid"), *RUN_DIR.glob("run/*.pid"), *RUN_DIR.glob("kafka-*/kafka.pid")]
        return {str(p.relative_to(RUN_DIR)): p.read_text().strip() for p in sorted(files)}


def make(target: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        ["make", target], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"make {target} failed ({done.returncode}):\n{output[-5000:]}"
    return output


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    private = prepare_private_cluster(
        "cluster",
        secret=SECRET,
        port_base=port_base(),
        run_dir=RUN_DIR,
        db_suffix=DB_SUFFIX,
        kafka_port=kafka_port(),
    )
    prefix, env, bootstrap = private.prefix, private.env, private.bootstrap
    try:
        yield Cluster(env, prefix, bootstrap, make("cluster", env))
    finally:
        make("cluster-down", env)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as http:
        yield http


async def test_three_brokers_hold_every_topic_with_replication_factor_3_and_min_isr_2(
    cluster: Cluster,
) -> None:
    assert len(cluster.bootstrap.split(",")) == 3
    names = all_topic_names(cluster.prefix)
    async with admin_client(cluster.bootstrap) as admin:
        described = await admin.describe_cluster()
        topics = await admin.describe_topics(names)
    assert sorted(b["node_id"] for b in described["brokers"]) == [1, 2, 3]
    assert {t["topic"] for t in topics} == set(names)
    for topic in topics:
        for partition in topic["partitions"]:
            assert len(partition["replicas"]) == 3 and len(partition["isr"]) == 3, (topic["topic"], partition)
    configs = await topic_configs(cluster.bootstrap, names, ["min.insync.replicas", "retention.ms"])
    assert all(c == {"min.insync.replicas": "2", "retention.ms": "-1"} for c in configs.values()), configs
    for node in (1, 2, 3):
        properties = (RUN_DIR / f"kafka-{node}" / "server.properties").read_text()
        assert "process.roles=broker,controller" in properties
        assert len(re.search(r"controller.quorum.voters=(\S+)", properties)[1].split(",")) == 3  # type: ignore[index]


async def test_two_instances_of_every_service_are_ready_and_the_front_door_uses_both(
    cluster: Cluster, client: httpx.AsyncClient
) -> None:
    for entry in TABLE:
        for instance in ("a", "b"):
            response = await client.get(cluster.instance_url(entry.name, instance) + "/readyz")
            assert response.status_code == 200, (entry.name, instance, response.text)
    # Round robin over both servers of a backend: the access log names the server of each request.
    marks = []
    for _ in range(6):
        mark = f"cluster-{uuid.uuid4().hex[:10]}"
        response = await client.get(cluster.front + "/v1/draws", headers={"X-Correlation-Id": mark})
        assert response.status_code == 200, response.text
        marks.append(mark)

    async def servers() -> Counter[str] | None:
        log = (RUN_DIR / "logs" / "frontdoor.log").read_text()
        found = Counter(
            m[1] for m in re.finditer(r"be_draws/(draws\d) .* cid=(cluster-\w+)", log) if m[2] in marks
        )
        return found if sum(found.values()) == len(marks) else None

    used = await poll(servers, 10, "the front door's log of the six requests")
    assert set(used) == {"draws1", "draws2"}, used


async def test_a_profile_written_through_the_front_door_is_in_the_pool_of_both_ranking_instances(
    cluster: Cluster, client: httpx.AsyncClient
) -> None:
    partner = {"Authorization": f"Bearer {mint_token(SECRET, 'cluster-partner', 'partner', None)}"}
    ops = {"Authorization": f"Bearer {mint_token(SECRET, 'cluster-ops', 'ops', None)}"}
    (document,) = varied_documents(1, date.today(), seed=41)
    created = await client.post(cluster.front + "/v1/profiles", json=document, headers=partner)
    assert created.status_code == 201, created.text
    profile_id = created.json()["id"]
    submitted = await client.post(
        cluster.front + f"/v1/profiles/{profile_id}/submit",
        headers={**partner, "If-Match": created.headers["ETag"]},
    )
    assert submitted.status_code == 200, submitted.text

    async def standing(instance: str) -> int | None:
        url = cluster.instance_url("ranking", instance) + f"/v1/pool/candidates/{profile_id}"
        response = await client.get(url, headers=ops)
        return int(response.json()["crs"]) if response.status_code == 200 else None

    scores = await asyncio.gather(
        poll(lambda: standing("a"), 60, "ranking a to hold the profile"),
        poll(lambda: standing("b"), 60, "ranking b to hold the profile"),
    )
    assert scores[0] == scores[1], scores


async def test_a_second_make_cluster_changes_nothing(cluster: Cluster) -> None:
    before = cluster.pids()
    assert len([p for p in before if p.endswith("kafka.pid")]) == 3, before
    assert len([p for p in before if p.startswith(("a/", "b/"))]) == 2 * len(TABLE), before
    output = await asyncio.to_thread(make, "cluster", cluster.env)
    assert cluster.pids() == before, output
    assert not re.search(r"started uvicorn|started kafka|started documents|started HAProxy", output), output
    assert "(0 created)" in output, output
