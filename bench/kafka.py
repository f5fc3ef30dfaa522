"""Kafka without the pipeline: baseline (b), and a reader of the jobs' lifecycle events.

Baseline (b) is one producer and one consumer in this process, moving messages of the
size of a ``TokenStreamed`` event through a topic configured like ``tokens``: what the
broker and the Python client can do with nothing else in the way.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.stats import rate_in_window, summary
from producers.topics import ensure_topics
from schemas.events import TokenStreamed
from schemas.topics import JOB_EVENTS, TOKENS, TopicSpec, topic_specs

BASELINE_TOPIC = "bench.kafka-baseline"
MAX_IN_FLIGHT = 20_000  # produced but not yet consumed, so the max-rate loop stays sustainable
TICK_S = 0.005


def token_event_size() -> int:
    """Bytes of a typical TokenStreamed value, as the worker publishes it."""
    example = TokenStreamed(
        job_id="0198f0a2-61c1-7b2e-9a3c-5d1f2e3a4b5c", attempt=1, seq=42, text=" partition"
    )
    return len(example.to_bytes())


def baseline_value(ts: float, size: int) -> bytes:
    """A JSON value of exactly `size` bytes (when size allows) carrying its send time."""
    head = f'{{"ts":{ts:.6f},"pad":"'
    pad = max(0, size - len(head) - 2)
    return f'{head}{"x" * pad}"}}'.encode()


def ensure_baseline_topic(bootstrap: str) -> None:
    """The baseline's topic, with the partitions, retention and compression of `tokens`."""
    tokens = next(spec for spec in topic_specs() if spec.name == TOKENS)
    spec = TopicSpec(BASELINE_TOPIC, tokens.partitions, tokens.retention_ms, tokens.cleanup_policy)
    ensure_topics(bootstrap, [spec])


@dataclass
class KafkaLoopResult:
    rate_target: float | None
    seconds: float
    messages: int
    msgs_per_s: float
    value_bytes: int
    latency_ms: dict[str, float | None] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "rate_target": self.rate_target,
            "seconds": self.seconds,
            "messages": self.messages,
            "msgs_per_s": self.msgs_per_s,
            "value_bytes": self.value_bytes,
            "latency_ms": self.latency_ms,
        }


async def _assigned_consumer(bootstrap: str, topic: str) -> AIOKafkaConsumer:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    partitions = consumer.partitions_for_topic(topic) or set()
    if not partitions:
        await consumer._client.force_metadata_update()  # a topic new to this client
        partitions = consumer.partitions_for_topic(topic) or set()
    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    consumer.assign(tps)
    await consumer.seek_to_end(*tps)
    for tp in tps:
        await consumer.position(tp)  # resolve the end offsets now, before anything is produced
    return consumer


async def kafka_loop(
    bootstrap: str, seconds: float, *, rate: float | None = None, keys: int = 100
) -> KafkaLoopResult:
    """Produce and consume for `seconds`: as fast as it sustains, or paced at `rate` msgs/s."""
    size = token_event_size()
    consumer = await _assigned_consumer(bootstrap, BASELINE_TOPIC)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    await producer.start()
    key_bytes = [f"bench-key-{k}".encode() for k in range(keys)]
    consumed_at: list[float] = []
    latencies: list[float] = []
    produced = 0
    began = time.time()
    end = began + seconds
    producing_done, caught_up = asyncio.Event(), asyncio.Event()

    async def consume() -> None:
        while True:
            batches = await consumer.getmany(timeout_ms=100)
            for records in batches.values():
                for record in records:
                    now = time.time()
                    consumed_at.append(now)
                    latencies.append(now - json.loads(record.value)["ts"])
            if producing_done.is_set() and len(consumed_at) >= produced:
                caught_up.set()

    reader = asyncio.create_task(consume())
    try:
        while (now := time.time()) < end:
            due = MAX_IN_FLIGHT + len(consumed_at) if rate is None else int((now - began) * rate)
            if produced >= due:
                await asyncio.sleep(TICK_S if rate is not None else 0.001)
                continue
            key = key_bytes[produced % keys]
            await producer.send(BASELINE_TOPIC, baseline_value(time.time(), size), key=key)
            produced += 1
        await producer.flush()
        producing_done.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(caught_up.wait(), 5)
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        await producer.stop()
        await consumer.stop()
    ramp = min(1.0, seconds / 5)
    return KafkaLoopResult(
        rate_target=rate,
        seconds=seconds,
        messages=len(consumed_at),
        msgs_per_s=rate_in_window(consumed_at, began + ramp, end),
        value_bytes=size,
        latency_ms=summary(latencies, 1000),
    )


class LifecycleWatcher:
    """Reads `job-events` from now on: when each job started, which jobs have ended."""

    def __init__(self, bootstrap: str) -> None:
        self._bootstrap = bootstrap
        self.started_at: dict[str, float] = {}
        self.finished: set[str] = set()
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._consumer = await _assigned_consumer(self._bootstrap, JOB_EVENTS)
        self._task = asyncio.create_task(self._read(self._consumer))

    async def _read(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for record in records:
                    self._note(json.loads(record.value))

    def _note(self, event: dict[str, Any]) -> None:
        kind, job_id = event.get("type"), event.get("job_id")
        if not isinstance(job_id, str):
            return
        if kind == "job.started":
            self.started_at.setdefault(job_id, float(event["started_at"]))
        elif kind in ("job.completed", "job.failed", "job.cancelled"):
            self.finished.add(job_id)

    async def wait_finished(self, job_ids: list[str], timeout_s: float) -> int:
        """Wait until all of `job_ids` ended or the timeout passed; how many ended."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if all(j in self.finished for j in job_ids):
                break
            await asyncio.sleep(0.1)
        return sum(1 for j in job_ids if j in self.finished)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()
