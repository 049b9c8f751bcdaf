"""Where each consumer stands, kept in the service's database (`consumer_positions`), not in Kafka.

A consumer stores the next offset of every partition it applied, in the same transaction as the
effects, with the id of the Kafka cluster those offsets belong to. On start and on every assignment it
seeks to them; Kafka's own group offsets are only a mirror for lag tools. Offsets of another cluster
mean nothing: a consumer whose stored positions name another cluster refuses to start
(`ClusterMismatchError`) instead of skipping or replaying events silently.

The ranking rebuild reads the same table (`ranking_service`), so a rebuilt projection resumes where
the rebuild stopped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import sqlalchemy as sa
from aiokafka import TopicPartition
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import Transaction, driver_connection


class ClusterMismatchError(RuntimeError):
    """The stored positions belong to another Kafka cluster: their offsets mean nothing here."""


# GREATEST: a consumer that lost its partitions in a rebalance may commit once more; it must not move
# the new owner's position backwards.
# Sent on the driver connection (asyncpg's numbered parameters): once per batch of every consumer.
_SAVE = (
    "INSERT INTO consumer_positions (consumer, topic, partition, next_offset, cluster_id, updated_at) "
    "SELECT $1, u.topic, u.partition, u.next_offset, $2, now() "
    "FROM unnest($3::text[], $4::int[], $5::bigint[]) "
    "AS u(topic, partition, next_offset) "
    "ON CONFLICT (consumer, topic, partition) DO UPDATE SET "
    "next_offset = GREATEST(consumer_positions.next_offset, EXCLUDED.next_offset), "
    "cluster_id = EXCLUDED.cluster_id, updated_at = now()"
)
_LOAD = sa.text(
    "SELECT topic, partition, next_offset FROM consumer_positions "
    "WHERE consumer = :c AND topic = ANY(CAST(:topics AS text[]))"
)
_CLUSTERS = sa.text("SELECT DISTINCT cluster_id FROM consumer_positions WHERE consumer = :c")


class ConsumerPositions:
    """The stored positions of one consumer (by name), inside the caller's session."""

    def __init__(self, consumer: str) -> None:
        self.consumer = consumer

    async def load(
        self, session: AsyncSession, partitions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, int]:
        """The next offset stored for each of `partitions` that has one."""
        wanted = set(partitions)
        rows = (
            await session.execute(_LOAD, {"c": self.consumer, "topics": sorted({tp.topic for tp in wanted})})
        ).all()
        stored = {TopicPartition(t, p): int(o) for t, p, o in rows}
        return {tp: o for tp, o in stored.items() if tp in wanted}

    async def save(
        self,
        source: AsyncSession | Transaction,
        cluster_id: str | None,
        advance: Mapping[TopicPartition, int],
    ) -> None:
        """Move the positions forward (never back) to `advance`, in the caller's transaction (a unit of
        work's `Transaction` or a session): on the asyncpg connection under it, without SQLAlchemy's
        statement path, as every batch of every consumer sends it."""
        if not advance:
            return
        tps = sorted(advance)
        connection = await driver_connection(source)
        await connection.execute(
            _SAVE,
            self.consumer,
            cluster_id,
            [tp.topic for tp in tps],
            [tp.partition for tp in tps],
            [advance[tp] for tp in tps],
        )

    async def check_cluster(self, session: AsyncSession, cluster_id: str, *, where: str) -> None:
        """Raise `ClusterMismatchError` when positions were stored on another cluster than `cluster_id`.

        `where` names the service, broker and database for the message (what an operator must fix).
        """
        stored = (await session.execute(_CLUSTERS, {"c": self.consumer})).scalars()
        others = [c for c in stored if c != cluster_id]
        if others:
            raise ClusterMismatchError(
                f"consumer {self.consumer!r} {where} stored its positions on Kafka cluster {others[0]!r}, "
                f"but the broker is cluster {cluster_id!r}: those offsets mean nothing there, so it refuses "
                "to start. Point KAFKA_BOOTSTRAP_SERVERS at the original cluster, or, if the cluster was "
                "replaced on purpose, reset this consumer (DELETE FROM consumer_positions WHERE consumer = "
                f"'{self.consumer}') and rebuild what it projects."
            )


__all__ = ["ClusterMismatchError", "ConsumerPositions"]
