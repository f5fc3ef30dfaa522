"""Read one job's events back from the log, as any Kafka client can.

The job's id carries its submission time and its key picks its partitions, so the
reader seeks straight to the job instead of scanning topics.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from confluent_kafka import Consumer, TopicPartition

from schemas.events import (
    EventDecodeError,
    JobEvent,
    JobFinished,
    TokenStreamed,
    decode_job_event,
    decode_token,
)
from schemas.topics import JOB_EVENTS, TOKENS
from sluice.jobids import job_id_time_ms
from sluice.partitioning import partition_for_key

CLOCK_SKEW_MS = 5_000


@dataclass
class JobLog:
    job_id: str
    tokens: list[TokenStreamed] = field(default_factory=list)
    events: list[JobEvent] = field(default_factory=list)

    @property
    def final(self) -> JobFinished | None:
        ends = [e for e in self.events if isinstance(e, JobFinished)]
        return max(ends, key=lambda e: e.attempt) if ends else None

    def attempts(self) -> list[int]:
        return sorted({t.attempt for t in self.tokens})

    def tokens_of(self, attempt: int) -> list[TokenStreamed]:
        """The attempt's tokens in seq order, each once."""
        by_seq = {t.seq: t for t in self.tokens if t.attempt == attempt}
        return [by_seq[s] for s in sorted(by_seq)]


def read_job_log(bootstrap: str, job_id: str, timeout_s: float = 10.0) -> JobLog:
    """Everything the log holds about the job now (what was produced before the call)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"sluice-joblog-{job_id}",
            "enable.auto.commit": False,
        }
    )
    try:
        key = job_id.encode()
        wanted = []
        for topic in (TOKENS, JOB_EVENTS):
            count = len(consumer.list_topics(topic, timeout=timeout_s).topics[topic].partitions)
            partition = partition_for_key(key, count)
            wanted.append(TopicPartition(topic, partition, job_id_time_ms(job_id) - CLOCK_SKEW_MS))
        starts = consumer.offsets_for_times(wanted, timeout=timeout_s)
        ends = {
            (tp.topic, tp.partition): consumer.get_watermark_offsets(tp, timeout=timeout_s)[1]
            for tp in wanted
        }
        todo = {
            (tp.topic, tp.partition)
            for tp in starts
            if tp.offset >= 0 and tp.offset < ends[(tp.topic, tp.partition)]
        }
        consumer.assign([tp for tp in starts if (tp.topic, tp.partition) in todo])
        log = JobLog(job_id)
        while todo:
            msg = consumer.poll(timeout_s)
            if msg is None:
                break  # nothing more arrived in time: return what was read
            m_topic, m_partition, m_offset = msg.topic(), msg.partition(), msg.offset()
            if msg.error() or m_topic is None or m_partition is None or m_offset is None:
                continue
            if msg.key() == key:
                _collect(log, m_topic, msg.value() or b"")
            if m_offset + 1 >= ends[(m_topic, m_partition)]:
                todo.discard((m_topic, m_partition))
        return log
    finally:
        consumer.close()


def _collect(log: JobLog, topic: str, raw: bytes) -> None:
    try:
        if topic == TOKENS:
            log.tokens.append(decode_token(raw))
        else:
            log.events.append(decode_job_event(raw))
    except EventDecodeError:
        pass  # the sinks dead-letter what cannot be decoded; a reader skips it
