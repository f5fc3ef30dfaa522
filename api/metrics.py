"""The api's Prometheus metrics (served by ``GET /metrics`` in ``api.routes.health``).

Where each value comes from (names in ``sluice.metric_names``):
- jobs by status: a count of Postgres ``jobs`` rows, read at scrape time;
- jobs submitted, tokens streamed, queue lag, workers: read from Kafka at scrape time
  (end offsets, the worker group's committed offsets and members), the same on every replica;
- jobs finished and the TTFT histogram: observed from terminal events by a consumer in the
  group ``sluice-api-metrics``, so each event is counted by one replica: sum across replicas;
- tokens relayed and open WebSockets: counted by this process's WebSocket route;
- breaker state: fed by ``record_breaker_states`` (the worker exports its own too).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import ParamSpec

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from sluice.metric_names import BREAKER_STATE_VALUES, TTFT_BUCKETS_S, MetricName

registry = CollectorRegistry()
ProcessCollector(registry=registry)

WEBSOCKETS_OPEN = Gauge(
    MetricName.websockets_open, "WebSockets open on this api process", registry=registry
)
TOKENS_RELAYED = Counter(
    MetricName.tokens_relayed, "tokens sent to WebSocket subscribers", registry=registry
)
JOBS_FINISHED = Counter(
    MetricName.jobs_finished, "terminal job events seen, by status", ["status"], registry=registry
)
TTFT_SECONDS = Histogram(
    MetricName.ttft_seconds,
    "time to first token of finished jobs",
    buckets=TTFT_BUCKETS_S,
    registry=registry,
)
BREAKER_STATE = Gauge(
    MetricName.breaker_state,
    "circuit breaker state: 0 closed, 1 half-open, 2 open",
    ["worker", "provider", "model"],
    registry=registry,
)


P = ParamSpec("P")


def counts_open_socket(handler: Callable[P, Awaitable[None]]) -> Callable[P, Awaitable[None]]:
    """Decorates a WebSocket route: the socket counts as open while its handler runs."""

    @functools.wraps(handler)
    async def counted(*args: P.args, **kwargs: P.kwargs) -> None:
        with WEBSOCKETS_OPEN.track_inprogress():
            await handler(*args, **kwargs)

    return counted


def record_breaker_states(readings: Iterable[tuple[str, str, str, str]]) -> None:
    """The hook for breaker state: (worker, provider, model, state) with state closed,
    half_open or open. Replaces what was recorded before."""
    BREAKER_STATE.clear()
    for worker, provider, model, state in readings:
        BREAKER_STATE.labels(worker, provider, model).set(BREAKER_STATE_VALUES[state])


@dataclass
class ScrapedValues:
    """Values read from Postgres and Kafka for one scrape; None where a source failed."""

    jobs_by_status: dict[str, int] | None = None
    submitted_by_priority: dict[str, int] | None = None
    tokens_total: int | None = None
    lag_by_priority: dict[str, int] | None = None
    workers_online: int | None = None
    sources_up: dict[str, bool] = field(default_factory=dict)


class ScrapeCollector(Collector):
    """Exposes the latest ``ScrapedValues``; refreshed by the route just before each scrape."""

    def __init__(self) -> None:
        self.values = ScrapedValues()

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        v = self.values
        if v.jobs_by_status is not None:
            jobs = GaugeMetricFamily(MetricName.jobs, "jobs by status", labels=["status"])
            for status, n in sorted(v.jobs_by_status.items()):
                jobs.add_metric([status], n)
            yield jobs
        if v.submitted_by_priority is not None:
            submitted = CounterMetricFamily(
                MetricName.jobs_submitted, "jobs produced per priority topic", labels=["priority"]
            )
            for priority, n in v.submitted_by_priority.items():
                submitted.add_metric([priority], n)
            yield submitted
        if v.tokens_total is not None:
            yield CounterMetricFamily(
                MetricName.tokens_streamed, "tokens produced by all workers", value=v.tokens_total
            )
        if v.lag_by_priority is not None:
            lag = GaugeMetricFamily(
                MetricName.queue_lag, "unacknowledged jobs per priority", labels=["priority"]
            )
            for priority, n in v.lag_by_priority.items():
                lag.add_metric([priority], n)
            yield lag
        if v.workers_online is not None:
            yield GaugeMetricFamily(
                MetricName.workers_online, "members of the worker group", value=v.workers_online
            )
        up = GaugeMetricFamily(MetricName.source_up, "scrape source answered", labels=["source"])
        for source, ok in sorted(v.sources_up.items()):
            up.add_metric([source], 1 if ok else 0)
        yield up


scraped = ScrapeCollector()
registry.register(scraped)
