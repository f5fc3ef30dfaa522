"""Lifecycle events → rows of the Postgres jobs table, and which event wins."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

import pytest
from psycopg.types.json import Jsonb

from schemas.events import (
    ErrorInfo,
    JobCancelled,
    JobCompleted,
    JobFailed,
    JobQueued,
    JobStarted,
    Timings,
    Usage,
)
from schemas.jobs import JobConfig, JobStatus, JobType
from schemas.topics import Priority
from sinks.job_rows import JobRow, job_row, parse_response, pg_safe, supersedes
from sinks.pipeline import InvalidMessage
from sinks.postgres_sink import ATTEMPT_COLUMNS, JOB_COLUMNS, UPSERT_JOB, job_params

T0 = 1_780_000_000.0
CONTEXT: dict[str, Any] = {
    "job_id": "job-1",
    "user_id": "user-1",
    "job_type": JobType.analysis,
    "priority": Priority.high,
}


def finished(**overrides: Any) -> dict[str, Any]:
    return {
        **CONTEXT,
        "attempt": 1,
        "model": "gpt-4o-mini",
        "token_count": 3,
        "response": "a b c",
        "usage": Usage(prompt_tokens=10, completion_tokens=3, total_tokens=13),
        "timings": Timings(queue_wait_ms=120.0, ttft_ms=80.0, duration_ms=900.0),
        "tokens_per_second": 3.3,
        "estimated_cost_usd": 0.0001,
        "finish_reason": "stop",
        "started_at": T0 + 1,
        "finished_at": T0 + 2,
        **overrides,
    }


def at(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, tz=UTC)


def test_queued_fills_the_job_columns_and_leaves_the_attempt_open() -> None:
    event = JobQueued(
        **CONTEXT,
        prompt="Explain Kafka",
        config=JobConfig(max_tokens=64),
        metadata={"source": "test"},
        submitted_at=T0,
    )
    row = job_row(event)
    assert row.status is JobStatus.queued
    assert row.prompt == "Explain Kafka"
    assert row.config == {"model": "gpt-4o-mini", "max_tokens": 64, "temperature": 0.7}
    assert row.metadata == {"source": "test"}
    assert row.submitted_at == at(T0)
    assert (row.user_id, row.job_type, row.priority) == ("user-1", "analysis", "high")
    assert row.attempt is None and row.response is None
    assert row.last_event_id == event.event_id


def test_started_marks_the_attempt_running() -> None:
    event = JobStarted(**CONTEXT, attempt=2, model="m", worker="w-1", started_at=T0 + 1)
    row = job_row(event)
    assert (row.status, row.attempt, row.started_at) == (JobStatus.running, 2, at(T0 + 1))
    assert row.prompt is None and row.submitted_at is None


def test_completed_carries_result_usage_timings_and_stats() -> None:
    row = job_row(JobCompleted(**finished()))
    assert row.status is JobStatus.completed
    assert row.response == "a b c"
    assert row.token_usage == {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}
    assert row.processing_time_ms == 900.0
    assert row.streaming_stats == {
        "token_count": 3,
        "ttft_ms": 80.0,
        "queue_wait_ms": 120.0,
        "tokens_per_second": 3.3,
        "estimated_cost_usd": 0.0001,
        "finish_reason": "stop",
        "model": "gpt-4o-mini",
    }
    assert (row.started_at, row.completed_at) == (at(T0 + 1), at(T0 + 2))
    assert row.error_code is None


def test_failed_and_cancelled_keep_their_status_and_error() -> None:
    failed = job_row(JobFailed(**finished(), error=ErrorInfo(code="llm_timeout", message="slow")))
    assert (failed.status, failed.error_code, failed.error_message) == (
        JobStatus.failed,
        "llm_timeout",
        "slow",
    )
    assert job_row(JobCancelled(**finished())).status is JobStatus.cancelled


def test_a_json_answer_is_also_stored_parsed() -> None:
    assert parse_response('{"severity": "high"}') == {"severity": "high"}
    assert parse_response('```json\n[{"a": 1}]\n```') == [{"a": 1}]
    assert parse_response("plain words") is None
    assert parse_response("{not json") is None
    assert parse_response("42") is None
    row = job_row(JobCompleted(**finished(response='{"sentiment": "positive"}')))
    assert row.parsed_response == {"sentiment": "positive"}


def test_text_postgres_cannot_hold_is_cleaned_not_fatal() -> None:
    assert pg_safe({"k\x00": ["a\x00b", float("nan"), 1.5]}) == {"k": ["ab", None, 1.5]}
    row = job_row(JobCompleted(**finished(response="a\x00b", tokens_per_second=float("inf"))))
    assert row.response == "ab"
    assert row.streaming_stats is not None and row.streaming_stats["tokens_per_second"] is None


@pytest.mark.parametrize("started_at", [float("nan"), 1e20, -5.0])
def test_an_impossible_timestamp_is_an_invalid_message(started_at: float) -> None:
    with pytest.raises(InvalidMessage, match="started_at"):
        job_row(JobStarted(**CONTEXT, attempt=1, model="m", worker="w", started_at=started_at))


def test_an_attempt_past_int4_is_an_invalid_message() -> None:
    with pytest.raises(InvalidMessage, match="attempt"):
        job_row(JobStarted(**CONTEXT, attempt=2**31, model="m", worker="w", started_at=T0))


S = JobStatus


@pytest.mark.parametrize(
    ("incoming", "current", "wins"),
    [
        ((1, S.running), (None, S.queued), True),  # started after queued
        ((None, S.queued), (1, S.running), False),  # late queued never resets the status
        ((1, S.completed), (1, S.running), True),
        ((1, S.running), (1, S.completed), False),  # terminal is not undone by a late start
        ((1, S.failed), (1, S.completed), False),  # first terminal of an attempt stays
        ((1, S.completed), (1, S.completed), False),  # a replay changes nothing
        ((2, S.running), (1, S.failed), True),  # a retry supersedes the failed attempt
        ((1, S.completed), (2, S.running), False),  # a stale attempt never overwrites
    ],
)
def test_supersedes(
    incoming: tuple[int | None, JobStatus], current: tuple[int | None, JobStatus], wins: bool
) -> None:
    assert supersedes(incoming, current) is wins


def test_the_upsert_names_every_column_of_a_row_once() -> None:
    columns = {f.name for f in fields(JobRow)}
    assert columns == {"job_id", *JOB_COLUMNS, *ATTEMPT_COLUMNS}
    assert len(JOB_COLUMNS) + len(ATTEMPT_COLUMNS) + 1 == len(columns)
    for column in columns:
        assert f"%({column})s" in UPSERT_JOB


def test_params_send_json_columns_as_jsonb() -> None:
    params = job_params(job_row(JobCompleted(**finished())))
    assert isinstance(params["token_usage"], Jsonb)
    assert isinstance(params["streaming_stats"], Jsonb)
    assert params["config"] is None
    assert params["status"] == "completed"
