"""Cancel commands, as every worker sees them.

Each worker reads all of `jobs.control` itself (no consumer group: a command must reach
the worker that runs the job, whichever it is), from the topic's start, so a job
cancelled while it was still queued never starts, even on a worker started later.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.events import CancelRequested, EventDecodeError, decode_cancel
from schemas.topics import CONTROL

log = logging.getLogger(__name__)


class CancelRegistry:
    """Which jobs were cancelled, and an event per running job to stop it promptly."""

    def __init__(self) -> None:
        self._cancelled: dict[str, float] = {}
        self._running: dict[str, asyncio.Event] = {}

    def record(self, command: CancelRequested) -> None:
        self._cancelled.setdefault(command.job_id, command.requested_at)
        if (event := self._running.get(command.job_id)) is not None:
            event.set()

    def is_cancelled(self, job_id: str) -> bool:
        return job_id in self._cancelled

    def watch(self, job_id: str) -> asyncio.Event:
        """An event set when the job is cancelled (already set if it was)."""
        event = self._running.setdefault(job_id, asyncio.Event())
        if job_id in self._cancelled:
            event.set()
        return event

    def release(self, job_id: str) -> None:
        self._running.pop(job_id, None)


class ControlListener:
    """Tails `jobs.control` into a CancelRegistry."""

    def __init__(self, bootstrap: str, registry: CancelRegistry) -> None:
        self._bootstrap = bootstrap
        self.registry = registry
        self._consumer: AIOKafkaConsumer | None = None
        self._partitions: list[TopicPartition] = []

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap, group_id=None, enable_auto_commit=False
        )
        await consumer.start()
        partitions = consumer.partitions_for_topic(CONTROL)
        if not partitions:
            await consumer.topics()  # fetches metadata
            partitions = consumer.partitions_for_topic(CONTROL) or {0}
        self._partitions = [TopicPartition(CONTROL, p) for p in sorted(partitions)]
        consumer.assign(self._partitions)
        await consumer.seek_to_beginning(*self._partitions)
        self._consumer = consumer

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    async def run(self) -> None:
        assert self._consumer is not None, "start() first"
        while True:
            batches = await self._consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for record in records:
                    self._apply(record.value)

    def _apply(self, raw: bytes | None) -> None:
        try:
            self.registry.record(decode_cancel(raw or b""))
        except EventDecodeError as exc:
            log.warning("ignoring an undecodable control command: %s", exc)

    async def caught_up(self, timeout_s: float = 2.0) -> bool:
        """Wait until every command sent before now has been read (or the timeout passes).

        Called before a job starts, so a cancel sent just before can't be missed.
        """
        if self._consumer is None:
            return False
        ends = await self._consumer.end_offsets(self._partitions)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            positions = [await self._consumer.position(tp) for tp in self._partitions]
            if all(pos >= ends[tp] for pos, tp in zip(positions, self._partitions, strict=True)):
                return True
            await asyncio.sleep(0.01)
        return False


class Cancellations:
    """What the job processor asks: was this job cancelled, and tell me if it is."""

    def __init__(self, listener: ControlListener | None = None) -> None:
        self._listener = listener
        self._registry = listener.registry if listener else CancelRegistry()

    async def requested(self, job_id: str) -> bool:
        """Whether a cancel was sent for the job, counting every command sent before now."""
        if self._listener is not None:
            await self._listener.caught_up()
        return self._registry.is_cancelled(job_id)

    def watch(self, job_id: str) -> asyncio.Event:
        return self._registry.watch(job_id)

    def release(self, job_id: str) -> None:
        self._registry.release(job_id)
