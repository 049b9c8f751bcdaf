"""Kafka administration: the event topics, the cluster id and broker readiness.

Topics are created explicitly (the local broker runs with ``auto.create.topics.enable=false``):
every event topic of the catalogue keeps its data forever (``retention.ms=-1``, the log is the
source for rebuilds) and has a ``.dlq`` twin. Names carry a prefix (``EE_TOPIC_PREFIX``) so a test
run never shares topics with the system ``make up`` started.

Command line (bootstrap from ``--bootstrap`` or ``KAFKA_BOOTSTRAP_SERVERS``, default 127.0.0.1:9092)::

    python -m shared.kafka_admin ensure-topics --prefix test1700000000.
    python -m shared.kafka_admin cluster-id
    python -m shared.kafka_admin ready --timeout 30
    python -m shared.kafka_admin delete-topics --prefix test1700000000.
    python -m shared.kafka_admin purge-test-topics --older-than 3600
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import sys
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code

log = logging.getLogger(__name__)

EVENT_TOPICS: list[str] = [
    "ee.profile.events",
    "ee.ranking.events",
    "ee.draws.events",
    "ee.applications.events",
    "ee.notifications.events",
]
DLQ_SUFFIX = ".dlq"
DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
DEFAULT_PARTITIONS = 6
# Event topics and their dead-letter twins keep every record: the log is the source for rebuilds.
TOPIC_CONFIGS: dict[str, str] = {"retention.ms": "-1"}
# Prefixes `make test` gives each run: "test" + unix time + ".".
TEST_PREFIX_RE = re.compile(r"^test(\d{9,})\.")

_UNKNOWN_TOPIC_OR_PARTITION = 3


class KafkaAdminError(RuntimeError):
    """A Kafka admin request failed with an error the caller cannot ignore."""


def topic_name(base: str, prefix: str = "") -> str:
    """The real name of an event topic under a prefix: ``topic_name("ee.draws.events", "t1.")``."""
    return f"{prefix}{base}"


def dlq_topic(topic: str) -> str:
    """The dead-letter twin of a topic (``<topic>.dlq``)."""
    return f"{topic}{DLQ_SUFFIX}"


def all_topic_names(prefix: str = "") -> list[str]:
    """Every topic :func:`ensure_topics` manages for ``prefix``: event topics, then their DLQs."""
    events = [topic_name(base, prefix) for base in EVENT_TOPICS]
    return events + [dlq_topic(t) for t in events]


def default_bootstrap() -> str:
    return os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or DEFAULT_BOOTSTRAP


@asynccontextmanager
async def admin_client(
    bootstrap: str, *, request_timeout_ms: int = 30_000
) -> AsyncIterator[AIOKafkaAdminClient]:
    """A started admin client, closed on exit."""
    client = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id="ee-kafka-admin",
        request_timeout_ms=request_timeout_ms,
    )
    try:
        await client.start()
        yield client
    finally:
        await client.close()


def _raise_for(code: int, what: str, message: str | None = None) -> None:
    if code:
        error = for_code(code)
        raise KafkaAdminError(f"{what}: {error.__name__} ({code}){': ' + message if message else ''}")


async def _create(
    client: AIOKafkaAdminClient, names: Sequence[str], partitions: int, replication_factor: int = 1
) -> list[str]:
    """Create ``names``; return those that did not exist. Retries briefly on retriable errors."""
    pending = list(names)
    created: list[str] = []
    for attempt in range(10):
        new = [
            NewTopic(n, partitions, replication_factor, topic_configs=dict(TOPIC_CONFIGS)) for n in pending
        ]
        response: dict[str, Any] = (await client.create_topics(new)).to_object()
        retry: list[str] = []
        for result in response["topic_errors"]:
            name, code = result["topic"], result["error_code"]
            if code == 0:
                created.append(name)
            elif code == TopicAlreadyExistsError.errno:
                continue
            elif for_code(code).retriable and attempt < 9:
                retry.append(name)
            else:
                _raise_for(code, f"creating topic {name}", result.get("error_message"))
        if not retry:
            return created
        pending = retry
        await asyncio.sleep(0.2 * (attempt + 1))
    return created


async def _describe_configs(
    client: AIOKafkaAdminClient, topics: Iterable[str], keys: Sequence[str] | None
) -> dict[str, dict[str, str]]:
    wanted = {k: None for k in keys} if keys else None
    resources = [ConfigResource(ConfigResourceType.TOPIC, t, wanted) for t in topics]
    if not resources:
        return {}
    out: dict[str, dict[str, str]] = {}
    for response in await client.describe_configs(resources):
        for resource in response.to_object()["resources"]:
            name = resource["resource_name"]
            _raise_for(resource["error_code"], f"describing topic {name}", resource["error_message"])
            out[name] = {e["config_names"]: e["config_value"] for e in resource["config_entries"]}
    return out


async def topic_configs(
    bootstrap: str, topics: Iterable[str], keys: Sequence[str] | None = None
) -> dict[str, dict[str, str]]:
    """Effective configuration of topics: ``{topic: {key: value}}`` (only ``keys`` when given)."""
    async with admin_client(bootstrap) as client:
        return await _describe_configs(client, topics, keys)


async def ensure_topics(
    bootstrap: str, prefix: str = "", partitions: int = DEFAULT_PARTITIONS, replication_factor: int = 1
) -> list[str]:
    """Create every event topic under ``prefix`` and its ``.dlq`` twin, with ``retention.ms=-1``
    (``replication_factor`` copies of each partition: 3 on the local cluster of ``make cluster``).

    Idempotent: topics that already exist are kept (their partition count is never changed, since
    that would move keys between partitions); one whose retention is not -1 gets it set back.
    Returns the names of the topics this call created.
    """
    names = all_topic_names(prefix)
    async with admin_client(bootstrap) as client:
        created = await _create(client, names, partitions, replication_factor)
        existing = [n for n in names if n not in created]
        if existing:
            configs = await _describe_configs(client, existing, list(TOPIC_CONFIGS))
            drifted = [n for n in existing if configs.get(n, {}).get("retention.ms") != "-1"]
            if drifted:
                log.warning("setting retention.ms=-1 back on %s", ", ".join(drifted))
                resources = [
                    ConfigResource(ConfigResourceType.TOPIC, n, dict(TOPIC_CONFIGS)) for n in drifted
                ]
                for response in await client.alter_configs(resources):
                    for resource in response.to_object()["resources"]:
                        _raise_for(
                            resource["error_code"],
                            f"altering topic {resource['resource_name']}",
                            resource["error_message"],
                        )
    if created:
        log.info("created topics %s", ", ".join(created))
    return created


async def delete_topics(bootstrap: str, topics: Sequence[str]) -> list[str]:
    """Delete the given topics (missing ones are ignored); return those deleted."""
    if not topics:
        return []
    async with admin_client(bootstrap) as client:
        response: dict[str, Any] = (await client.delete_topics(list(topics))).to_object()
    deleted: list[str] = []
    for result in response["topic_error_codes"]:
        code = result["error_code"]
        if code == 0:
            deleted.append(result["topic"])
        elif code != _UNKNOWN_TOPIC_OR_PARTITION:
            _raise_for(code, f"deleting topic {result['topic']}")
    return deleted


async def list_topics(bootstrap: str) -> list[str]:
    """Names of every topic in the cluster (internal ones included)."""
    async with admin_client(bootstrap) as client:
        return sorted(await client.list_topics())


async def delete_topics_with_prefix(bootstrap: str, prefix: str) -> list[str]:
    """Delete every topic whose name starts with ``prefix`` (which must not be empty)."""
    if not prefix:
        raise ValueError("refusing to delete topics with an empty prefix")
    return await delete_topics(bootstrap, [t for t in await list_topics(bootstrap) if t.startswith(prefix)])


async def purge_test_topics(bootstrap: str, older_than_s: float = 3600.0) -> list[str]:
    """Delete topics of earlier test runs (prefix ``test<unix time>.``) older than ``older_than_s``.

    Event topics keep their data forever, so without this every ``make test`` would leave eight
    topics behind. Recent prefixes are kept: another test run may still be using them.
    """
    cutoff = time.time() - older_than_s
    stale = []
    for topic in await list_topics(bootstrap):
        match = TEST_PREFIX_RE.match(topic)
        if match and int(match.group(1)) < cutoff:
            stale.append(topic)
    return await delete_topics(bootstrap, stale)


async def cluster_id(bootstrap: str) -> str:
    """The Kafka cluster id (consumers store it with their positions)."""
    async with admin_client(bootstrap) as client:
        description: dict[str, Any] = await client.describe_cluster()
    cid = description.get("cluster_id")
    if not cid:
        raise KafkaAdminError(f"the broker at {bootstrap} reported no cluster id")
    return str(cid)


async def log_offsets(bootstrap: str, topics: Sequence[str]) -> list[tuple[str, int, int, int]]:
    """(topic, partition, beginning offset, end offset) of every partition of `topics`, sorted; a topic
    that does not exist has none."""
    async with admin_client(bootstrap) as client:
        described = await client.describe_topics(list(topics))
    partitions = [
        TopicPartition(t["topic"], p["partition"])
        for t in described
        if not t["error_code"]
        for p in t["partitions"]
    ]
    if not partitions:
        return []
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await reader.start()
    try:
        begin = await reader.beginning_offsets(partitions)
        end = await reader.end_offsets(partitions)
    finally:
        await reader.stop()
    return [(tp.topic, tp.partition, begin[tp], end[tp]) for tp in sorted(partitions)]


async def kafka_ready(bootstrap: str, timeout: float = 30.0) -> bool:  # noqa: ASYNC109 (the agreed API)
    """Wait up to ``timeout`` seconds for the cluster to answer a metadata request with a controller."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        try:
            async with asyncio.timeout(max(remaining, 0.1)):
                async with admin_client(bootstrap, request_timeout_ms=5_000) as client:
                    description: dict[str, Any] = await client.describe_cluster()
            if description.get("brokers") and description.get("controller_id", -1) >= 0:
                return True
        except (KafkaError, OSError, TimeoutError) as exc:
            log.debug("Kafka at %s not ready yet: %s", bootstrap, exc)
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.2)


