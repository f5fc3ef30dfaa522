"""What the log says about a job's earlier attempts, read before re-running a redelivered job.

A job message can reach a worker twice: its previous worker died (or shut down, or lost
the partition) before committing it. The job-events log, not the message, knows how far
the job got: whether it already ended, the highest attempt used (the next one must be
higher, so readers can tell the attempts apart), and how many tries it has used up.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition
from confluent_kafka.admin import AdminClient

from schemas.events import (
    EventDecodeError,
    JobEvent,
    JobFinished,
    JobRetrying,
    JobStarted,
    decode_job_event,
)
from schemas.topics import JOB_EVENTS
from sluice.jobids import job_id_time_ms
from sluice.partitioning import partition_for_key

# Producers' clocks and the broker's may differ a little; start reading a bit earlier.
CLOCK_SKEW_MS = 5_000


@dataclass
class JobHistory:
    """A fold over one job's lifecycle events, from attempt ``base`` on.

    Attempts below ``base`` belong to an earlier run (before a requeue from the DLQ)
    and use none of this run's tries.
    """

    base: int = 1
    max_attempt: int = 0
    first_started_at: float | None = None
    finished: JobFinished | None = None
    _started: set[int] = field(default_factory=set)
    _ended: set[int] = field(default_factory=set)
    _failed_tries: set[int] = field(default_factory=set)

    def add(self, event: JobEvent) -> None:
        attempt = getattr(event, "attempt", 0)
        self.max_attempt = max(self.max_attempt, attempt)
        if attempt < self.base:
            return
        if isinstance(event, JobStarted):
            self._started.add(attempt)
            if self.first_started_at is None or event.started_at < self.first_started_at:
                self.first_started_at = event.started_at
        elif isinstance(event, JobRetrying):
            self._ended.add(attempt)
            if event.counts_as_try:
                self._failed_tries.add(attempt)
        elif isinstance(event, JobFinished):
            self._ended.add(attempt)
            if self.finished is None or attempt >= self.finished.attempt:
                self.finished = event

    @property
    def next_attempt(self) -> int:
        return max(self.base, self.max_attempt + 1)

    @property
    def interrupted(self) -> int:
        """Attempts that started and never reported an end: their worker died."""
        return len(self._started - self._ended)

    @property
    def tries_used(self) -> int:
        """Failed tries plus crashes: a job that kills its worker must not loop forever."""
        return len(self._failed_tries) + self.interrupted


class JobHistoryReader:
    """Reads a job's events from its partition of ``job-events``, from its submission on.

    One consumer, one lookup at a time: lookups are rare (redeliveries only) and short.
    """

    def __init__(self, bootstrap: str, timeout_s: float = 30.0) -> None:
        self._bootstrap = bootstrap
        self._timeout_s = timeout_s
        self._consumer: AIOKafkaConsumer | None = None
        self._partitions = 0
        self._lock = asyncio.Lock()

    async def read(self, job_id: str, base: int = 1) -> JobHistory:
        async with self._lock, asyncio.timeout(self._timeout_s):
            try:
                return await self._read(job_id, base)
            except BaseException:
                await self.close()  # start afresh next time
                raise

    async def _read(self, job_id: str, base: int) -> JobHistory:
        consumer = await self._ready()
        key = job_id.encode()
        tp = TopicPartition(JOB_EVENTS, partition_for_key(key, self._partitions))
        consumer.assign([tp])
        end = (await consumer.end_offsets([tp]))[tp]
        found = (await consumer.offsets_for_times({tp: job_id_time_ms(job_id) - CLOCK_SKEW_MS}))[tp]
        consumer.seek(tp, end if found is None else found.offset)
        history = JobHistory(base=base)
        while await consumer.position(tp) < end:
            batches = await consumer.getmany(tp, timeout_ms=500)
            for record in batches.get(tp, []):
                if record.key == key and record.value:
                    try:
                        history.add(decode_job_event(record.value))
                    except EventDecodeError:
                        continue  # the sinks dead-letter it; it says nothing about attempts
        return history

    async def _ready(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self._bootstrap, group_id=None, enable_auto_commit=False
            )
            self._partitions = await asyncio.to_thread(self._partition_count)
            await consumer.start()
            self._consumer = consumer
        return self._consumer

    def _partition_count(self) -> int:
        admin = AdminClient({"bootstrap.servers": self._bootstrap})
        topics = admin.list_topics(JOB_EVENTS, timeout=self._timeout_s).topics
        if JOB_EVENTS not in topics or not topics[JOB_EVENTS].partitions:
            raise RuntimeError(f"topic {JOB_EVENTS} does not exist")
        return len(topics[JOB_EVENTS].partitions)

    async def close(self) -> None:
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            await consumer.stop()
