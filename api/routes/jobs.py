"""The old system's job endpoints under /api/openai-streaming."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter

from api.deps import CurrentUser, ServicesDep
from api.errors import ApiError
from producers.submit import KafkaUnavailable
from schemas.api import (
    Envelope,
    JobAccepted,
    JobCreate,
    JobMetricsPublic,
    JobResultPublic,
    JobStatusPublic,
    PerformanceMetrics,
    QualityMetrics,
    TokenUsage,
)
from schemas.events import JobQueued, JobRequested
from schemas.jobs import TERMINAL_STATUSES, JobConfig, JobStatus
from sluice.clickhouse import query_clickhouse
from sluice.jobids import is_job_id, new_job_id

router = APIRouter(prefix="/api/openai-streaming", tags=["jobs"])

KAFKA_RETRY_AFTER_S = "5"


@router.post("/start", status_code=202, response_model=Envelope[JobAccepted])
async def start_job(
    body: JobCreate, caller: CurrentUser, svc: ServicesDep
) -> Envelope[JobAccepted]:
    job_id = new_job_id()
    config = JobConfig(**body.config.model_dump())
    job = JobRequested(
        job_id=job_id,
        user_id=caller.user_id,
        job_type=body.job_type,
        priority=body.priority,
        prompt=body.prompt,
        config=config,
        metadata=body.metadata,
    )
    queued = JobQueued(
        job_id=job_id,
        user_id=caller.user_id,
        job_type=body.job_type,
        priority=body.priority,
        prompt=body.prompt,
        config=config,
        metadata=body.metadata,
        submitted_at=job.submitted_at,
    )
    try:
        await svc.submitter.submit(queued, job)
    except KafkaUnavailable:
        raise ApiError(
            503,
            "queue_unavailable",
            "the job queue is unavailable; nothing was accepted, retry later",
            headers={"Retry-After": KAFKA_RETRY_AFTER_S},
        ) from None
    accepted = JobAccepted(
        job_id=job_id,
        priority=body.priority,
        job_type=body.job_type,
        ws_url=f"/api/openai-streaming/{job_id}/ws",
    )
    return Envelope(data=accepted)


async def load_job(job_id: str, svc: ServicesDep) -> dict[str, Any]:
    row = await svc.store.get_job(job_id) if is_job_id(job_id) else None
    if row is None:
        raise ApiError(404, "job_not_found", f"no job {job_id}")
    return row


@router.get("/{job_id}/status", response_model=Envelope[JobStatusPublic])
async def job_status(job_id: str, svc: ServicesDep) -> Envelope[JobStatusPublic]:
    row = await load_job(job_id, svc)
    return Envelope(
        data=JobStatusPublic(
            job_id=job_id,
            status=JobStatus(row["status"]),
            job_type=row["job_type"],
            priority=row["priority"],
            attempt=row["attempt"] or 0,
            submitted_at=row["submitted_at"],
            started_at=row["started_at"],
            completed_at=row["completed_at"],
            error_code=row["error_code"],
            error_message=row["error_message"],
        )
    )


def _ms(value: Any) -> float | None:
    return None if value is None else float(value)


@router.get("/{job_id}/results", response_model=Envelope[JobResultPublic])
async def job_results(job_id: str, svc: ServicesDep) -> Envelope[JobResultPublic]:
    row = await load_job(job_id, svc)
    status = JobStatus(row["status"])
    if status not in TERMINAL_STATUSES:
        raise ApiError(409, "job_not_finished", f"job {job_id} is {status.value}")
    usage = row["token_usage"] or {}
    stats = row["streaming_stats"] or {}
    return Envelope(
        data=JobResultPublic(
            job_id=job_id,
            status=status,
            job_type=row["job_type"],
            prompt=row["prompt"],
            response=row["response"],
            token_usage=TokenUsage(
                prompt=usage.get("prompt_tokens", 0),
                completion=usage.get("completion_tokens", 0),
                total=usage.get("total_tokens", 0),
            ),
            performance_metrics=PerformanceMetrics(
                queue_wait_ms=_ms(stats.get("queue_wait_ms")),
                ttft_ms=_ms(stats.get("ttft_ms")),
                duration_ms=_ms(row["processing_time_ms"]),
                tokens_per_second=_ms(stats.get("tokens_per_second")),
            ),
            quality_metrics=QualityMetrics(
                estimated_cost_usd=_ms(stats.get("estimated_cost_usd")),
                finish_reason=stats.get("finish_reason"),
            ),
            attempt=row["attempt"] or 0,
            error_code=row["error_code"],
            error_message=row["error_message"],
        )
    )


@router.get("/{job_id}/metrics", response_model=Envelope[JobMetricsPublic])
async def job_metrics(job_id: str, svc: ServicesDep) -> Envelope[JobMetricsPublic]:
    """The job's analytics rows in ClickHouse: its metrics row and its token rows."""
    await load_job(job_id, svc)
    rows = await query_clickhouse(
        "SELECT * FROM job_metrics FINAL WHERE job_id = {job_id:String}", {"job_id": job_id}
    )
    metrics = rows[0] if rows else None
    attempt = int(metrics["attempt"]) if metrics else 0
    counted = await query_clickhouse(
        "SELECT count() AS n FROM token_events FINAL "
        "WHERE job_id = {job_id:String} AND attempt = {attempt:UInt16}",
        {"job_id": job_id, "attempt": attempt},
    )
    if metrics is not None:
        metrics = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in metrics.items()}
    return Envelope(
        data=JobMetricsPublic(
            job_id=job_id, job_metrics=metrics, token_rows=int(counted[0]["n"]) if counted else 0
        )
    )
