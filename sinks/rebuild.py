"""Rebuild a sink's tables from the log: the same transforms and writers as the live
sinks, fed from a chosen point of the topics instead of a consumer group's offsets.

Writes are idempotent (upserts, ReplacingMergeTree), so rebuilding over live tables,
or twice, changes nothing that the log does not say.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.topics import JOB_EVENTS, TOKENS
from sinks.clickhouse_sink import ClickHouseWriter, clickhouse_row
from sinks.migrations import migrate_clickhouse
from sinks.pipeline import Accepted, InvalidMessage, Origin, RowWriter
from sinks.postgres_sink import PostgresJobWriter, job_event_row
from sluice.clickhouse import open_clickhouse

log = logging.getLogger(__name__)

Target = Literal["clickhouse", "postgres"]


@dataclass(frozen=True)
class StartPoint:
    """Where to read from: a time, explicit offsets (`topic:partition -> offset`), or the
    start of what the topics retain."""

    since: datetime | None = None
    offsets: dict[tuple[str, int], int] | None = None


@dataclass
class RebuildReport:
    messages: int = 0
    rows: int = 0
    skipped: int = 0


async def rebuild(
    target: Target,
    bootstrap: str,
    start: StartPoint,
    *,
    clickhouse_url: str,
    database_url: str,
    batch_rows: int = 5000,
) -> RebuildReport:
    """Read the target's topics from `start` to their ends as of now, writing every row."""
    topics = (TOKENS, JOB_EVENTS) if target == "clickhouse" else (JOB_EVENTS,)
    transform: Callable[[Origin], Any]
    writer: RowWriter[Any]
    if target == "clickhouse":
        client = await asyncio.to_thread(open_clickhouse, clickhouse_url)
        await asyncio.to_thread(migrate_clickhouse, client)
        transform, writer = clickhouse_row, ClickHouseWriter(client)
    else:
        transform, writer = job_event_row, PostgresJobWriter(database_url)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        ends = await _position(consumer, topics, start)
        return await _copy(consumer, ends, transform, writer, batch_rows)
    finally:
        await consumer.stop()
        if isinstance(writer, PostgresJobWriter):
            await writer.close()


async def _position(
    consumer: AIOKafkaConsumer, topics: Sequence[str], start: StartPoint
) -> dict[TopicPartition, int]:
    await consumer.topics()
    tps = []
    for topic in topics:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        tps += [TopicPartition(topic, p) for p in sorted(partitions)]
    consumer.assign(tps)
    ends = {tp: int(o) for tp, o in (await consumer.end_offsets(tps)).items()}
    if start.offsets is not None:
        for tp in tps:
            consumer.seek(tp, start.offsets.get((tp.topic, tp.partition), ends[tp]))
    elif start.since is not None:
        since = start.since if start.since.tzinfo else start.since.replace(tzinfo=UTC)
        found = await consumer.offsets_for_times({tp: int(since.timestamp() * 1000) for tp in tps})
        for tp in tps:
            hit = found.get(tp)
            consumer.seek(tp, ends[tp] if hit is None else hit.offset)
    else:
        await consumer.seek_to_beginning(*tps)
    return ends


async def _copy(
    consumer: AIOKafkaConsumer,
    ends: dict[TopicPartition, int],
    transform: Callable[[Origin], Any],
    writer: RowWriter[Any],
    batch_rows: int,
) -> RebuildReport:
    report = RebuildReport()
    pending: list[Accepted[Any]] = []
    while not all([await consumer.position(tp) >= end for tp, end in ends.items()]):
        batches = await consumer.getmany(timeout_ms=500, max_records=batch_rows)
        for tp, records in batches.items():
            for record in records:
                if record.offset >= ends[tp]:
                    break  # written after the rebuild began: the live sink has it
                report.messages += 1
                origin = Origin.of(record)
                try:
                    row = transform(origin)
                except InvalidMessage:
                    report.skipped += 1  # the live sink dead-lettered it already
                    continue
                if row is not None:
                    pending.append(Accepted(row, origin))
        if len(pending) >= batch_rows:
            report.rows += await _flush(writer, pending)
    report.rows += await _flush(writer, pending)
    return report


async def _flush(writer: RowWriter[Any], pending: list[Accepted[Any]]) -> int:
    if not pending:
        return 0
    refused = await writer.write(pending)
    written = len(pending) - len(refused)
    pending.clear()
    return written
