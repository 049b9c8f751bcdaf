"""Reading the topics for the replay: every record of some partitions up to their end offsets at the
start, each judged as the consumer would (`replay.decode`), what it would dead-letter sent to the DLQ
as it would (`shared.decisions.DeadLetters`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition

from ranking_service.replay.decode import DeadRecord, Item, read_item
from ranking_service.replay.merge import Stats
from ranking_service.settings import RankingSettings
from shared.decisions import DeadLetters

Partition = tuple[str, int, int, int]  # topic, partition, first offset, end offset

FETCH_BYTES = 8 * 1024 * 1024


async def read_partitions(
    settings: RankingSettings,
    consumer_name: str,
    partitions: Sequence[Partition],
    apply: Callable[[Item], None],
    stats: Stats,
) -> None:
    """Merge every record of `partitions` below their end offsets; dead-letter what cannot be read."""
    ends = {TopicPartition(topic, p): end for topic, p, begin, end in partitions if end > begin}
    if not ends:
        return
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=FETCH_BYTES,
        fetch_max_bytes=4 * FETCH_BYTES,
        client_id=f"ee-{settings.service_name}-rebuild",
    )
    dlq = DeadLetters(settings, consumer_name)
    await consumer.start()
    try:
        consumer.assign(list(ends))
        for topic, p, begin, end in partitions:
            if end > begin:
                consumer.seek(TopicPartition(topic, p), begin)
        pending = dict(ends)
        while pending:
            batch = await consumer.getmany(*pending, timeout_ms=1000, max_records=20_000)
            for tp, records in batch.items():
                if tp not in pending:
                    continue
                end = pending[tp]
                for record in records:
                    if record.offset >= end:
                        break
                    stats.events += 1
                    try:
                        item = read_item(record.value)
                    except DeadRecord as dead:
                        await dlq.send(record, dead.reason, dead.error)
                        stats.dead_lettered += 1
                        continue
                    if item is None:
                        stats.skipped += 1
                    else:
                        apply(item)
            for tp in list(pending):
                # The position, not the last record: offsets a record does not hold (markers) count too.
                if await consumer.position(tp) >= pending[tp]:
                    del pending[tp]
                    consumer.pause(tp)
    finally:
        await consumer.stop()
        await dlq.close()
