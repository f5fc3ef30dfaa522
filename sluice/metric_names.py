"""Every Prometheus metric sluice exports, named once, so a typo fails mypy rather than a graph.

The api serves all of them on ``/metrics``; the worker serves the breaker gauge on its own
``/metrics``. Where a value comes from is said next to its name.
"""

from __future__ import annotations

from enum import StrEnum


class MetricName(StrEnum):
    # Postgres `jobs` rows by status, counted at scrape time (a gauge: jobs move between states).
    jobs = "sluice_jobs"
    # Terminal job events the api's metrics consumer read, by status (summed across replicas).
    jobs_finished = "sluice_jobs_finished"
    # Jobs produced to each priority topic: the sum of its end offsets (submissions + requeues).
    jobs_submitted = "sluice_jobs_submitted"
    # Tokens every worker produced: the sum of the `tokens` topic's end offsets. rate() = tok/s.
    tokens_streamed = "sluice_tokens_streamed"
    # Tokens this api process sent to WebSocket subscribers.
    tokens_relayed = "sluice_tokens_relayed"
    # Time to first token of finished jobs, from their terminal events' timings.
    ttft_seconds = "sluice_ttft_seconds"
    # Messages of jobs.<priority> not yet acknowledged by the worker group (waiting or running).
    queue_lag = "sluice_queue_lag"
    # Members of the worker consumer group.
    workers_online = "sluice_workers_online"
    # Circuit breaker per worker, provider and model: 0 closed, 1 half-open, 2 open.
    breaker_state = "sluice_breaker_state"
    # WebSockets open on this api process.
    websockets_open = "sluice_websockets_open"
    # 1 when a scrape-time source answered, 0 when it did not (its metrics are then absent).
    source_up = "sluice_source_up"


BREAKER_STATE_VALUES: dict[str, int] = {"closed": 0, "half_open": 1, "open": 2}

# Seconds. Streams from a healthy provider start within a second; a slow first token is news.
TTFT_BUCKETS_S: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
