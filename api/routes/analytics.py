"""Analytics: the figures of finished jobs per group, and ad-hoc read-only SQL for admins."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Query

from api.deps import CurrentUser
from api.errors import ApiError
from schemas.analytics import (
    AnalyticsGroup,
    AnalyticsReport,
    AttemptFigures,
    CostFigures,
    Dimension,
    Percentiles,
    SqlQueryIn,
    SqlResultPublic,
    TokenFigures,
    parse_group_by,
    parse_window,
)
from schemas.api import Envelope, ErrorEnvelope
from sluice.clickhouse import ClickHouseQueryError, query_clickhouse
from sluice.sql_access import run_people_sql

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorEnvelope} for code in (400, 401, 403, 422, 500, 503)
}
router = APIRouter(tags=["analytics"], responses=ERRORS)

MAX_GROUPS = 1000
_KEY_SQL: dict[Dimension, str] = {
    Dimension.model: "model",
    Dimension.job_type: "job_type",
    Dimension.priority: "priority",
    Dimension.user: "user_id",
    Dimension.minute: "toStartOfMinute(finished_at)",
    Dimension.hour: "toStartOfHour(finished_at)",
    Dimension.day: "toStartOfDay(finished_at)",
}
# Percentiles interpolate between the two nearest values (numpy's default), exactly.
# Job figures come from job_metrics FINAL (one row per job, its highest attempt: the
# cheapest exact read); gaps between tokens from the token_gaps view, in a second query.
_FIGURES_SQL = """
    count() AS jobs,
    countIf(status = 'completed') AS completed,
    countIf(status = 'failed') AS failed,
    countIf(status = 'cancelled') AS cancelled,
    sum(attempt) AS attempts_total,
    max(attempt) AS attempts_max,
    countIf(attempt > 1) AS retried_jobs,
    quantilesExactInclusive(0.5, 0.95, 0.99)(queue_wait_ms) AS queue_wait_ms,
    quantilesExactInclusive(0.5, 0.95, 0.99)(ttft_ms) AS ttft_ms,
    quantilesExactInclusive(0.5, 0.95, 0.99)(duration_ms) AS duration_ms,
    quantilesExactInclusiveIf(0.5, 0.95, 0.99)(tokens_per_second, token_count > 0)
        AS tokens_per_second,
    sum(prompt_tokens) AS prompt_tokens,
    sum(completion_tokens) AS completion_tokens,
    sum(estimated_cost_usd) AS cost_usd,
    sumIf(estimated_cost_usd, usage_source = 'counted') AS counted_cost_usd,
    countIf(usage_source = 'counted') AS counted_jobs,
    groupArrayIf(error_code, status = 'failed' AND error_code IS NOT NULL) AS error_codes
"""
_STATUS = {
    "read_only": 403,
    "settings_change": 403,
    "forbidden_table": 403,
    "analytics_unavailable": 503,
    "internal_error": 500,
}


_GAPS_SQL = "quantilesExactInclusive(0.5, 0.95, 0.99)(gap_ms) AS token_gap_ms"


def analytics_sql(dims: list[Dimension], own_only: bool, source: str, figures: str) -> str:
    """One row per group of the jobs that finished in [since, until)."""
    keys = [f"{_KEY_SQL[d]} AS {d.value}" for d in dims]
    where = (
        "finished_at >= {since:DateTime64(3, 'UTC')} AND finished_at < {until:DateTime64(3, 'UTC')}"
    )
    if own_only:
        where += " AND user_id = {user_id:String}"
    names = ", ".join(d.value for d in dims)
    group = f"GROUP BY {names} ORDER BY {names}" if dims else ""
    select = ", ".join([*keys, figures])
    return f"SELECT {select} FROM {source} WHERE {where} {group} LIMIT {MAX_GROUPS + 1}"


async def grouped_figures(
    dims: list[Dimension], own_only: bool, params: dict[str, Any]
) -> list[dict[str, Any]]:
    """Job figures per group, each with its groups' token gap percentiles added."""
    jobs_sql = analytics_sql(dims, own_only, "job_metrics FINAL", _FIGURES_SQL)
    gaps_sql = analytics_sql(dims, own_only, "token_gaps", _GAPS_SQL)
    rows, gap_rows = await asyncio.gather(
        query_clickhouse(jobs_sql, params), query_clickhouse(gaps_sql, params)
    )
    gaps = {tuple(row[d.value] for d in dims): row["token_gap_ms"] for row in gap_rows}
    for row in rows:
        row["token_gap_ms"] = gaps.get(tuple(row[d.value] for d in dims))
    return rows


