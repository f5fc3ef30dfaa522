"""The api's metrics: scrape-time values, terminal events, breaker hook, lag arithmetic."""

from __future__ import annotations

from prometheus_client import generate_latest

from api.metrics import (
    JOBS_FINISHED,
    TTFT_SECONDS,
    ScrapedValues,
    record_breaker_states,
    registry,
    scraped,
)
from api.ops.event_metrics import observe_event
from api.ops.kafka_stats import NO_OFFSET, partition_lag
from schemas.events import JobCompleted, JobStarted, Timings, Usage
from schemas.jobs import JobType
from schemas.topics import Priority
from sluice.metric_names import MetricName


def _value(name: str, labels: dict[str, str] | None = None) -> float:
    return registry.get_sample_value(name, labels or {}) or 0.0


def test_lag_counts_from_the_committed_offset_or_the_start_of_the_log() -> None:
    assert partition_lag(end=10, committed=7, earliest=0) == 3
    assert partition_lag(end=10, committed=NO_OFFSET, earliest=4) == 6
    assert partition_lag(end=10, committed=12, earliest=0) == 0


def test_scraped_values_are_exposed_and_a_missing_source_is_said() -> None:
    scraped.values = ScrapedValues(
        jobs_by_status={"completed": 3, "running": 1},
        submitted_by_priority={"high": 5},
        tokens_total=1234,
        lag_by_priority={"urgent": 0, "high": 2},
        workers_online=2,
        sources_up={"postgres": True, "kafka": True},
    )
    assert _value(MetricName.jobs, {"status": "completed"}) == 3
    assert _value(f"{MetricName.tokens_streamed}_total") == 1234
    assert _value(f"{MetricName.jobs_submitted}_total", {"priority": "high"}) == 5
    assert _value(MetricName.queue_lag, {"priority": "high"}) == 2
    assert _value(MetricName.workers_online) == 2
    scraped.values = ScrapedValues(sources_up={"postgres": False, "kafka": True})
    text = generate_latest(registry).decode()
    assert f'{MetricName.source_up}{{source="postgres"}} 0.0' in text
    assert f"{MetricName.jobs}{{" not in text  # no figure rather than a wrong one


def test_terminal_events_count_by_status_and_feed_the_ttft_histogram() -> None:
    common = {
        "job_id": "j-1",
        "user_id": "u",
        "job_type": JobType.analysis,
        "priority": Priority.high,
    }
    done_before = _value(f"{MetricName.jobs_finished}_total", {"status": "completed"})
    count_before = _value(f"{MetricName.ttft_seconds}_count")
    fast_before = _value(f"{MetricName.ttft_seconds}_bucket", {"le": "0.25"})
    completed = JobCompleted(
        **common,
        attempt=1,
        model="gpt-4o-mini",
        token_count=3,
        response="abc",
        usage=Usage(),
        timings=Timings(ttft_ms=200.0, duration_ms=900.0),
        tokens_per_second=3.3,
        estimated_cost_usd=0.0,
        started_at=1.0,
        finished_at=2.0,
    )
    observe_event(completed.to_bytes())
    observe_event(JobStarted(**common, attempt=1, model="m", worker="w", started_at=1.0).to_bytes())
    observe_event(b"not json")
    assert JOBS_FINISHED is not None and TTFT_SECONDS is not None
    assert _value(f"{MetricName.jobs_finished}_total", {"status": "completed"}) == done_before + 1
    assert _value(f"{MetricName.ttft_seconds}_count") == count_before + 1
    assert _value(f"{MetricName.ttft_seconds}_bucket", {"le": "0.25"}) == fast_before + 1


def test_breaker_hook_replaces_the_previous_readings() -> None:
    record_breaker_states([("w1", "api.openai.com", "gpt-4o", "open"), ("w1", "p", "m", "closed")])
    labels = {"worker": "w1", "provider": "api.openai.com", "model": "gpt-4o"}
    assert _value(MetricName.breaker_state, labels) == 2
    record_breaker_states([("w1", "api.openai.com", "gpt-4o", "half_open")])
    assert _value(MetricName.breaker_state, labels) == 1
    assert (
        registry.get_sample_value(
            MetricName.breaker_state, {"worker": "w1", "provider": "p", "model": "m"}
        )
        is None
    )
