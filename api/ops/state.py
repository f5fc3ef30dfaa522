"""What the admin routes, the dashboard and /metrics share in one api process.

Attached as a router lifespan, so ``api.main`` only includes routers: a pool of its own,
the job-events metrics consumer, the dead-letter queue, and a short cache of Kafka figures
(each admin poll and each scrape would otherwise ask the broker again).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from fastapi import FastAPI
from psycopg_pool import AsyncConnectionPool

from api.deps import Services
from api.metrics import ScrapedValues
from api.ops import job_stats
from api.ops.dlq import DeadLetters, KafkaDeadLetters
from api.ops.event_metrics import EventMetricsConsumer
from api.ops.kafka_stats import KafkaSnapshot, KafkaStatsUnavailable, kafka_snapshot
from sluice.settings import Settings

KAFKA_CACHE_S = 1.0
RATE_WINDOW_S = 10.0


@dataclass
class KafkaFigures:
    """Kafka snapshots over the last seconds, for rates (tokens/sec) without a consumer."""

    bootstrap: str
    samples: deque[tuple[float, KafkaSnapshot]] = field(default_factory=lambda: deque(maxlen=64))
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def latest(self) -> KafkaSnapshot:
        async with self._lock:
            now = time.monotonic()
            if self.samples and now - self.samples[-1][0] < KAFKA_CACHE_S:
                return self.samples[-1][1]
            snapshot = await asyncio.to_thread(kafka_snapshot, self.bootstrap)
            self.samples.append((now, snapshot))
            while len(self.samples) > 2 and now - self.samples[1][0] > RATE_WINDOW_S:
                self.samples.popleft()
            return snapshot

    def tokens_per_second(self) -> float | None:
        """Tokens produced per second over the last few seconds (None until two samples)."""
        if len(self.samples) < 2:
            return None
        (t0, first), (t1, last) = self.samples[0], self.samples[-1]
        return (last.tokens_total - first.tokens_total) / (t1 - t0) if t1 > t0 else None


@dataclass
class OpsState:
    settings: Settings
    pool: AsyncConnectionPool
    kafka: KafkaFigures
    dead_letters: DeadLetters
    event_metrics: EventMetricsConsumer

    async def scrape(self) -> ScrapedValues:
        values = ScrapedValues()
        try:
            values.jobs_by_status = await job_stats.jobs_by_status(self.pool)
            values.sources_up["postgres"] = True
        except Exception:  # any failure means: no figure this scrape, and say so
            values.sources_up["postgres"] = False
        try:
            snap = await self.kafka.latest()
        except KafkaStatsUnavailable:
            values.sources_up["kafka"] = False
            return values
        values.sources_up["kafka"] = True
        values.submitted_by_priority = snap.submitted_by_priority
        values.tokens_total = snap.tokens_total
        values.lag_by_priority = snap.lag_by_priority
        values.workers_online = len(snap.workers)
        return values


def ops_state(app: FastAPI) -> OpsState:
    state: OpsState = app.state.ops
    return state


@asynccontextmanager
async def ops_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Idempotent: every router that needs the state declares this lifespan; the first runs it."""
    if getattr(app.state, "ops", None) is not None:
        yield
        return
    services: Services = app.state.services
    s = services.settings
    pool = job_stats.make_ops_pool(s.resolved_database_url)
    consumer = EventMetricsConsumer(s.kafka_bootstrap)
    app.state.ops = OpsState(
        settings=s,
        pool=pool,
        kafka=KafkaFigures(s.kafka_bootstrap),
        dead_letters=KafkaDeadLetters(s.kafka_bootstrap, services.submitter),
        event_metrics=consumer,
    )
    await pool.open(wait=False)
    task = asyncio.create_task(consumer.run(), name="job-events metrics")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await pool.close()
        app.state.ops = None
