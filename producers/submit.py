"""Submitting jobs: durable in Kafka before anyone is told "accepted"."""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from schemas.events import JobQueued, JobRequested
from schemas.topics import JOB_EVENTS, priority_topic

log = logging.getLogger(__name__)


class KafkaUnavailable(Exception):
    """Kafka did not take the job; the caller must not report it accepted."""


class JobSubmitter:
    """An idempotent, acks=all producer: a send returns only once the broker has the event."""

    def __init__(self, bootstrap: str, send_timeout_s: float = 10.0) -> None:
        self._bootstrap = bootstrap
        self._timeout = send_timeout_s
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def _ready_producer(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    bootstrap_servers=self._bootstrap,
                    acks="all",
                    enable_idempotence=True,
                    request_timeout_ms=int(self._timeout * 1000),
                    linger_ms=0,
                )
                try:
                    await asyncio.wait_for(producer.start(), self._timeout)
                except (KafkaError, OSError, TimeoutError) as exc:
                    await producer.stop()
                    raise KafkaUnavailable(str(exc)) from exc
                self._producer = producer
            return self._producer

    async def start(self) -> None:
        try:
            await self._ready_producer()
        except KafkaUnavailable:
            log.warning("Kafka is not reachable yet; submissions will answer 503 until it is")

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def send_durably(self, topic: str, key: bytes, value: bytes) -> None:
        """Send one event and return once the broker has it (acks=all)."""
        producer = await self._ready_producer()
        try:
            await asyncio.wait_for(producer.send_and_wait(topic, value, key=key), self._timeout)
        except (KafkaError, TimeoutError) as exc:
            raise KafkaUnavailable(str(exc)) from exc

    async def submit(self, queued: JobQueued, job: JobRequested) -> None:
        """Record the job as queued, then hand it to the workers.

        The queued event goes first so the lifecycle log never shows a job starting
        before it was queued.
        """
        await self.send_durably(JOB_EVENTS, queued.key(), queued.to_bytes())
        await self.send_durably(priority_topic(job.priority), job.key(), job.to_bytes())
