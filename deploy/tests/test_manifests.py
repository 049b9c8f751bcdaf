"""The production manifests (issue 11, part 4), checked without Docker or a Kubernetes cluster.

Every manifest under deploy/ parses; every container of the project's image sets only environment
variables that the code it runs reads (the settings' variables, found in the settings classes and as
literals in the code), listens on its port of `deploy/services.conf` and is probed on `/readyz` and
`/healthz`, paths its application serves; the compose file and the production kustomize overlay agree
with each other and with the table (services, commands, ports, variables, topics, databases, routes).

The overlay is built by `kustomize_build` below: the subset of kustomize the overlay uses (resources,
namespace, images, labels, patches by kind and name with strategic merge for built-in kinds and JSON
merge for custom resources). It refuses any kustomization field it does not implement, so a new field
cannot pass unchecked. kustomize itself did not run here (deploy/README.md).
"""

from __future__ import annotations

import ast
import copy
import importlib
import re
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import Any, Final

import pytest
import yaml

from shared.events.catalogue import EVENT_TOPICS
from shared.gateway import DOCS_OFFSET, compose_haproxy, load_table
from shared.kafka_admin import all_topic_names
from shared.settings import ServiceSettings, env_var_names

ROOT: Final = Path(__file__).resolve().parents[2]
DEPLOY: Final = ROOT / "deploy"
COMPOSE: Final = DEPLOY / "compose" / "compose.yaml"
BASE: Final = DEPLOY / "kubernetes" / "base"
PRODUCTION: Final = DEPLOY / "kubernetes" / "overlays" / "production"
TABLE: Final = load_table()
NAMES: Final = [entry.name for entry in TABLE]
WITH_DATABASE: Final = [name for name in NAMES if (ROOT / "services" / name / "alembic.ini").exists()]
"""The services that own a database: those with migrations (not the console, which reads the others)."""
PORTS: Final = {entry.name: entry.port() for entry in TABLE}
IMAGE: Final = "ee-backend"
ENV_NAME: Final = re.compile(r"^(EE_[A-Z0-9_]+|KAFKA_BOOTSTRAP_SERVERS)$")
RANKING_BYTES_AT_1M: Final = 1.3e9  # make bench: the ranking process holds about 1.3 GB at 1M profiles


# --- what the code reads ---------------------------------------------------------------------------


def _literals(paths: Iterable[Path]) -> set[str]:
    """Environment-variable names written as string literals in the code (os.environ.get("EE_X"),
    helpers such as _env_flag("EE_X"), typer's envvar="EE_X")."""
    found: set[str] = set()
    for path in paths:
        if "tests" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and ENV_NAME.match(node.value):
                found.add(node.value)
    return found


@cache
def shared_reads() -> frozenset[str]:
    return frozenset(_literals((ROOT / "shared").rglob("*.py")))


@cache
def settings_class(service: str) -> type[ServiceSettings] | None:
    """The service's ServiceSettings subclass; None for a service without a database (the console reads
    its few variables by name, found as literals in its code)."""
    module = importlib.import_module(f"{service}_service.settings")
    classes = [
        value for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, ServiceSettings) and value.service_name == service
    ]  # fmt: skip
    if service not in WITH_DATABASE and not classes:
        return None
    assert len(classes) == 1, f"{service}_service.settings: {classes}"
    return classes[0]


@cache
def reads(service: str) -> frozenset[str]:
    """Every variable the service's process can read: its settings' and the literals of its code."""
    package = ROOT / "services" / service / f"{service}_service"
    settings = settings_class(service)
    names = set(env_var_names(settings).values()) if settings is not None else set()
    names |= _literals(package.rglob("*.py"))
    return frozenset(names | shared_reads())


@cache
def served_paths(service: str) -> frozenset[str]:
    app = importlib.import_module(f"{service}_service.main").app
    return frozenset(app.openapi()["paths"])


# --- loading ------------------------------------------------------------------------------------------


