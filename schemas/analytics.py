"""Analytics API models: the figures per group of jobs, and ad-hoc SQL in and out."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_WINDOW = timedelta(days=366)
_WINDOW = re.compile(r"^\s*(\d{1,6})\s*([mhd])\s*$")
_UNIT = {"m": "minutes", "h": "hours", "d": "days"}


def parse_window(text: str) -> timedelta:
    """``15m``, ``24h``, ``7d``: a positive span of at most a year; ``ValueError`` otherwise."""
    found = _WINDOW.match(text)
    if found is None:
        raise ValueError("window must be a number and a unit m, h or d, like 15m, 24h or 7d")
    span = timedelta(**{_UNIT[found.group(2)]: int(found.group(1))})
    if not timedelta(0) < span <= MAX_WINDOW:
        raise ValueError("window must be more than 0 and at most 366d")
    return span


class Dimension(StrEnum):
    """What figures can be grouped by: job attributes and a time bucket of finished_at."""

    model = "model"
    job_type = "job_type"
    priority = "priority"
    user = "user"
    minute = "minute"
    hour = "hour"
    day = "day"


TIME_BUCKETS = frozenset({Dimension.minute, Dimension.hour, Dimension.day})


def parse_group_by(text: str | None) -> list[Dimension]:
    """``model,hour``: known dimensions, each once, at most one time bucket."""
    names = [part.strip() for part in (text or "").split(",") if part.strip()]
    known = {d.value for d in Dimension}
    if unknown := [n for n in names if n not in known]:
        raise ValueError(f"unknown group_by {', '.join(unknown)}; use {', '.join(sorted(known))}")
    dims = [Dimension(n) for n in names]
    if len(set(dims)) != len(dims):
        raise ValueError("group_by names a dimension twice")
    if len(TIME_BUCKETS.intersection(dims)) > 1:
        raise ValueError("group_by may hold one of minute, hour and day")
    return dims


class Percentiles(BaseModel):
    """Null when the group has no value (a job with no token has no time to first token)."""

    p50: float | None
    p95: float | None
    p99: float | None


class AttemptFigures(BaseModel):
    total: int = Field(description="attempts run by the group's jobs, retries included")
    mean: float
    max: int
    retried_jobs: int = Field(description="jobs that needed more than one attempt")


class TokenFigures(BaseModel):
    prompt: int
    completion: int
    total: int


class CostFigures(BaseModel):
    total_usd: float
    counted_usd: float = Field(
        description="the part whose tokens were counted with the tokenizer, not reported"
    )
    counted_jobs: int


class AnalyticsGroup(BaseModel):
    key: dict[str, str] = Field(description="the group's value of each group_by dimension")
    jobs: int = Field(description="jobs that ended in the window (their last attempt)")
    completed: int
    failed: int
    cancelled: int
    success_rate: float | None = Field(description="completed / (completed + failed)")
    attempts: AttemptFigures
    queue_wait_ms: Percentiles
    ttft_ms: Percentiles
    token_gap_ms: Percentiles = Field(description="time between consecutive tokens")
    duration_ms: Percentiles
    tokens_per_second: Percentiles = Field(description="of jobs that streamed a token")
    tokens: TokenFigures
    cost: CostFigures
    error_types: dict[str, int] = Field(description="failed jobs by error code")


class AnalyticsReport(BaseModel):
    window: str
    since: datetime
    until: datetime
    group_by: list[Dimension]
    scope: Literal["own", "all"] = Field(description="the caller's jobs, or everyone's (admin)")
    groups: list[AnalyticsGroup]
    truncated: bool = Field(description="more groups than fit in one answer")


class SqlQueryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sql: str = Field(min_length=1, max_length=100_000)
    max_rows: int = Field(default=1000, ge=1, le=10_000)


class SqlResultPublic(BaseModel):
    columns: list[str]
    rows: list[list[Any]]
    row_count: int
    truncated: bool = Field(description="the query had more rows than max_rows")
