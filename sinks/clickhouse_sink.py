"""``tokens`` and ``job-events`` → ClickHouse, buffered into large inserts (ClickHouse wants
few big parts), offsets committed after the insert returns."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from schemas.events import JobFinished, decode_job_event, decode_token
from schemas.topics import JOB_EVENTS, TOKENS
from sinks.batching import FlushPolicy
from sinks.clickhouse_rows import TABLES, ClickHouseRow, job_metrics_row, token_event_row
from sinks.dead_letters import DeadLetterQueue
from sinks.decoding import decode
from sinks.pipeline import Accepted, InvalidMessage, Origin, Rejected
from sinks.runner import SinkRunner

# Server errors worth retrying the same insert for: overload, timeouts, replicas catching up.
TRANSIENT_CLICKHOUSE_CODES = frozenset(
    {3, 159, 202, 203, 209, 210, 236, 241, 242, 252, 285, 319, 425, 999}
)


def clickhouse_row(origin: Origin) -> ClickHouseRow | None:
    """A token row, a metrics row for a terminal event, or nothing for other lifecycle events."""
    if origin.topic == TOKENS:
        return token_event_row(decode(origin, decode_token))
    if origin.topic == JOB_EVENTS:
        event = decode(origin, decode_job_event)
        return job_metrics_row(event) if isinstance(event, JobFinished) else None
    raise InvalidMessage(f"the ClickHouse sink does not read {origin.topic}")


class ClickHouseWriter:
    """One insert per table per batch, on a worker thread: the client is synchronous."""

    def __init__(self, client: Client) -> None:
        self._client = client

    async def write(self, rows: Sequence[Accepted[ClickHouseRow]]) -> list[Rejected]:
        await asyncio.to_thread(self._insert, [accepted.row for accepted in rows])
        return []

    def _insert(self, rows: list[ClickHouseRow]) -> None:
        for row_type, table in TABLES.items():
            chosen = [row for row in rows if isinstance(row, row_type)]
            if chosen:
                self._client.insert(table, chosen, column_names=list(row_type._fields))

    def is_transient(self, exc: BaseException) -> bool:
        if isinstance(exc, OperationalError):
            return True
        return isinstance(exc, DatabaseError) and exc.code in TRANSIENT_CLICKHOUSE_CODES


def clickhouse_sink(
    consumer: Any,
    writer: ClickHouseWriter,
    dead_letters: DeadLetterQueue,
    *,
    max_rows: int,
    max_wait_s: float,
) -> SinkRunner[ClickHouseRow]:
    policy = FlushPolicy(max_rows=max_rows, max_wait_s=max_wait_s)
    return SinkRunner("clickhouse sink", consumer, clickhouse_row, writer, policy, dead_letters)