def load_all(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def _merge(target: Any, patch: Any, strategic: bool) -> Any:
    if isinstance(target, dict) and isinstance(patch, dict):
        for key, value in patch.items():
            target[key] = _merge(target[key], value, strategic) if key in target else copy.deepcopy(value)
        return target
    by_name = (
        strategic and isinstance(target, list) and isinstance(patch, list)
        and all(isinstance(i, dict) and "name" in i for i in [*target, *patch])
    )  # fmt: skip
    if by_name:
        for item in patch:
            match = next((t for t in target if t["name"] == item["name"]), None)
            if match is None:
                target.append(copy.deepcopy(item))
            else:
                _merge(match, item, strategic)
        return target
    return copy.deepcopy(patch)


_BUILT_IN: Final = re.compile(r"^(v1|apps/v1|batch/v1|policy/v1|autoscaling/v2|networking\.k8s\.io/v1)$")
_CLUSTER_SCOPED: Final = {"Namespace"}
_SUPPORTED: Final = {"apiVersion", "kind", "resources", "patches", "namespace", "images", "labels"}


def kustomize_build(directory: Path) -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(kustomization) - _SUPPORTED
    assert not unknown, f"{directory}: kustomization fields this check does not implement: {unknown}"
    docs: list[dict[str, Any]] = []
    for resource in kustomization.get("resources", []):
        path = directory / resource
        docs += kustomize_build(path) if path.is_dir() else load_all(path)
    for patch in kustomization.get("patches", []):
        assert set(patch) == {"path"}, f"{directory}: only patches by path are implemented: {patch}"
        for change in load_all(directory / patch["path"]):
            targets = [
                d for d in docs
                if d["kind"] == change["kind"] and d["metadata"]["name"] == change["metadata"]["name"]
            ]  # fmt: skip
            assert len(targets) == 1, (
                f"patch of {change['kind']}/{change['metadata']['name']}: {len(targets)}"
            )
            _merge(targets[0], change, strategic=bool(_BUILT_IN.match(change["apiVersion"])))
    for label in kustomization.get("labels", []):
        for doc in docs:
            doc["metadata"].setdefault("labels", {}).update(label["pairs"])
    if namespace := kustomization.get("namespace"):
        for doc in docs:
            if doc["kind"] not in _CLUSTER_SCOPED:
                doc["metadata"]["namespace"] = namespace
    for image in kustomization.get("images", []):
        for container in containers(docs):
            if container["image"] == image["name"]:
                container["image"] = f"{image['newName']}:{image['newTag']}"
    return docs


def pod_specs(docs: Iterable[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for doc in docs:
        if doc["kind"] in ("Deployment", "Job"):
            yield doc, doc["spec"]["template"]["spec"]


def containers(docs: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for _, spec in pod_specs(docs):
        yield from spec.get("initContainers", [])
        yield from spec["containers"]


@cache
def overlay() -> tuple[dict[str, Any], ...]:
    return tuple(kustomize_build(PRODUCTION))


@cache
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return document


def of_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in overlay() if d["kind"] == kind}


def k8s_env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The container's variables (envFrom ConfigMaps expanded): name -> its env entry or {"value": ...}."""
    maps = of_kind("ConfigMap")
    env: dict[str, dict[str, Any]] = {}
    for source in container.get("envFrom", []):
        assert set(source) == {"configMapRef"}, source
        for key, value in maps[source["configMapRef"]["name"]]["data"].items():
            env[key] = {"value": value}
    for entry in container.get("env", []):
        env[entry["name"]] = entry
    return env


def ours(image: str) -> bool:
    return image == IMAGE or image.split("/")[-1].split(":")[0] == IMAGE


def service_of_args(args: list[str]) -> str | None:
    """The service a container of our image runs: `serve NAME`; None for migrate/topics/gateway."""
    return args[1] if args[:1] == ["serve"] else None


# --- every manifest -------------------------------------------------------------------------------------


def test_every_manifest_parses_and_names_its_kind() -> None:
    paths = sorted([*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")])
    assert len(paths) >= 10, paths
    for path in paths:
        for doc in load_all(path):
            assert isinstance(doc, dict), path
            if path.is_relative_to(DEPLOY / "kubernetes") and path.name != "kustomization.yaml":
                assert doc.get("apiVersion") and doc.get("kind") and doc["metadata"].get("name"), path
    assert overlay(), "the production overlay builds to nothing"


def test_the_dockerfile_is_multi_stage_non_root_and_takes_the_service_as_argument() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM \S+ AS \w+$", text, re.MULTILINE)) >= 2
    users = re.findall(r"^USER (\S+)$", text, re.MULTILINE)
    assert users and users[-1].split(":")[0] not in ("root", "0"), users
    assert 'ENTRYPOINT ["/usr/local/bin/ee"]' in text
    entry = (DEPLOY / "docker-entrypoint.sh").read_text()
    for command in ("serve)", "migrate)", "topics)", "gateway)", "probe)"):
        assert command in entry
    assert "deploy/services.conf" in entry and 'uvicorn "${name}_service.main:app"' in entry


# --- variables, ports, probes ------------------------------------------------------------------------


def test_every_variable_a_kubernetes_container_sets_is_read_by_the_code_it_runs() -> None:
    checked = 0
    for container in containers(overlay()):
        if not ours(container["image"]):
            continue
        service = service_of_args(container["args"])
        allowed = reads(service) if service else frozenset().union(*(reads(n) for n in NAMES))
        unknown = set(k8s_env(container)) - allowed
        assert not unknown, f"{container['name']} sets variables nothing reads: {sorted(unknown)}"
        checked += 1
    assert checked >= len(NAMES) + 2  # the services, the gateway, the migrations


def test_every_variable_a_compose_service_sets_is_read_by_the_code_it_runs() -> None:
    for name, service in compose()["services"].items():
        if service.get("image") != f"{IMAGE}:local":
            continue
        runs = service_of_args(service["command"])
        allowed = reads(runs) if runs else frozenset().union(*(reads(n) for n in NAMES))
        unknown = set(service.get("environment", {})) - allowed
        assert not unknown, f"compose {name} sets variables nothing reads: {sorted(unknown)}"


@pytest.mark.parametrize("service", NAMES)
def test_kubernetes_ports_and_probes_of_each_service(service: str) -> None:
    deployment = of_kind("Deployment")[service]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["serve", service]
    assert [p["containerPort"] for p in container["ports"]] == [PORTS[service]]
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = container[probe]["httpGet"]
        assert get["path"] == path, (probe, get)
        assert named.get(get["port"], get["port"]) == PORTS[service], (probe, get)
        assert path in served_paths(service), f"{service} does not serve {path}"
    svc = of_kind("Service")[service]
    assert [(p["port"], p["targetPort"]) for p in svc["spec"]["ports"]] == [(PORTS[service], "http")]
    assert svc["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert container["resources"]["requests"] and container["resources"]["limits"]


@pytest.mark.parametrize("service", NAMES)
def test_compose_ports_command_and_health_check_of_each_service(service: str) -> None:
    entry = compose()["services"][service]
    assert entry["command"] == ["serve", service]
    assert [p.rsplit(":", 1)[1] for p in entry["ports"]] == [str(PORTS[service])]
    assert entry["healthcheck"]["test"] == ["CMD", "ee", "probe", service, "/readyz"]
    assert "/readyz" in served_paths(service)


# --- compose and the overlay agree ---------------------------------------------------------------------


def _compose_value(value: str) -> str:
    """A compose value with its ${VAR:-default} interpolations resolved to their defaults."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


@pytest.mark.parametrize("service", NAMES)
def test_compose_and_the_overlay_set_the_same_variables_for_each_service(service: str) -> None:
    (container,) = of_kind("Deployment")[service]["spec"]["template"]["spec"]["containers"]
    k8s = k8s_env(container)
    local = compose()["services"][service]["environment"]
    assert set(k8s) == set(local), (sorted(k8s), sorted(local))
    for name, entry in k8s.items():
        if "value" in entry and name not in ("EE_ENV",):  # production there, development on a laptop
            assert _compose_value(str(local[name])) == entry["value"] or name == "KAFKA_BOOTSTRAP_SERVERS", (
                name
            )
        secret_like = any(word in name for word in ("SECRET", "PASSWORD", "DATABASE_URL"))
        if secret_like:
            assert "secretKeyRef" in entry.get("valueFrom", {}), f"{service}: {name} must come from a Secret"
    assert k8s["KAFKA_BOOTSTRAP_SERVERS"]["value"].endswith(":9092")
    assert local["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"


def test_draws_finds_ranking_by_its_service_name_and_port_in_both() -> None:
    (container,) = of_kind("Deployment")["draws"]["spec"]["template"]["spec"]["containers"]
    expected = f"http://ranking:{PORTS['ranking']}"
    assert k8s_env(container)["EE_DRAWS_RANKING_URL"]["value"] == expected
    assert compose()["services"]["draws"]["environment"]["EE_DRAWS_RANKING_URL"] == expected


def test_both_create_every_topic_and_database_and_run_the_migrations() -> None:
    topics = {d["spec"]["topicName"]: d for d in of_kind("KafkaTopic").values()}
    assert set(topics) == set(all_topic_names("")) and len(EVENT_TOPICS) * 2 == len(topics)
    for topic in topics.values():
        assert topic["spec"]["replicas"] == 3 and topic["spec"]["config"]["min.insync.replicas"] == 2
        assert topic["spec"]["config"]["retention.ms"] == -1
    kafka = of_kind("Kafka")["ee-kafka"]
    assert kafka["spec"]["kafka"]["config"]["min.insync.replicas"] == 2
    assert kafka["spec"]["kafka"]["config"]["default.replication.factor"] == 3
    assert sum(p["spec"]["replicas"] for p in of_kind("KafkaNodePool").values()) >= 3
    assert compose()["services"]["topics"]["command"] == ["topics"]

    cluster = of_kind("Cluster")["ee-postgres"]
    databases = {cluster["spec"]["bootstrap"]["initdb"]["database"]}
    databases |= {d["spec"]["name"] for d in of_kind("Database").values()}
    assert databases == set(WITH_DATABASE) and {"profile", "ranking", "draws", "applications"} <= databases
    sql = (DEPLOY / "compose" / "initdb.sql").read_text()
    assert set(re.findall(r"CREATE DATABASE (\w+) OWNER ee;", sql)) == set(WITH_DATABASE)

    (job,) = of_kind("Job").values()
    (migrate,) = job["spec"]["template"]["spec"]["containers"]
    assert migrate["args"] == ["migrate"]
    urls = {f"EE_{n.upper()}_DATABASE_URL" for n in WITH_DATABASE}
    assert urls <= set(k8s_env(migrate)) and urls <= set(compose()["services"]["migrate"]["environment"])
    for service in NAMES:
        assert compose()["services"][service]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )


def test_both_front_doors_route_the_table() -> None:
    (ingress,) = of_kind("Ingress").values()
    routed = {
        p["path"]: p["backend"]["service"]["name"]
        for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]
    }  # fmt: skip
    expected = {route: entry.name for entry in TABLE for route in entry.routes}
    assert {k: v for k, v in routed.items() if v != "gateway"} == expected
    assert routed["/openapi.json"] == routed["/docs"] == "gateway"
    assert (DEPLOY / "compose" / "haproxy.cfg").read_text() == compose_haproxy(TABLE) + "\n", (
        "deploy/compose/haproxy.cfg is stale: python -m shared.gateway render-haproxy --compose > it"
    )
    upstreams = {f"{e.name}=http://{e.name}:{e.port()}" for e in TABLE}
    (gateway,) = of_kind("Deployment")["gateway"]["spec"]["template"]["spec"]["containers"]
    assert set(k8s_env(gateway)["EE_GATEWAY_UPSTREAMS"]["value"].split(",")) == upstreams
    assert (
        set(compose()["services"]["gateway"]["environment"]["EE_GATEWAY_UPSTREAMS"].split(",")) == upstreams
    )
    assert gateway["ports"][0]["containerPort"] == 8000 + DOCS_OFFSET


# --- availability and sizing -------------------------------------------------------------------------------


_UNITS: Final = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "K": 10**3, "M": 10**6, "G": 10**9}


def memory_bytes(quantity: str) -> float:
    number, unit = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", quantity).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS.get(unit, 1)


def test_disruption_budgets_autoscalers_and_sizes() -> None:
    deployments = of_kind("Deployment")
    budgets = of_kind("PodDisruptionBudget")
    autoscalers = {
        h["spec"]["scaleTargetRef"]["name"]: h for h in of_kind("HorizontalPodAutoscaler").values()
    }
    for service in NAMES:
        budget = budgets[service]
        labels = deployments[service]["spec"]["template"]["metadata"]["labels"]
        assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    stateless = [n for n in NAMES if n != "ranking"]
    assert set(autoscalers) == set(stateless), "an HPA for each stateless service, none for ranking"
    for service in stateless:
        assert autoscalers[service]["spec"]["minReplicas"] >= 2
        assert deployments[service]["spec"]["replicas"] >= autoscalers[service]["spec"]["minReplicas"]
    # Every service, ranking too (no singleton: scoring split by partitions, each replica answers over
    # the whole pool): two replicas or more, updated one new pod at a time with none taken away before
    # its successor is ready, and a budget that keeps one up during a drain.
    for service in NAMES:
        spec = deployments[service]["spec"]
        assert spec["replicas"] >= 2, service
        assert spec["strategy"]["type"] == "RollingUpdate", service
        assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0, service
        assert budgets[service]["spec"]["minAvailable"] >= 1, service
        assert "maxUnavailable" not in budgets[service]["spec"], service
    ranking = deployments["ranking"]
    (container,) = ranking["spec"]["template"]["spec"]["containers"]
    assert memory_bytes(container["resources"]["requests"]["memory"]) >= RANKING_BYTES_AT_1M
    assert memory_bytes(container["resources"]["limits"]["memory"]) > memory_bytes(
        container["resources"]["requests"]["memory"]
    )
    for each in containers(overlay()):
        assert each["resources"]["requests"] and each["resources"]["limits"], each["name"]


def test_secrets_are_referenced_never_written_and_pods_run_as_non_root() -> None:
    assert not [d for d in overlay() if d["kind"] == "Secret"]
    for doc, spec in pod_specs(overlay()):
        assert spec["securityContext"]["runAsNonRoot"] is True, doc["metadata"]["name"]
        for container in spec["containers"]:
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            for entry in container.get("env", []):
                if any(word in entry["name"] for word in ("SECRET", "PASSWORD", "DATABASE_URL")):
                    assert "secretKeyRef" in entry.get("valueFrom", {}), entry
    for container in containers(overlay()):
        if ours(container["image"]):
            assert container["image"].startswith("registry.") and ":" in container["image"], container[
                "image"
            ]
    assert {d["metadata"].get("namespace") for d in overlay() if d["kind"] != "Namespace"} == {
        "express-entry"
    }
