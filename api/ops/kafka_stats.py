"""What the broker knows about the pipeline: queue lag per priority, workers online, totals.

Every number here is read from Kafka itself (end offsets, the worker group's committed
offsets and its members), so every api replica reports the same values. The calls are
blocking confluent-kafka admin requests: run ``kafka_snapshot`` in a thread.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # documented, not in __all__
    AdminClient,
    OffsetSpec,
)

from schemas.topics import PRIORITIES_HIGHEST_FIRST, TOKENS, priority_topic

WORKER_GROUP = "sluice-worker"  # the Faust app's id is its consumer group
NO_OFFSET = -1001  # librdkafka's OFFSET_INVALID: the group never committed this partition
log = logging.getLogger(__name__)


class KafkaStatsUnavailable(RuntimeError):
    """The broker did not answer; the message is safe to show."""


@dataclass(frozen=True)
class WorkerMember:
    member_id: str
    client_id: str
    host: str
    partitions: list[str]


@dataclass(frozen=True)
class KafkaSnapshot:
    lag_by_priority: dict[str, int]
    submitted_by_priority: dict[str, int]
    tokens_total: int
    group_state: str
    workers: list[WorkerMember] = field(default_factory=list)


@lru_cache(maxsize=4)
def _admin(bootstrap: str) -> AdminClient:
    # One long-lived client per cluster: admin clients are thread-safe and keep connections.
    return AdminClient({"bootstrap.servers": bootstrap}, logger=log)


def _result(future: Any, timeout: float) -> Any:
    try:
        return future.result(timeout=timeout)
    except (KafkaException, TimeoutError) as exc:
        raise KafkaStatsUnavailable("the Kafka broker did not answer an admin request") from exc


def _offsets(
    admin: AdminClient, partitions: Iterable[TopicPartition], spec: OffsetSpec, timeout: float
) -> dict[tuple[str, int], int]:
    request = {tp: spec for tp in partitions}
    if not request:
        return {}
    futures = admin.list_offsets(request, request_timeout=timeout)
    return {(tp.topic, tp.partition): _result(f, timeout).offset for tp, f in futures.items()}


def partition_lag(end: int, committed: int, earliest: int) -> int:
    """Messages after the group's position; a partition never committed starts at the earliest."""
    position = committed if committed >= 0 else earliest
    return max(0, end - position)


def kafka_snapshot(
    bootstrap: str, group: str = WORKER_GROUP, timeout: float = 5.0
) -> KafkaSnapshot:
    try:
        return _snapshot(_admin(bootstrap), group, timeout)
    except KafkaStatsUnavailable:
        # A client that lived through a broker restart can stay wedged: the next scrape
        # starts from a fresh one.
        _admin.cache_clear()
        raise


def _snapshot(admin: AdminClient, group: str, timeout: float) -> KafkaSnapshot:
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        raise KafkaStatsUnavailable("the Kafka broker is not reachable") from exc
    topics = [priority_topic(p) for p in PRIORITIES_HIGHEST_FIRST] + [TOKENS]
    partitions = [
        TopicPartition(t, p)
        for t in topics
        if t in metadata.topics
        for p in metadata.topics[t].partitions
    ]
    latest: OffsetSpec = OffsetSpec.latest()  # type: ignore[no-untyped-call]
    first: OffsetSpec = OffsetSpec.earliest()  # type: ignore[no-untyped-call]
    end = _offsets(admin, partitions, latest, timeout)
    job_partitions = [tp for tp in partitions if tp.topic != TOKENS]
    earliest = _offsets(admin, job_partitions, first, timeout)
    committed_request = ConsumerGroupTopicPartitions(group, job_partitions)
    committed_future = admin.list_consumer_group_offsets(
        [committed_request], request_timeout=timeout
    )
    committed = {
        (tp.topic, tp.partition): tp.offset
        for tp in _result(committed_future[group], timeout).topic_partitions
    }
    described = _result(
        admin.describe_consumer_groups([group], request_timeout=timeout)[group], timeout
    )
    lag = {p.value: 0 for p in PRIORITIES_HIGHEST_FIRST}
    submitted = {p.value: 0 for p in PRIORITIES_HIGHEST_FIRST}
    for tp in job_partitions:
        key = (tp.topic, tp.partition)
        priority = tp.topic.removeprefix("jobs.")
        submitted[priority] += end[key]
        lag[priority] += partition_lag(end[key], committed.get(key, NO_OFFSET), earliest[key])
    return KafkaSnapshot(
        lag_by_priority=lag,
        submitted_by_priority=submitted,
        tokens_total=sum(v for (t, _), v in end.items() if t == TOKENS),
        group_state=str(getattr(described.state, "name", described.state)).lower(),
        workers=[_member(m) for m in described.members],
    )


def _member(member: Any) -> WorkerMember:
    assigned = member.assignment.topic_partitions if member.assignment else []
    return WorkerMember(
        member_id=member.member_id,
        client_id=member.client_id,
        host=member.host.lstrip("/"),
        partitions=sorted(f"{tp.topic}[{tp.partition}]" for tp in assigned),
    )
