"""job.retrying in Postgres: the row shows the retry until the next attempt starts."""

from __future__ import annotations

import pytest

from schemas.events import ErrorInfo, JobRetrying
from schemas.jobs import JobStatus, JobType
from schemas.topics import JOB_EVENTS, Priority
from sinks.clickhouse_sink import clickhouse_row
from sinks.job_rows import job_row, supersedes
from sinks.pipeline import Origin

S = JobStatus


def retrying(attempt: int = 1) -> JobRetrying:
    return JobRetrying(
        job_id="j",
        user_id="u",
        job_type=JobType.analysis,
        priority=Priority.normal,
        attempt=attempt,
        model="m",
        error=ErrorInfo(code="llm_server_error", message="boom"),
        token_count=4,
        retry_in_s=2.0,
        started_at=1_700_000_000.0,
        failed_at=1_700_000_001.0,
    )


def test_a_retrying_row_has_the_error_and_no_response() -> None:
    row = job_row(retrying())
    assert row.status is S.retrying and row.attempt == 1
    assert (row.error_code, row.error_message) == ("llm_server_error", "boom")
    assert row.response is None
    assert row.streaming_stats is not None and row.streaming_stats["next_attempt"] == 2


@pytest.mark.parametrize(
    ("incoming", "current", "wins"),
    [
        ((1, S.retrying), (1, S.running), True),  # the attempt failed
        ((1, S.running), (1, S.retrying), False),  # a late start of the same attempt
        ((2, S.running), (1, S.retrying), True),  # the next attempt starts
        ((1, S.retrying), (2, S.running), False),  # a late retrying never goes back
        ((1, S.failed), (1, S.retrying), True),  # timed out while waiting
        ((1, S.retrying), (1, S.completed), False),
    ],
)
def test_retrying_sits_between_an_attempts_start_and_the_next(
    incoming: tuple[int, JobStatus], current: tuple[int, JobStatus], wins: bool
) -> None:
    assert supersedes(incoming, current) is wins


def test_clickhouse_stores_no_row_for_a_retry() -> None:
    origin = Origin(JOB_EVENTS, 0, 0, b"j", retrying().to_bytes())
    assert clickhouse_row(origin) is None
