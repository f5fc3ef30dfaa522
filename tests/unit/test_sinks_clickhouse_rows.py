"""Tokens and finished jobs → ClickHouse rows; what cannot be stored is an invalid message."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from schemas.events import (
    ErrorInfo,
    JobCompleted,
    JobFailed,
    JobQueued,
    JobStarted,
    Timings,
    TokenStreamed,
    Usage,
)
from schemas.jobs import JobConfig, JobType
from schemas.topics import JOB_EVENTS, TOKENS, Priority
from sinks.clickhouse_rows import JobMetricsRow, TokenEventRow, job_metrics_row, token_event_row
from sinks.clickhouse_sink import clickhouse_row
from sinks.pipeline import InvalidMessage, Origin

T0 = 1_780_000_000.0
CONTEXT: dict[str, Any] = {
    "job_id": "job-7",
    "user_id": "user-7",
    "job_type": JobType.sentiment_analysis,
    "priority": Priority.urgent,
}


def completed(**overrides: Any) -> JobCompleted:
    fields: dict[str, Any] = {
        **CONTEXT,
        "attempt": 2,
        "model": "gpt-4o-mini",
        "token_count": 5,
        "response": "ok",
        "usage": Usage(prompt_tokens=7, completion_tokens=5, total_tokens=12),
        "timings": Timings(queue_wait_ms=500.0, ttft_ms=None, duration_ms=1500.0),
        "tokens_per_second": 3.3,
        "estimated_cost_usd": 0.002,
        "finish_reason": "length",
        "started_at": T0 + 0.5,
        "finished_at": T0 + 2.0,
        **overrides,
    }
    return JobCompleted(**fields)


def origin(topic: str, value: bytes | None, offset: int = 0) -> Origin:
    return Origin(topic, 0, offset, b"job-7", value)


def test_token_row() -> None:
    token = TokenStreamed(job_id="job-7", attempt=2, seq=4, text=" hi", ts=T0)
    row = token_event_row(token)
    assert row == TokenEventRow("job-7", 2, 4, " hi", datetime.fromtimestamp(T0, UTC), "")


def test_metrics_row_of_a_completed_job() -> None:
    row = job_metrics_row(completed())
    assert row.status == "completed"
    assert (row.attempt, row.user_id, row.job_type, row.priority) == (
        2,
        "user-7",
        "sentiment_analysis",
        "urgent",
    )
    assert (row.prompt_tokens, row.completion_tokens, row.total_tokens) == (7, 5, 12)
    assert row.ttft_ms is None and row.error_code is None
    assert row.finish_reason == "length"
    # submitted_at is derived: the attempt started after waiting queue_wait_ms.
    assert row.submitted_at == datetime.fromtimestamp(T0, UTC)
    assert row.finished_at == datetime.fromtimestamp(T0 + 2.0, UTC)
    assert list(row._fields) == list(JobMetricsRow._fields)


def test_metrics_row_of_a_failed_job_has_its_error_code() -> None:
    fields = completed().model_dump(exclude={"type", "event_id", "schema_version"})
    failed = JobFailed(**fields, error=ErrorInfo(code="llm_unavailable", message="503"))
    row = job_metrics_row(failed)
    assert (row.status, row.error_code) == ("failed", "llm_unavailable")


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (TokenStreamed(job_id="j", attempt=70_000, seq=0, text="x", ts=T0), "attempt"),
        (TokenStreamed(job_id="j", attempt=1, seq=-1, text="x", ts=T0), "seq"),
        (TokenStreamed(job_id="j", attempt=1, seq=0, text="x", ts=float("nan")), "ts"),
    ],
)
def test_tokens_that_cannot_be_stored_are_invalid(event: TokenStreamed, field: str) -> None:
    with pytest.raises(InvalidMessage, match=field):
        token_event_row(event)


def test_negative_usage_is_invalid() -> None:
    with pytest.raises(InvalidMessage, match=r"usage\.prompt_tokens"):
        job_metrics_row(completed(usage=Usage(prompt_tokens=-1)))


def test_the_sink_reads_tokens_and_only_terminal_lifecycle_events() -> None:
    token = TokenStreamed(job_id="job-7", attempt=1, seq=0, text="a", ts=T0)
    assert isinstance(clickhouse_row(origin(TOKENS, token.to_bytes())), TokenEventRow)
    assert isinstance(clickhouse_row(origin(JOB_EVENTS, completed().to_bytes())), JobMetricsRow)
    queued = JobQueued(**CONTEXT, prompt="p", config=JobConfig(), submitted_at=T0)
    started = JobStarted(**CONTEXT, attempt=1, model="m", worker="w", started_at=T0)
    assert clickhouse_row(origin(JOB_EVENTS, queued.to_bytes())) is None
    assert clickhouse_row(origin(JOB_EVENTS, started.to_bytes())) is None


@pytest.mark.parametrize(
    ("topic", "value", "reason"),
    [
        (TOKENS, b"\xff not json", "undecodable message on tokens"),
        (TOKENS, b'{"job_id": "j", "attempt": 1}', "seq"),
        (JOB_EVENTS, b'{"job_id": "j", "type": "job.exploded"}', "undecodable"),
        (JOB_EVENTS, None, "empty message"),
    ],
)
def test_garbage_is_an_invalid_message_with_a_reason(
    topic: str, value: bytes | None, reason: str
) -> None:
    with pytest.raises(InvalidMessage, match=reason):
        clickhouse_row(origin(topic, value))
