"""One tail of the log per api process, fanned out to its subscribers.

A thousand WebSocket clients must not mean a thousand Kafka consumers: the hub reads
`tokens` and `job-events` once, from the end, and hands each record to the
subscribers of its job (by key) and, for lifecycle events, of its user. A subscriber
learns, at the moment it subscribes, the offset from which the hub will deliver; what
came before it reads from the log itself (see api/feed.py), so nothing falls between
the two and nothing is delivered twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.events import EventDecodeError, JobEvent, decode_job_event
from schemas.topics import JOB_EVENTS, TOKENS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LogRecord:
    topic: str
    partition: int
    offset: int
    value: bytes


class SubscriberOverflow(Exception):
    """A subscriber fell further behind than its buffer allows."""


@dataclass(eq=False)  # compared and hashed by identity: one per subscriber
class Subscription:
    """Records for one subscriber, bounded: a slow reader is cut off, never buffered forever."""

    capacity: int
    live_from: dict[TopicPartition, int] = field(default_factory=dict)
    overflowed: bool = False
    _queue: asyncio.Queue[LogRecord | JobEvent] = field(init=False)

    def __post_init__(self) -> None:
        self._queue = asyncio.Queue(maxsize=self.capacity)

    def offer(self, item: LogRecord | JobEvent) -> None:
        if self.overflowed:
            return
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self.overflowed = True

    async def next(self, timeout_s: float) -> LogRecord | JobEvent | None:
        if self.overflowed and self._queue.empty():
            raise SubscriberOverflow
        try:
            return await asyncio.wait_for(self._queue.get(), timeout_s)
        except TimeoutError:
            if self.overflowed:
                raise SubscriberOverflow from None
            return None

    def drain(self) -> Iterator[LogRecord | JobEvent]:
        while not self._queue.empty():
            yield self._queue.get_nowait()


class FeedHub:
    def __init__(
        self,
        bootstrap: str,
        partition_count: Callable[[str], Awaitable[int]],
        capacity: int = 2000,
    ) -> None:
        self._bootstrap = bootstrap
        self._partition_count = partition_count
        self._capacity = capacity
        self._consumer: AIOKafkaConsumer | None = None
        self._next: dict[TopicPartition, int] = {}
        self._by_job: dict[bytes, set[Subscription]] = {}
        self._by_user: dict[str, set[Subscription]] = {}
        self._task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    @property
    def subscriber_count(self) -> int:
        return sum(len(s) for s in self._by_job.values()) + sum(
            len(s) for s in self._by_user.values()
        )

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="feed-hub")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    @contextlib.contextmanager
    def job_subscription(self, job_id: str) -> Iterator[Subscription]:
        """Live records of one job from now on; `live_from` says from which offsets."""
        sub = Subscription(self._capacity, live_from=dict(self._next))
        key = job_id.encode()
        self._by_job.setdefault(key, set()).add(sub)
        try:
            yield sub
        finally:
            self._discard(self._by_job, key, sub)

    @contextlib.contextmanager
    def user_subscription(self, user_id: str | None) -> Iterator[Subscription]:
        """Decoded lifecycle events of one user's jobs (None: every user's) from now on."""
        sub = Subscription(self._capacity, live_from=dict(self._next))
        key = user_id or "*"
        self._by_user.setdefault(key, set()).add(sub)
        try:
            yield sub
        finally:
            self._discard(self._by_user, key, sub)

    @staticmethod
    def _discard(index: dict[Any, set[Subscription]], key: Any, sub: Subscription) -> None:
        subs = index.get(key)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del index[key]

    async def _run(self) -> None:
        while True:
            try:
                await self._tail()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("feed hub lost the log; reconnecting")
                self.ready.clear()
                await asyncio.sleep(1.0)

    async def _tail(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap, group_id=None, enable_auto_commit=False
        )
        await consumer.start()
        self._consumer = consumer
        try:
            tps = [
                TopicPartition(topic, p)
                for topic in (TOKENS, JOB_EVENTS)
                for p in range(await self._partition_count(topic))
            ]
            consumer.assign(tps)
            ends = await consumer.end_offsets(tps)
            for tp in tps:
                # After a reconnect, carry on where dispatching stopped: no gap.
                consumer.seek(tp, self._next.get(tp, ends[tp]))
                self._next.setdefault(tp, ends[tp])
            self.ready.set()
            while True:
                batches = await consumer.getmany(timeout_ms=200, max_records=5000)
                for tp, records in batches.items():
                    for record in records:
                        self._dispatch(tp, record.offset, record.key, record.value)
                    if records:
                        self._next[tp] = records[-1].offset + 1
        finally:
            self._consumer = None
            await consumer.stop()

    def _dispatch(self, tp: TopicPartition, offset: int, key: bytes | None, value: bytes) -> None:
        subs = self._by_job.get(key) if key is not None else None
        if subs:
            record = LogRecord(tp.topic, tp.partition, offset, value)
            for sub in list(subs):
                sub.offer(record)
        if tp.topic == JOB_EVENTS and self._by_user:
            self._dispatch_to_users(value)

    def _dispatch_to_users(self, value: bytes) -> None:
        try:
            event = decode_job_event(value)
        except EventDecodeError:
            return
        for key in (event.user_id, "*"):
            for sub in list(self._by_user.get(key, ())):
                sub.offer(event)
