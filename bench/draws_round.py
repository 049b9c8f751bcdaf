"""Benchmark: hold one round against running services and time it until every Invited is on Kafka.

    python -m bench.draws_round --size 10000 [--type general] [--draws-url http://127.0.0.1:8003]

Needs the draws service, the ranking service (with its pool loaded, e.g. 1,000,000 profiles) and
Kafka running, with the same `EE_AUTH_SECRET` and `EE_TOPIC_PREFIX` as the services. Reports:
- `persisted`: request sent -> 201 received (the round and all its ITAs are committed, and the
  Invited events are in the outbox, in the same transaction);
- `published`: request sent -> the last Invited of the round read back from the draws topic.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
import orjson
import typer
from aiokafka import AIOKafkaConsumer, TopicPartition
from rich.console import Console

from draws_service.settings import DrawsSettings
from shared import kafka_admin
from shared.auth import mint_token
from shared.envelope import decode
from shared.events.catalogue import DRAWS_TOPIC

console = Console()
bench = typer.Typer(help=__doc__, no_args_is_help=False)


@dataclass
class Timings:
    persisted_s: float
    published_s: float
    invitations: int


async def _tail(settings: DrawsSettings) -> AIOKafkaConsumer:
    """A group-less consumer positioned at the end of every partition of the draws topic."""
    topic = settings.topic(DRAWS_TOPIC)
    async with kafka_admin.admin_client(settings.kafka_bootstrap_servers) as admin:
        described = await admin.describe_topics([topic])
    partitions = [
        TopicPartition(topic, p["partition"])
        for t in described
        if not t["error_code"]
        for p in t["partitions"]
    ]
    if not partitions:
        raise typer.BadParameter(f"topic {topic} does not exist; check EE_TOPIC_PREFIX")
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False)
    await consumer.start()
    consumer.assign(partitions)
    await consumer.seek_to_end(*partitions)
    for partition in partitions:
        await consumer.position(partition)
    return consumer


async def _count_invited(consumer: AIOKafkaConsumer, round_id: str, expected: int, timeout_s: float) -> None:
    seen = 0
    deadline = time.monotonic() + timeout_s
    while seen < expected:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {seen:,} of {expected:,} Invited events arrived within {timeout_s:g}s")
        batches = await consumer.getmany(timeout_ms=200, max_records=10_000)
        for records in batches.values():
            seen += sum(1 for r in records if _is_invited_of(r.value, round_id))


def _is_invited_of(value: bytes | None, round_id: str) -> bool:
    if value is None:
        return False
    envelope = decode(value)
    return envelope.name == "Invited" and envelope.data.get("round_id") == round_id


async def run(draws_url: str, round_type: str, size: int, timeout_s: float) -> Timings:
    settings = DrawsSettings()
    token = mint_token(settings.auth_secret, "bench", "ops")
    consumer = await _tail(settings)
    try:
        async with httpx.AsyncClient(base_url=draws_url, timeout=timeout_s) as client:
            started = time.perf_counter()
            response = await client.post(
                "/v1/draws",
                content=orjson.dumps({"type": round_type, "size": size}),
                headers={
                    "Authorization": f"Bearer {token}",
                    "Idempotency-Key": str(uuid.uuid4()),
                    "Content-Type": "application/json",
                },
            )
            persisted = time.perf_counter() - started
            response.raise_for_status()
            held: dict[str, Any] = response.json()
        await _count_invited(consumer, held["id"], held["invitations"], timeout_s)
        return Timings(persisted, time.perf_counter() - started, held["invitations"])
    finally:
        await consumer.stop()


@bench.command()
def main(
    size: Annotated[int, typer.Option(help="Invitations to issue.")] = 10_000,
    round_type: Annotated[str, typer.Option("--type", help="Round type.")] = "general",
    draws_url: Annotated[str, typer.Option(envvar="EE_DRAWS_URL")] = "http://127.0.0.1:8003",
    timeout_s: Annotated[float, typer.Option(help="Give up after this many seconds.")] = 120.0,
) -> None:
    timings = asyncio.run(run(draws_url, round_type, size, timeout_s))
    console.print(
        f"round of {timings.invitations:,} invitations: persisted in {timings.persisted_s:.2f}s, "
        f"all Invited on Kafka in {timings.published_s:.2f}s (target 5 s)"
    )


if __name__ == "__main__":
    bench()
