"""One sink: poll, turn messages into rows, write a batch durably, dead-letter rejects, commit."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic

from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError

from sinks.batching import FlushPolicy, PendingBatch
from sinks.dead_letters import DeadLetterQueue
from sinks.kafka import is_transient_kafka_error
from sinks.pipeline import InvalidMessage, Origin, R, Rejected, RowWriter, Transform
from sinks.retry import Backoff, SinkStopping, retry_transient

log = logging.getLogger(__name__)

SHUTDOWN_COMMIT_TIMEOUT_S = 10.0


@dataclass
class SinkStats:
    rows_written: int = 0
    dead_lettered: int = 0
    batches: int = 0
    pending_messages: int = 0
    last_write_at: float | None = None


class SinkRunner(Generic[R]):
    """Consumes ``consumer`` until stopped. Offsets are committed only after the batch's rows
    are written and its rejects are on the DLQ, so a crash at any point loses nothing."""

    def __init__(
        self,
        name: str,
        consumer: Any,
        transform: Transform[R],
        writer: RowWriter[R],
        policy: FlushPolicy,
        dead_letters: DeadLetterQueue,
        *,
        clock: Callable[[], float] = time.monotonic,
        idle_poll_s: float = 1.0,
        backoff: Backoff = Backoff(),
    ) -> None:
        self.name = name
        self.stats = SinkStats()
        self._consumer = consumer
        self._transform = transform
        self._writer = writer
        self._policy = policy
        self._dead_letters = dead_letters
        self._clock = clock
        self._idle_poll_s = idle_poll_s
        self._backoff = backoff
        self._batch: PendingBatch[R] = PendingBatch()

    async def run(self, stopping: asyncio.Event) -> None:
        """Consume until ``stopping`` is set, then write what is pending and leave the group."""
        await self._consumer.start()
        try:
            while not stopping.is_set():
                await self.poll()
                if self._policy.due(self._batch, self._clock()):
                    await self.flush(stopping)
            await self.flush(stopping)
        except SinkStopping as exc:
            log.warning("%s; its messages will be consumed again", exc)
        finally:
            await self._consumer.stop()

    async def poll(self) -> None:
        now = self._clock()
        records = await self._consumer.getmany(
            timeout_ms=int(self._policy.poll_timeout_s(self._batch, now, self._idle_poll_s) * 1000),
            max_records=self._policy.room(self._batch),
        )
        now = self._clock()
        for messages in records.values():
            for record in messages:
                origin = Origin.of(record)
                self._batch.add(origin, self._outcome(origin), now)
        self.stats.pending_messages = self._batch.message_count

    def _outcome(self, origin: Origin) -> R | Rejected | None:
        try:
            return self._transform(origin)
        except InvalidMessage as exc:
            # Both sinks read job-events, so the reason names the sink that refused it.
            return Rejected(origin, f"{self.name}: {exc.reason}")

    async def flush(self, stopping: asyncio.Event) -> None:
        batch = self._batch
        if batch.message_count == 0:
            return
        refused: list[Rejected] = []
        if batch.accepted:
            refused = await retry_transient(
                lambda: self._writer.write(batch.accepted),
                is_transient=self._writer.is_transient,
                stopping=stopping,
                what=f"{self.name}: writing {batch.row_count} rows",
                backoff=self._backoff,
            )
        letters = [*batch.rejected, *refused]
        if letters:
            await retry_transient(
                lambda: self._dead_letters.send(letters),
                is_transient=is_transient_kafka_error,
                stopping=stopping,
                what=f"{self.name}: dead-lettering {len(letters)} messages",
                backoff=self._backoff,
            )
        await self._commit(batch, stopping)
        self._batch = PendingBatch()
        self._record(batch, letters)

    async def _commit(self, batch: PendingBatch[R], stopping: asyncio.Event) -> None:
        assigned = self._consumer.assignment()
        offsets = {
            tp: offset
            for (topic, partition), offset in batch.next_offsets.items()
            if (tp := TopicPartition(topic, partition)) in assigned
        }
        if not offsets:
            return
        timeout = SHUTDOWN_COMMIT_TIMEOUT_S if stopping.is_set() else None
        try:
            await asyncio.wait_for(self._consumer.commit(offsets), timeout)
        except (CommitFailedError, IllegalStateError) as exc:
            # The group rebalanced: the new owner re-reads these rows, and writes are idempotent.
            log.warning("%s: commit refused after a rebalance: %s", self.name, exc)
        except TimeoutError:
            log.warning("%s: commit timed out at shutdown; rows will be re-read", self.name)

    def _record(self, batch: PendingBatch[R], letters: list[Rejected]) -> None:
        self.stats.rows_written += batch.row_count - (len(letters) - len(batch.rejected))
        self.stats.dead_lettered += len(letters)
        self.stats.batches += 1
        self.stats.pending_messages = 0
        self.stats.last_write_at = time.time()
