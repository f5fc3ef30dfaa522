"""Tokens and finished jobs as rows of the ClickHouse ``token_events`` and ``job_metrics`` tables.

Pure: no I/O. Values are range-checked here because the native insert format cannot
carry a negative count or an attempt past UInt16, and one such row would fail a batch.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from schemas.events import JobFailed, TerminalEvent, TokenStreamed
from sinks.job_rows import TERMINAL_STATUS
from sinks.validation import bounded_int, finite_or_none, utc_datetime

UINT16_MAX = 2**16 - 1
UINT32_MAX = 2**32 - 1


class TokenEventRow(NamedTuple):
    job_id: str
    attempt: int
    seq: int
    text: str
    ts: datetime
    user_id: str


class JobMetricsRow(NamedTuple):
    job_id: str
    attempt: int
    user_id: str
    job_type: str
    priority: str
    model: str
    status: str
    queue_wait_ms: float
    ttft_ms: float | None
    duration_ms: float
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    token_count: int
    tokens_per_second: float
    estimated_cost_usd: float
    finish_reason: str | None
    error_code: str | None
    submitted_at: datetime
    started_at: datetime
    finished_at: datetime
    usage_source: str = "reported"


ClickHouseRow = TokenEventRow | JobMetricsRow

TABLES: dict[type[ClickHouseRow], str] = {
    TokenEventRow: "token_events",
    JobMetricsRow: "job_metrics",
}


def token_event_row(token: TokenStreamed) -> TokenEventRow:
    return TokenEventRow(
        job_id=token.job_id,
        attempt=bounded_int(token.attempt, "attempt", 0, UINT16_MAX),
        seq=bounded_int(token.seq, "seq", 0, UINT32_MAX),
        text=token.text,
        ts=utc_datetime(token.ts, "ts"),
        # TokenStreamed does not carry user_id yet; filled as soon as the schema does.
        user_id=str(getattr(token, "user_id", "")),
    )


def _count(value: int, field: str) -> int:
    return bounded_int(value, field, 0, UINT32_MAX)


def job_metrics_row(event: TerminalEvent) -> JobMetricsRow:
    queue_wait_ms = finite_or_none(event.timings.queue_wait_ms) or 0.0
    return JobMetricsRow(
        job_id=event.job_id,
        attempt=bounded_int(event.attempt, "attempt", 0, UINT16_MAX),
        user_id=event.user_id,
        job_type=event.job_type.value,
        priority=event.priority.value,
        model=event.model,
        status=TERMINAL_STATUS[event.type].value,
        queue_wait_ms=queue_wait_ms,
        ttft_ms=finite_or_none(event.timings.ttft_ms),
        duration_ms=event.timings.duration_ms,
        prompt_tokens=_count(event.usage.prompt_tokens, "usage.prompt_tokens"),
        completion_tokens=_count(event.usage.completion_tokens, "usage.completion_tokens"),
        total_tokens=_count(event.usage.total_tokens, "usage.total_tokens"),
        token_count=_count(event.token_count, "token_count"),
        tokens_per_second=event.tokens_per_second,
        estimated_cost_usd=event.estimated_cost_usd,
        finish_reason=event.finish_reason,
        error_code=event.error.code if isinstance(event, JobFailed) else None,
        # Terminal events carry the queue wait rather than the submission time.
        submitted_at=utc_datetime(event.started_at - queue_wait_ms / 1000, "submitted_at"),
        started_at=utc_datetime(event.started_at, "started_at"),
        finished_at=utc_datetime(event.finished_at, "finished_at"),
        usage_source=event.usage_source,
    )