def _percentiles(values: list[float | None] | None) -> Percentiles:
    p50, p95, p99 = values if values and len(values) == 3 else (None, None, None)
    return Percentiles(p50=p50, p95=p95, p99=p99)


def analytics_group(row: dict[str, Any], dims: list[Dimension]) -> AnalyticsGroup:
    jobs = int(row["jobs"])
    completed, failed = int(row["completed"]), int(row["failed"])
    return AnalyticsGroup(
        key={d.value: str(row[d.value]) for d in dims},
        jobs=jobs,
        completed=completed,
        failed=failed,
        cancelled=int(row["cancelled"]),
        success_rate=completed / (completed + failed) if completed + failed else None,
        attempts=AttemptFigures(
            total=int(row["attempts_total"]),
            mean=int(row["attempts_total"]) / jobs if jobs else 0.0,
            max=int(row["attempts_max"]),
            retried_jobs=int(row["retried_jobs"]),
        ),
        queue_wait_ms=_percentiles(row["queue_wait_ms"]),
        ttft_ms=_percentiles(row["ttft_ms"]),
        token_gap_ms=_percentiles(row["token_gap_ms"]),
        duration_ms=_percentiles(row["duration_ms"]),
        tokens_per_second=_percentiles(row["tokens_per_second"]),
        tokens=TokenFigures(
            prompt=int(row["prompt_tokens"]),
            completion=int(row["completion_tokens"]),
            total=int(row["prompt_tokens"]) + int(row["completion_tokens"]),
        ),
        cost=CostFigures(
            total_usd=float(row["cost_usd"]),
            counted_usd=float(row["counted_cost_usd"]),
            counted_jobs=int(row["counted_jobs"]),
        ),
        error_types=dict(Counter(str(code) for code in row["error_codes"])),
    )


def _query_error(exc: ClickHouseQueryError) -> ApiError:
    return ApiError(_STATUS.get(exc.code, 400), exc.code, exc.message)


@router.get(
    "/api/openai-streaming/analytics",
    response_model=Envelope[AnalyticsReport],
    summary="Figures of the jobs that finished in a window, grouped",
)
async def job_analytics(
    caller: CurrentUser,
    window: str = Query("24h", description="how far back from now: 15m, 24h, 7d"),
    group_by: str | None = Query(
        None, description="comma-separated: model, job_type, priority, user, minute|hour|day"
    ),
) -> Envelope[AnalyticsReport]:
    """Your own jobs; an admin's token sees everyone's."""
    try:
        span, dims = parse_window(window), parse_group_by(group_by)
    except ValueError as exc:
        field = "window" if "window" in str(exc) else "group_by"
        details = [{"field": field, "message": str(exc), "type": "value_error"}]
        raise ApiError(422, "validation_error", f"invalid request: {field}", details) from None
    until = datetime.now(UTC)
    since = until - span
    params: dict[str, Any] = {"since": _ch_time(since), "until": _ch_time(until)}
    if not caller.is_admin:
        params["user_id"] = caller.user_id
    try:
        rows = await grouped_figures(dims, not caller.is_admin, params)
    except ClickHouseQueryError as exc:
        raise _query_error(exc) from None
    if not dims:
        rows = [row for row in rows if int(row["jobs"])]  # no job in the window: no group
    report = AnalyticsReport(
        window=window.strip(),
        since=since,
        until=until,
        group_by=dims,
        scope="all" if caller.is_admin else "own",
        groups=[analytics_group(row, dims) for row in rows[:MAX_GROUPS]],
        truncated=len(rows) > MAX_GROUPS,
    )
    return Envelope(data=report)


def _ch_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


@router.post(
    "/api/analytics/sql",
    response_model=Envelope[SqlResultPublic],
    summary="Run one read-only SQL query on the analytics tables (admin)",
)
async def analytics_sql_query(body: SqlQueryIn, caller: CurrentUser) -> Envelope[SqlResultPublic]:
    """SELECT, WITH, SHOW, DESCRIBE or EXPLAIN; writes, settings changes and system tables
    holding secrets are refused with a stable error code (see docs/analytics.md)."""
    if not caller.is_admin:
        raise ApiError(403, "forbidden", "SQL access needs an admin token")
    try:
        result = await asyncio.to_thread(run_people_sql, body.sql, body.max_rows)
    except ClickHouseQueryError as exc:
        raise _query_error(exc) from None
    return Envelope(
        data=SqlResultPublic(
            columns=result.columns,
            rows=result.rows,
            row_count=len(result.rows),
            truncated=result.truncated,
        )
    )
