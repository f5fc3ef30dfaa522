"""The dead-letter queue: read what is on ``jobs.dlq``, and requeue a job from it.

A job lands there when it ran out of tries (or time), with the reason, its last error
and attempt, and its original ``JobRequested``. Requeueing sends that job again to its
priority topic with ``attempt`` one past the last one, so the worker runs it as a new
attempt with a fresh set of tries and readers see the new attempt supersede the old.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from schemas.events import (
    DeadLetter,
    EventDecodeError,
    JobRequested,
    decode_dead_letter,
    decode_job_requested,
    new_event_id,
)
from schemas.topics import DLQ, priority_topic


class DeadLetterError(Exception):
    """The DLQ cannot be read, or holds nothing that can be requeued for that job."""


@dataclass(frozen=True)
class StoredLetter:
    """A letter and where it sits on ``jobs.dlq``; ``letter`` is None if it is not readable."""

    partition: int
    offset: int
    letter: DeadLetter | None
    raw: bytes

    def job(self) -> JobRequested | None:
        """The job the letter carries, when its payload is a job request."""
        if self.letter is None:
            return None
        try:
            return decode_job_requested(self.letter.payload)
        except EventDecodeError:
            return None


def read_dead_letters(bootstrap: str, timeout_s: float = 10.0) -> list[StoredLetter]:
    """Every letter on ``jobs.dlq``, oldest first (by partition, then offset)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"sluice-dlq-{uuid.uuid4().hex[:8]}",  # assigned, never committed
            "enable.auto.commit": False,
        }
    )
    try:
        return _read_all(consumer, timeout_s)
    except KafkaException as exc:
        raise DeadLetterError(f"cannot read {DLQ}: {exc.args[0].str()}") from None
    finally:
        consumer.close()


def _read_all(consumer: Consumer, timeout_s: float) -> list[StoredLetter]:
    topics = consumer.list_topics(DLQ, timeout=timeout_s).topics
    if DLQ not in topics or topics[DLQ].error is not None:
        raise DeadLetterError(f"topic {DLQ} does not exist; run `sluice init`")
    ends: dict[int, int] = {}
    starts = []
    for p in topics[DLQ].partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(DLQ, p), timeout=timeout_s)
        if high > low:
            ends[p] = high
            starts.append(TopicPartition(DLQ, p, low))
    consumer.assign(starts)
    stored: list[StoredLetter] = []
    while ends:
        message = consumer.poll(timeout_s)
        if message is None:
            raise DeadLetterError(f"{DLQ} stopped answering while being read")
        if message.error():
            continue
        partition, offset, raw = message.partition() or 0, message.offset() or 0, message.value()
        stored.append(StoredLetter(partition, offset, _letter(raw), raw or b""))
        if offset + 1 >= ends.get(partition, 0):
            ends.pop(partition, None)
    return sorted(stored, key=lambda s: (s.partition, s.offset))


def _letter(raw: bytes | None) -> DeadLetter | None:
    try:
        return decode_dead_letter(raw or b"")
    except EventDecodeError:
        return None


def latest_job_letter(letters: list[StoredLetter], job_id: str) -> StoredLetter:
    """The job's newest letter that carries a runnable job."""
    mine = [s for s in letters if s.letter is not None and s.letter.job_id == job_id]
    if not mine:
        raise DeadLetterError(f"no dead letter for job {job_id}")
    runnable = [s for s in mine if s.job() is not None]
    if not runnable:
        raise DeadLetterError(f"the dead letters of job {job_id} hold no job request to run")
    return max(runnable, key=lambda s: s.letter.dead_lettered_at if s.letter else 0.0)


def requeued_job(stored: StoredLetter) -> JobRequested:
    """The job as it goes back to its priority topic: one attempt past its last."""
    job, letter = stored.job(), stored.letter
    if job is None or letter is None:
        raise DeadLetterError("the dead letter holds no job request to run")
    last = max(job.attempt, letter.attempt or 0)
    return job.model_copy(update={"attempt": last + 1, "event_id": new_event_id()})


def requeue(bootstrap: str, job_id: str, timeout_s: float = 10.0) -> JobRequested:
    """Send the job of its newest dead letter back to its priority topic; durable on return."""
    job = requeued_job(latest_job_letter(read_dead_letters(bootstrap, timeout_s), job_id))
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True})
    failures: list[str] = []

    def delivered(err: object, _msg: object) -> None:
        if err is not None:
            failures.append(str(err))

    producer.produce(priority_topic(job.priority), job.to_bytes(), job.key(), on_delivery=delivered)
    if producer.flush(timeout_s) or failures:
        raise DeadLetterError(f"Kafka did not take the job: {', '.join(failures) or 'timeout'}")
    return job
