"""The one way the platform makes a Kafka producer: idempotent, `acks="all"`, named after its role.

```python
producer = await start_producer(settings, "relay", max_batch_size=1 << 20, linger_ms=0)
```

Idempotence makes the broker drop the duplicates of the producer's own retries and keep per-partition
order (it implies `acks="all"`); every producer of the platform (the outbox relay, the consumers'
dead-letter queues, the ranking replay's dead letters) is made here, so they cannot drift apart.
"""

from __future__ import annotations

from typing import Any, Protocol

from aiokafka import AIOKafkaProducer

__all__ = ["REQUEST_TIMEOUT_MS", "producer_options", "start_producer"]

REQUEST_TIMEOUT_MS = 10_000


class _KafkaSettings(Protocol):
    @property
    def kafka_bootstrap_servers(self) -> str: ...

    @property
    def service_name(self) -> str: ...


def producer_options(settings: _KafkaSettings, role: str, **overrides: Any) -> dict[str, Any]:
    """The options of a producer of `settings`' service for `role` (its client id `ee-<service>-<role>`)."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "client_id": f"ee-{settings.service_name}-{role}",
        "enable_idempotence": True,
        "acks": "all",
        "request_timeout_ms": REQUEST_TIMEOUT_MS,
    }
    options.update(overrides)
    return options


async def start_producer(settings: _KafkaSettings, role: str, **overrides: Any) -> AIOKafkaProducer:
    """A started producer (see `producer_options`); stopped again if it cannot start."""
    producer = AIOKafkaProducer(**producer_options(settings, role, **overrides))
    try:
        await producer.start()
    except BaseException:
        await producer.stop()
        raise
    return producer
