"""Counts terminal job events into the api's metrics: jobs finished by status, and TTFT.

One consumer per api process in the group ``sluice-api-metrics``: the group splits the
partitions of ``job-events`` between replicas, so each event is counted once across them
(sum the series over instances). It starts at the end of the log: metrics are about what
happens while the process runs, as Prometheus counters are.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaConnectionError, KafkaError

from api.metrics import JOBS_FINISHED, TTFT_SECONDS
from schemas.events import EventDecodeError, JobFinished, decode_job_event
from schemas.topics import JOB_EVENTS

METRICS_GROUP = "sluice-api-metrics"
RETRY_S = 5.0
REJOIN_AFTER_S = 20.0
log = logging.getLogger(__name__)


def observe_event(raw: bytes) -> None:
    """Count one job-events message; anything not a terminal event is ignored."""
    try:
        event = decode_job_event(raw)
    except EventDecodeError:
        return  # not ours to judge: the sinks dead-letter what they cannot decode
    if not isinstance(event, JobFinished):
        return
    JOBS_FINISHED.labels(event.type.removeprefix("job.")).inc()
    if event.timings.ttft_ms is not None:
        TTFT_SECONDS.observe(event.timings.ttft_ms / 1000.0)


class EventMetricsConsumer:
    def __init__(self, bootstrap: str) -> None:
        self._bootstrap = bootstrap
        self.assigned = asyncio.Event()

    async def run(self) -> None:
        """Consume until cancelled; while Kafka is away, try again every few seconds."""
        while True:
            consumer = AIOKafkaConsumer(
                JOB_EVENTS,
                bootstrap_servers=self._bootstrap,
                group_id=METRICS_GROUP,
                auto_offset_reset="latest",
                enable_auto_commit=True,
            )
            try:
                await consumer.start()
                await self._consume(consumer)
            except KafkaError as exc:  # KafkaConnectionError included
                log.warning("job-events metrics consumer: %s; retrying", type(exc).__name__)
            finally:
                self.assigned.clear()
                await consumer.stop()
            await asyncio.sleep(RETRY_S)

    async def _consume(self, consumer: AIOKafkaConsumer) -> None:
        # A group member can come out of a broker restart without partitions and never
        # rejoin; past this long without any, the consumer is replaced.
        unassigned_since: float | None = None
        loop = asyncio.get_running_loop()
        while True:
            batches = await consumer.getmany(timeout_ms=1000)
            if consumer.assignment():
                self.assigned.set()
                unassigned_since = None
            elif unassigned_since is None:
                unassigned_since = loop.time()
            elif loop.time() - unassigned_since > REJOIN_AFTER_S:
                raise KafkaConnectionError("no partitions assigned; starting a new consumer")
            for messages in batches.values():
                for message in messages:
                    if message.value is not None:
                        observe_event(message.value)
