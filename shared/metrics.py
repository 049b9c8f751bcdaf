"""What an operator alerts on, read from the runtime at each scrape of `GET /metrics`.

Process-wide instruments (HTTP requests, periodic jobs) live in prometheus_client's default registry.
Everything that belongs to one runtime is collected here, when Prometheus asks, from the objects that
know it, so two runtimes in one process (tests) never share or double-register a series:

| series                                                    | type    | labels                            |
|-----------------------------------------------------------|---------|-----------------------------------|
| `ee_consumer_lag_messages`                                | gauge   | consumer, group, topic, partition |
| `ee_consumer_events_applied_total`                        | counter | consumer                          |
| `ee_consumer_duplicates_skipped_total`                    | counter | consumer                          |
| `ee_consumer_unknown_types_skipped_total`                 | counter | consumer                          |
| `ee_consumer_dead_lettered_total`                         | counter | consumer, reason                  |
| `ee_consumer_retries_total`, `ee_consumer_failures_total` | counter | consumer                          |
| `ee_consumer_running`                                     | gauge   | consumer                          |
| `ee_outbox_unpublished_messages`                          | gauge   |                                   |
| `ee_outbox_oldest_unpublished_age_seconds`                | gauge   |                                   |
| `ee_outbox_published_total`                               | counter |                                   |

and each service's own (`ServiceRuntime.add_metrics`): ranking `ee_ranking_pool_candidates`,
`ee_ranking_profiles_scored_total`; applications `ee_applications_reminders_due`. Every series carries
a `service` label. Counters restart from 0 with the process (Prometheus' `rate()` handles that).

Lag is Kafka's end offset minus the position the consumer stored in the database, per assigned
partition: what is still to be applied. A source that fails (the database is down) is logged and left
out of that scrape; the rest is still served.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Final

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.consumer import IdempotentConsumer

log = logging.getLogger(__name__)

MetricsSource = Callable[[], Awaitable[Iterable[Metric]]]
SOURCE_TIMEOUT_S: Final = 2.0


def counter(name: str, documentation: str, labels: Sequence[str] = ()) -> CounterMetricFamily:
    """A counter family; `name` without `_total` (the exposition adds it)."""
    return CounterMetricFamily(name, documentation, labels=["service", *labels])


def gauge(name: str, documentation: str, labels: Sequence[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=["service", *labels])


async def consumer_metrics(service: str, consumers: Iterable[IdempotentConsumer]) -> list[Metric]:
    """Counts and lag of each consumer (see the table above)."""
    applied = counter("ee_consumer_events_applied", "Events applied by a handler and committed", ["consumer"])
    duplicates = counter(
        "ee_consumer_duplicates_skipped",
        "Events skipped as already applied (event id or offset seen before)",
        ["consumer"],
    )
    unknown = counter(
        "ee_consumer_unknown_types_skipped",
        "Events of a type this build does not know, skipped",
        ["consumer"],
    )
    dead = counter(
        "ee_consumer_dead_lettered",
        "Records sent to the dead-letter topic, by reason",
        ["consumer", "reason"],
    )
    retries = counter("ee_consumer_retries", "Handler attempts that failed and were retried", ["consumer"])
    failures = counter(
        "ee_consumer_failures", "Database or Kafka failures the consumer recovered from", ["consumer"]
    )
    running = gauge("ee_consumer_running", "1 while the consumer runs, else 0", ["consumer"])
    lag = gauge(
        "ee_consumer_lag_messages",
        "Records on Kafka not yet applied: end offset minus the stored position",
        ["consumer", "group", "topic", "partition"],
    )
    for consumer in consumers:
        name, m = consumer.name, consumer.metrics
        applied.add_metric([service, name], m.processed)
        duplicates.add_metric([service, name], m.duplicates)
        unknown.add_metric([service, name], m.skipped_unknown)
        for reason, count in sorted(m.dead_lettered_by_reason.items()):
            dead.add_metric([service, name, reason], count)
        retries.add_metric([service, name], m.retries)
        failures.add_metric([service, name], m.failures)
        running.add_metric([service, name], 1.0 if consumer.running else 0.0)
        group = consumer.group_id or ""
        for tp, behind in sorted((await consumer.lag()).items()):
            lag.add_metric([service, name, group, tp.topic, str(tp.partition)], behind)
    return [applied, duplicates, unknown, dead, retries, failures, running, lag]


_OUTBOX_BACKLOG = sa.text(
    "SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0) "
    "FROM outbox WHERE published_at IS NULL"
)


async def outbox_metrics(service: str, engine: AsyncEngine, published: int | None) -> list[Metric]:
    """The relay's backlog: unpublished rows and the age of the oldest (alert when it grows)."""
    async with engine.connect() as conn:
        count, age = (await conn.execute(_OUTBOX_BACKLOG)).one()
    backlog = gauge("ee_outbox_unpublished_messages", "Outbox rows committed and not yet published")
    backlog.add_metric([service], int(count))
    oldest = gauge(
        "ee_outbox_oldest_unpublished_age_seconds", "Age of the oldest unpublished outbox row (0 when none)"
    )
    oldest.add_metric([service], max(0.0, float(age)))
    metrics: list[Metric] = [backlog, oldest]
    if published is not None:
        sent = counter("ee_outbox_published", "Outbox rows published to Kafka by this process's relay")
        sent.add_metric([service], published)
        metrics.append(sent)
    return metrics


class _Collected(Collector):
    def __init__(self, metrics: Sequence[Metric]) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return self._metrics


async def collect(sources: Iterable[MetricsSource]) -> list[Metric]:
    """Every source's families; a source that fails or hangs is logged and skipped."""
    out: list[Metric] = []
    for source in sources:
        try:
            out.extend(await asyncio.wait_for(source(), SOURCE_TIMEOUT_S))
        except Exception as exc:
            log.warning("metrics source %r failed: %r", source, exc)
    return out


async def render(sources: Iterable[MetricsSource]) -> bytes:
    """The sources' families in the Prometheus text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collected(await collect(sources)))
    return generate_latest(registry)


__all__ = ["MetricsSource", "collect", "consumer_metrics", "counter", "gauge", "outbox_metrics", "render"]
