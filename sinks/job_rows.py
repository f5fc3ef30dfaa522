"""Lifecycle events as rows of the Postgres ``jobs`` table, and which event wins a conflict.

Pure: no I/O. A row carries two kinds of columns. Job columns (who, what, the prompt)
never change once known. Attempt columns (status, result, timings) belong to one
attempt and are replaced only by an event that supersedes the row's (``STATUS_RANK``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from schemas.events import JobEvent, JobFailed, JobFinished, JobQueued, JobRetrying, JobStarted
from schemas.jobs import JobStatus
from sinks.pipeline import InvalidMessage
from sinks.validation import bounded_int, finite_or_none, utc_datetime

# An event supersedes the row when (attempt, rank) is strictly greater: a higher attempt
# always wins, and within an attempt a terminal status is never undone. Equal means the
# first writer stays, so re-applying an event changes nothing. ``retrying`` is written at
# the attempt that failed: it follows that attempt's start and yields to the next one's,
# and to a terminal event of the same attempt (a job that timed out while waiting).
STATUS_RANK: dict[JobStatus, int] = {
    JobStatus.queued: 0,
    JobStatus.running: 1,
    JobStatus.retrying: 2,
    JobStatus.completed: 3,
    JobStatus.failed: 3,
    JobStatus.cancelled: 3,
}
TERMINAL_STATUS: dict[str, JobStatus] = {
    "job.completed": JobStatus.completed,
    "job.failed": JobStatus.failed,
    "job.cancelled": JobStatus.cancelled,
}
MAX_ATTEMPT = 2**31 - 1


@dataclass(frozen=True, slots=True)
class JobRow:
    job_id: str
    status: JobStatus
    last_event_id: str
    # job columns
    user_id: str | None = None
    job_type: str | None = None
    priority: str | None = None
    prompt: str | None = None
    config: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    submitted_at: datetime | None = None
    # attempt columns
    attempt: int | None = None
    response: str | None = None
    parsed_response: Any = None
    token_usage: dict[str, int] | None = None
    processing_time_ms: float | None = None
    streaming_stats: dict[str, Any] | None = None
    error_message: str | None = None
    error_code: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None


def supersedes(
    incoming: tuple[int | None, JobStatus], current: tuple[int | None, JobStatus]
) -> bool:
    """Whether an event at (attempt, status) replaces a row at (attempt, status)."""
    return (incoming[0] or 0, STATUS_RANK[incoming[1]]) > (current[0] or 0, STATUS_RANK[current[1]])


def job_row(event: JobEvent) -> JobRow:
    """The row an event writes; raises ``InvalidMessage`` if it cannot be stored."""
    common: dict[str, Any] = {
        "job_id": pg_safe(event.job_id),
        "last_event_id": pg_safe(event.event_id),
        "user_id": pg_safe(event.user_id),
        "job_type": event.job_type.value,
        "priority": event.priority.value,
    }
    match event:
        case JobQueued():
            return JobRow(
                status=JobStatus.queued,
                prompt=pg_safe(event.prompt),
                config=event.config.model_dump(mode="json"),
                metadata=pg_safe(event.metadata),
                submitted_at=utc_datetime(event.submitted_at, "submitted_at"),
                **common,
            )
        case JobStarted():
            return JobRow(
                status=JobStatus.running,
                attempt=bounded_int(event.attempt, "attempt", 0, MAX_ATTEMPT),
                streaming_stats={"model": pg_safe(event.model)},
                started_at=utc_datetime(event.started_at, "started_at"),
                **common,
            )
        case JobRetrying():
            return JobRow(status=JobStatus.retrying, **common, **_retrying(event))
        case JobFinished():
            return JobRow(status=TERMINAL_STATUS[event.type], **common, **_finished(event))
    raise InvalidMessage(f"no row for a {event.type} event")


def _retrying(event: JobRetrying) -> dict[str, Any]:
    """The failed attempt, its error and when the next one comes; no response of its own."""
    return {
        "attempt": bounded_int(event.attempt, "attempt", 0, MAX_ATTEMPT),
        "streaming_stats": {
            "token_count": event.token_count,
            "retry_in_s": finite_or_none(event.retry_in_s),
            "next_attempt": event.next_attempt,
            "model": pg_safe(event.model),
        },
        "error_message": pg_safe(event.error.message),
        "error_code": pg_safe(event.error.code),
        "started_at": utc_datetime(event.started_at, "started_at"),
    }


def _finished(event: JobFinished) -> dict[str, Any]:
    error = event.error if isinstance(event, JobFailed) else None
    return {
        "attempt": bounded_int(event.attempt, "attempt", 0, MAX_ATTEMPT),
        "response": pg_safe(event.response),
        "parsed_response": pg_safe(parse_response(event.response)),
        "token_usage": event.usage.model_dump(),
        "processing_time_ms": finite_or_none(event.timings.duration_ms),
        "streaming_stats": streaming_stats(event),
        "error_message": pg_safe(error.message) if error else None,
        "error_code": pg_safe(error.code) if error else None,
        "started_at": utc_datetime(event.started_at, "started_at"),
        "completed_at": utc_datetime(event.finished_at, "finished_at"),
    }


def streaming_stats(event: JobFinished) -> dict[str, Any]:
    return {
        "token_count": event.token_count,
        "ttft_ms": finite_or_none(event.timings.ttft_ms),
        "queue_wait_ms": finite_or_none(event.timings.queue_wait_ms),
        "tokens_per_second": finite_or_none(event.tokens_per_second),
        "estimated_cost_usd": finite_or_none(event.estimated_cost_usd),
        "finish_reason": pg_safe(event.finish_reason),
        "model": pg_safe(event.model),
    }


_FENCE = re.compile(r"^```[a-zA-Z]*\s*\n?(.*?)\n?```$", re.DOTALL)


def parse_response(response: str) -> dict[str, Any] | list[Any] | None:
    """The response as JSON when the model answered with a JSON object or array."""
    text = response.strip()
    if fenced := _FENCE.match(text):
        text = fenced.group(1).strip()
    if not text.startswith(("{", "[")):
        return None
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict | list) else None


def pg_safe(value: Any) -> Any:
    """Postgres text and jsonb hold neither U+0000 nor NaN/Infinity: drop them."""
    match value:
        case str():
            return value.replace("\x00", "")
        case dict():
            return {pg_safe(k): pg_safe(v) for k, v in value.items()}
        case list():
            return [pg_safe(v) for v in value]
        case float():
            return finite_or_none(value)
        case _:
            return value
