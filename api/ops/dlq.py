"""The dead-letter queue as the dashboard sees it: list the letters, requeue a job.

``DeadLetters`` is the interface the admin routes use. ``KafkaDeadLetters`` reads
``jobs.dlq`` directly; when ``producers.dlq`` (the retry engineer's list/requeue) lands,
an adapter over it can replace this class without touching the routes.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

from confluent_kafka import Consumer, KafkaException, TopicPartition

from producers.submit import JobSubmitter
from schemas.events import EventDecodeError, JobRequested, decode_job_requested, new_event_id
from schemas.topics import DLQ, priority_topic

SCAN_LIMIT = 10_000  # how far back a requeue looks for a job's letter


class DeadLetterError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class DeadLetterEntry:
    job_id: str | None
    source_topic: str
    reason: str
    error_code: str | None
    attempt: int | None
    dead_lettered_at: float | None
    priority: str | None
    job_type: str | None
    requeueable: bool
    offset: int

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Requeued:
    job_id: str
    priority: str
    attempt: int


class DeadLetters(Protocol):
    async def list(self, limit: int) -> list[DeadLetterEntry]:
        """The newest ``limit`` letters, newest first."""
        ...

    async def requeue(self, job_id: str) -> Requeued:
        """Put the job back on its priority topic as a new attempt; DeadLetterError if not."""
        ...


def _job_of(letter: dict[str, Any]) -> JobRequested | None:
    try:
        return decode_job_requested(str(letter.get("payload", "")))
    except EventDecodeError:
        return None


def _entry(letter: dict[str, Any], offset: int) -> DeadLetterEntry:
    job = _job_of(letter)
    return DeadLetterEntry(
        job_id=letter.get("job_id"),
        source_topic=str(letter.get("source_topic", "")),
        reason=str(letter.get("reason", "")),
        error_code=letter.get("error_code"),
        attempt=letter.get("attempt") or (job.attempt if job else None),
        dead_lettered_at=letter.get("dead_lettered_at"),
        priority=job.priority.value if job else None,
        job_type=job.job_type.value if job else None,
        requeueable=job is not None,
        offset=offset,
    )


def read_tail(bootstrap: str, count: int, timeout: float = 5.0) -> list[tuple[int, dict[str, Any]]]:
    """The last ``count`` messages of every DLQ partition as (offset, letter), oldest first."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"sluice-dlq-reader-{uuid.uuid4().hex[:8]}",  # never commits
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    try:
        metadata = consumer.list_topics(DLQ, timeout=timeout)
        parts = list(metadata.topics[DLQ].partitions) if DLQ in metadata.topics else []
        assignment, remaining = [], 0
        for p in parts:
            low, high = consumer.get_watermark_offsets(TopicPartition(DLQ, p), timeout=timeout)
            if high > low:
                assignment.append(TopicPartition(DLQ, p, max(low, high - count)))
                remaining += 1
        consumer.assign(assignment)
        out: list[tuple[int, dict[str, Any]]] = []
        while remaining:
            message = consumer.poll(timeout)
            if message is None:
                break
            if message.error():
                remaining -= 1  # end of a partition (or an error: stop reading it)
                continue
            try:
                letter = json.loads(message.value() or b"{}")
            except ValueError:
                letter = {"reason": "the dead letter itself is not JSON"}
            out.append((message.offset() or 0, letter if isinstance(letter, dict) else {}))
    except KafkaException as exc:
        raise DeadLetterError(503, "queue_unavailable", "Kafka is not reachable") from exc
    finally:
        consumer.close()
    return out


class KafkaDeadLetters:
    """Reads ``jobs.dlq``; requeues through the api's durable (acks=all) producer."""

    def __init__(self, bootstrap: str, submitter: JobSubmitter) -> None:
        self._bootstrap = bootstrap
        self._submitter = submitter

    async def list(self, limit: int) -> list[DeadLetterEntry]:
        tail = await asyncio.to_thread(read_tail, self._bootstrap, limit)
        entries = [_entry(letter, offset) for offset, letter in tail]
        entries.sort(key=lambda e: e.dead_lettered_at or 0.0, reverse=True)
        return entries[:limit]

    async def requeue(self, job_id: str) -> Requeued:
        tail = await asyncio.to_thread(read_tail, self._bootstrap, SCAN_LIMIT)
        letters = [letter for _, letter in tail if letter.get("job_id") == job_id]
        if not letters:
            raise DeadLetterError(404, "job_not_found", f"no dead letter for job {job_id}")
        letter = letters[-1]
        job = _job_of(letter)
        if job is None:
            raise DeadLetterError(
                409, "not_requeueable", "the dead letter does not hold a job that can run"
            )
        last = max(job.attempt, int(letter.get("attempt") or 0))
        again = job.model_copy(update={"attempt": last + 1, "event_id": new_event_id()})
        await self._submitter.send_durably(
            priority_topic(again.priority), again.key(), again.to_bytes()
        )
        return Requeued(job_id=job_id, priority=again.priority.value, attempt=again.attempt)