_DESCRIPTION = "Kafka administration for the Express Entry backend: topics, cluster id, readiness."


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m shared.kafka_admin", description=_DESCRIPTION)
    parser.add_argument(
        "--bootstrap",
        default=default_bootstrap(),
        help="bootstrap servers (default: $KAFKA_BOOTSTRAP_SERVERS or %(default)s)",
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    ensure = sub.add_parser("ensure-topics", help="create the event topics and their .dlq twins")
    ensure.add_argument(
        "--prefix",
        default=os.environ.get("EE_TOPIC_PREFIX", ""),
        help="topic name prefix (default: $EE_TOPIC_PREFIX or empty)",
    )
    ensure.add_argument("--partitions", type=int, default=DEFAULT_PARTITIONS)
    ensure.add_argument(
        "--replication-factor",
        type=int,
        default=int(os.environ.get("EE_KAFKA_REPLICATION_FACTOR") or 1),
        help="copies of each partition (default: $EE_KAFKA_REPLICATION_FACTOR or 1)",
    )

    sub.add_parser("cluster-id", help="print the cluster id")

    ready = sub.add_parser("ready", help="exit 0 once the broker answers, 1 after --timeout")
    ready.add_argument("--timeout", type=float, default=30.0)

    delete = sub.add_parser("delete-topics", help="delete every topic whose name starts with --prefix")
    delete.add_argument("--prefix", required=True)

    purge = sub.add_parser("purge-test-topics", help="delete topics of test runs older than --older-than")
    purge.add_argument("--older-than", type=float, default=3600.0, help="seconds (default %(default)s)")
    return parser


async def _main(args: argparse.Namespace) -> int:
    bootstrap: str = args.bootstrap
    if args.command == "ensure-topics":
        created = await ensure_topics(bootstrap, args.prefix, args.partitions, args.replication_factor)
        names = all_topic_names(args.prefix)
        print(
            f"{len(names)} topics present ({len(created)} created) with prefix {args.prefix!r} on {bootstrap}"
        )
    elif args.command == "cluster-id":
        print(await cluster_id(bootstrap))
    elif args.command == "ready":
        if not await kafka_ready(bootstrap, args.timeout):
            print(f"Kafka at {bootstrap} did not answer within {args.timeout:g}s", file=sys.stderr)
            return 1
    elif args.command == "delete-topics":
        deleted = await delete_topics_with_prefix(bootstrap, args.prefix)
        print(f"deleted {len(deleted)} topics with prefix {args.prefix!r}")
    elif args.command == "purge-test-topics":
        deleted = await purge_test_topics(bootstrap, args.older_than)
        print(f"deleted {len(deleted)} topics of earlier test runs")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(message)s")
    if not args.verbose:
        # aiokafka logs every refused connection at ERROR; the command's own message is enough.
        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    try:
        return asyncio.run(_main(args))
    except (KafkaError, KafkaAdminError, OSError) as exc:
        print(f"kafka_admin {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
