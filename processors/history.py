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
    """Reads jobs' events from ``job-events``, each from its submission on.

    Lookups come in bursts: after a worker restarts, every job it had not committed is
    looked up. They are batched: each round reads each partition involved once, from the
    oldest submission among the jobs waiting, to the partition's end as of the round's
    start, so every event written before a lookup was asked for is seen by it.
    """

    def __init__(self, bootstrap: str, timeout_s: float = 30.0) -> None:
        self._bootstrap = bootstrap
        self._timeout_s = timeout_s
        self._consumer: AIOKafkaConsumer | None = None
        self._partitions = 0
        self._waiting: list[tuple[str, int, asyncio.Future[JobHistory]]] = []
        self._wanted = asyncio.Event()
        self._rounds: asyncio.Task[None] | None = None

    async def read(self, job_id: str, base: int = 1) -> JobHistory:
        """The job's history from attempt ``base`` on; raises TimeoutError if Kafka is away."""
        answer: asyncio.Future[JobHistory] = asyncio.get_running_loop().create_future()
        self._waiting.append((job_id, base, answer))
        self._wanted.set()
        if self._rounds is None or self._rounds.done():
            self._rounds = asyncio.create_task(self._answer_rounds())
        async with asyncio.timeout(self._timeout_s):
            return await asyncio.shield(answer)

    async def _answer_rounds(self) -> None:
        while True:
            await self._wanted.wait()
            self._wanted.clear()
            batch, self._waiting = self._waiting, []
            batch = [item for item in batch if not item[2].done()]
            if not batch:
                continue
            try:
                async with asyncio.timeout(self._timeout_s):
                    events = await self._read({job_id for job_id, _, _ in batch})
            except Exception as exc:
                await self.close()  # start afresh next round
                for _, _, answer in batch:
                    if not answer.done():
                        answer.set_exception(exc)
                continue
            for job_id, base, answer in batch:
                history = JobHistory(base=base)
                for event in events.get(job_id, []):
                    history.add(event)
                if not answer.done():
                    answer.set_result(history)

    async def _read(self, job_ids: set[str]) -> dict[str, list[JobEvent]]:
        consumer = await self._ready()
        starts: dict[TopicPartition, int] = {}
        for job_id in job_ids:
            tp = TopicPartition(JOB_EVENTS, partition_for_key(job_id.encode(), self._partitions))
            since = job_id_time_ms(job_id) - CLOCK_SKEW_MS
            starts[tp] = min(starts.get(tp, since), since)
        tps = list(starts)
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        found = await consumer.offsets_for_times(starts)
        for tp in tps:
            consumer.seek(tp, ends[tp] if found[tp] is None else found[tp].offset)
        wanted = {job_id.encode() for job_id in job_ids}
        events: dict[str, list[JobEvent]] = {}
        remaining = {tp for tp in tps if await consumer.position(tp) < ends[tp]}
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=500)
            for records in batches.values():
                for record in records:
                    if record.key in wanted and record.value:
                        try:
                            event = decode_job_event(record.value)
                        except EventDecodeError:
                            continue  # the sinks dead-letter it; it says nothing of attempts
                        events.setdefault(event.job_id, []).append(event)
            remaining = {tp for tp in remaining if await consumer.position(tp) < ends[tp]}
        return events

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
        if self._rounds is not None and self._rounds is not asyncio.current_task():
            self._rounds.cancel()
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            await consumer.stop()
