"""Admin-only JSON for the dashboard: queues, workers, jobs, analytics, dead letters."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query, Request

from api.deps import CurrentUser, Principal
from api.errors import ApiError
from api.ops import analytics, job_stats
from api.ops.dlq import DeadLetterError
from api.ops.kafka_stats import KafkaStatsUnavailable
from api.ops.state import OpsState, ops_lifespan, ops_state
from producers.submit import KafkaUnavailable
from schemas.api import Envelope
from sluice.clickhouse import ClickHouseQueryError

log = logging.getLogger(__name__)
T = TypeVar("T")


def require_admin(caller: CurrentUser) -> Principal:
    if not caller.is_admin:
        raise ApiError(403, "forbidden", "this needs an admin token (sluice tokens create --admin)")
    return caller


AdminUser = Annotated[Principal, Depends(require_admin)]


def get_ops(request: Request) -> OpsState:
    return ops_state(request.app)


Ops = Annotated[OpsState, Depends(get_ops)]
router = APIRouter(prefix="/api/admin", tags=["admin"], lifespan=ops_lifespan)


async def _part(name: str, work: Awaitable[T], problems: dict[str, str]) -> T | None:
    """One panel's data; a failing source blanks its panels only, and says why."""
    try:
        return await work
    except KafkaStatsUnavailable as exc:
        problems[name] = str(exc)
    except ClickHouseQueryError as exc:
        problems[name] = exc.message
    except Exception as exc:  # Postgres down, a timeout: the type says enough
        log.warning("admin overview: %s failed: %s", name, type(exc).__name__)
        problems[name] = f"unavailable ({type(exc).__name__})"
    return None


@router.get("/overview", response_model=Envelope[dict[str, Any]])
async def overview(_: AdminUser, ops: Ops) -> Envelope[dict[str, Any]]:
    """Everything the dashboard's live panels show, in one poll."""
    problems: dict[str, str] = {}
    window = ops.settings.active_job_window_s
    kafka, by_status, per_minute, active, failures, headline = await asyncio.gather(
        _part("kafka", ops.kafka.latest(), problems),
        _part("postgres", job_stats.jobs_by_status(ops.pool), problems),
        _part("postgres", job_stats.finished_last_minute(ops.pool), problems),
        _part("postgres", job_stats.active_jobs(ops.pool, window), problems),
        _part("postgres", job_stats.recent_failures(ops.pool), problems),
        _part("clickhouse", analytics.headline(), problems),
    )
    data: dict[str, Any] = {
        "queue_lag": kafka.lag_by_priority if kafka else None,
        "jobs_submitted": kafka.submitted_by_priority if kafka else None,
        "tokens_total": kafka.tokens_total if kafka else None,
        "tokens_per_second": ops.kafka.tokens_per_second() if kafka else None,
        "worker_group_state": kafka.group_state if kafka else None,
        "workers": [w.__dict__ for w in kafka.workers] if kafka else None,
        "jobs_by_status": by_status,
        "jobs_per_minute": per_minute,
        "active_jobs": active,
        "recent_failures": failures,
        **(headline or {"p95_ttft_ms": None, "cost_today_usd": None, "jobs_today": None}),
        "problems": problems,
    }
    return Envelope(data=data)


@router.get("/charts", response_model=Envelope[dict[str, Any]])
async def charts(
    _: AdminUser, minutes: Annotated[int, Query(ge=5, le=24 * 60)] = 60
) -> Envelope[dict[str, Any]]:
    """Per-minute series from ClickHouse: jobs, failures, tokens/sec, p95 TTFT, cost."""
    try:
        points = await analytics.per_minute(minutes)
    except ClickHouseQueryError as exc:
        raise ApiError(503, "analytics_unavailable", exc.message) from None
    return Envelope(data={"minutes": minutes, "points": points})


@router.get("/dlq", response_model=Envelope[dict[str, Any]])
async def dead_letters(
    _: AdminUser, ops: Ops, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> Envelope[dict[str, Any]]:
    """The newest dead letters, newest first."""
    try:
        entries = await ops.dead_letters.list(limit)
    except DeadLetterError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from None
    return Envelope(data={"dead_letters": [e.as_dict() for e in entries]})


@router.post("/dlq/{job_id}/requeue", status_code=202, response_model=Envelope[dict[str, Any]])
async def requeue(job_id: str, _: AdminUser, ops: Ops) -> Envelope[dict[str, Any]]:
    """Run a dead-lettered job again, as a new attempt on its priority topic."""
    status = await job_stats.job_status(ops.pool, job_id)
    if status in job_stats.ACTIVE_STATUSES or status == "completed":
        raise ApiError(409, "job_not_failed", f"job {job_id} is {status}; nothing to requeue")
    try:
        done = await ops.dead_letters.requeue(job_id)
    except DeadLetterError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from None
    except KafkaUnavailable:
        raise ApiError(
            503, "queue_unavailable", "the job queue is unavailable", headers={"Retry-After": "5"}
        ) from None
    return Envelope(
        data={"job_id": done.job_id, "priority": done.priority, "attempt": done.attempt}
    )
