"""The old system's job endpoints under /api/openai-streaming."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import CurrentUser, ServicesDep
from api.errors import ApiError
from api.limits import LimitExceeded
from api.views import JobView, load_view, log_snapshot
from producers.submit import KafkaUnavailable
from schemas.api import (
    CancelAccepted,
    Envelope,
    ErrorEnvelope,
    JobAccepted,
    JobCreate,
    JobMetricsPublic,
    JobResultPublic,
    JobsPage,
    JobStatusPublic,
    JobStreamPublic,
    JobSummary,
    PerformanceMetrics,
    QualityMetrics,
    TokenUsage,
)
from schemas.events import JobQueued, JobRequested
from schemas.jobs import TERMINAL_STATUSES, JobConfig, JobStatus, JobType
from schemas.topics import Priority
from sluice.clickhouse import query_clickhouse
from sluice.job_types import spec_for
from sluice.jobids import new_job_id
from sluice.settings import Settings

PREFIX = "/api/openai-streaming"
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorEnvelope} for code in (401, 404, 422, 429, 500, 503)
}
router = APIRouter(prefix=PREFIX, tags=["jobs"], responses=ERRORS)

RETRY_AFTER_S = "5"


def _unavailable(code: str, what: str) -> ApiError:
    return ApiError(
        503,
        code,
        f"{what} is unavailable; nothing was accepted, retry later",
        headers={"Retry-After": RETRY_AFTER_S},
    )


def _invalid(field: str, message: str, kind: str) -> ApiError:
    details = [{"field": field, "message": message, "type": kind}]
    return ApiError(422, "validation_error", f"invalid request: {field}", details)


def resolve_config(body: JobCreate, settings: Settings) -> JobConfig:
    """The job's model settings: the request's, else its job type's defaults, within bounds."""
    spec = spec_for(body.job_type)
    config = JobConfig(
        model=body.config.model or spec.default_model,
        max_tokens=body.config.max_tokens or spec.default_max_tokens,
        temperature=body.config.temperature if body.config.temperature is not None else 0.7,
    )
    allowed = settings.allowed_models
    if "*" not in allowed and config.model not in allowed:
        raise _invalid("config.model", f"model must be one of {', '.join(allowed)}", "not_allowed")
    if config.max_tokens > settings.max_tokens_limit:
        message = f"max_tokens must be at most {settings.max_tokens_limit}"
        raise _invalid("config.max_tokens", message, "too_large")
    if len(body.prompt) > settings.max_prompt_chars:
        message = f"prompt must be at most {settings.max_prompt_chars} characters"
        raise _invalid("prompt", message, "too_long")
    return config


@router.post(
    "/start",
    status_code=202,
    response_model=Envelope[JobAccepted],
    summary="Submit a job; 202 once it is durably queued",
)
async def start_job(
    body: JobCreate, caller: CurrentUser, svc: ServicesDep
) -> Envelope[JobAccepted]:
    config = resolve_config(body, svc.settings)
    job = JobRequested(
        job_id=new_job_id(),
        user_id=caller.user_id,
        job_type=body.job_type,
        priority=body.priority,
        prompt=body.prompt,
        config=config,
        metadata=body.metadata,
    )
    queued = JobQueued(
        **job.model_dump(include={"job_id", "user_id", "job_type", "priority", "prompt"}),
        config=config,
        metadata=body.metadata,
        submitted_at=job.submitted_at,
    )
    try:
        await svc.admissions.admit(
            job.job_id, caller.user_id, lambda: svc.submitter.submit(queued, job)
        )
    except LimitExceeded as exc:
        raise ApiError(
            429,
            "rate_limited",
            f"{exc.limit.replace('_', ' ')} limit reached ({exc.allowed}); retry later",
            {"limit": exc.limit, "allowed": exc.allowed, "retry_after_s": exc.retry_after_s},
            headers={"Retry-After": str(exc.retry_after_s)},
        ) from None
    except KafkaUnavailable:
        raise _unavailable("queue_unavailable", "the job queue") from None
    return Envelope(
        data=JobAccepted(
            job_id=job.job_id,
            priority=job.priority,
            job_type=job.job_type,
            model=config.model,
            max_tokens=config.max_tokens,
            ws_url=f"{PREFIX}/{job.job_id}/ws",
        )
    )


def _encode_cursor(row: dict[str, Any]) -> str:
    raw = f"{row['submitted_at'].isoformat()}|{row['job_id']}"
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        when, job_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        return datetime.fromisoformat(when), job_id
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise _invalid("cursor", "cursor is not one this api returned", "invalid") from None


@router.get("/jobs", response_model=Envelope[JobsPage], summary="The caller's jobs, newest first")
async def list_jobs(
    caller: CurrentUser,
    svc: ServicesDep,
    status: JobStatus | None = None,
    job_type: JobType | None = None,
    priority: Priority | None = None,
    since: datetime | None = None,
    user_id: Annotated[str | None, Query(description="admins only: one user's jobs")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Envelope[JobsPage]:
    owner = (
        (user_id if caller.is_admin else caller.user_id) if user_id or not caller.is_admin else None
    )
    filters = {"status": status, "job_type": job_type, "priority": priority, "since": since}
    before = _decode_cursor(cursor) if cursor else None
    rows = await svc.jobs.list_jobs(owner, filters, before, limit + 1)
    page, more = rows[:limit], len(rows) > limit
    jobs = [
        JobSummary(
            job_id=r["job_id"],
            status=r["status"],
            job_type=r["job_type"],
            priority=r["priority"],
            model=(r["config"] or {}).get("model"),
            submitted_at=r["submitted_at"],
            completed_at=r["completed_at"],
            user_id=r["user_id"],
        )
        for r in page
    ]
    next_cursor = _encode_cursor(page[-1]) if more and page else None
    return Envelope(data=JobsPage(jobs=jobs, next_cursor=next_cursor))


async def _view(job_id: str, caller: CurrentUser, svc: ServicesDep) -> JobView:
    return await load_view(job_id, caller, svc.jobs, svc.settings.kafka_bootstrap, svc.partitions)


@router.get("/{job_id}/status", response_model=Envelope[JobStatusPublic])
async def job_status(
    job_id: str, caller: CurrentUser, svc: ServicesDep
) -> Envelope[JobStatusPublic]:
    view = await _view(job_id, caller, svc)
    position, wait = None, None
    if view.status == JobStatus.queued and view.priority and view.submitted_at:
        position = await svc.jobs.queue_position(view.priority, view.submitted_at, view.job_id)
        per_job_s = await svc.jobs.recent_mean_duration_s()
        wait = round(position * per_job_s / max(1, svc.settings.worker_concurrency), 3)
    return Envelope(
        data=JobStatusPublic(
            job_id=view.job_id,
            status=view.status,
            job_type=view.job_type,
            priority=view.priority,
            attempt=view.attempt,
            submitted_at=view.submitted_at,
            started_at=view.started_at,
            completed_at=view.completed_at,
            queue_position=position,
            estimated_wait_s=wait,
            error_code=view.error_code,
            error_message=view.error_message,
        )
    )


@router.get("/{job_id}/stream", response_model=Envelope[JobStreamPublic])
async def job_stream_state(
    job_id: str, caller: CurrentUser, svc: ServicesDep
) -> Envelope[JobStreamPublic]:
    """Tokens so far, read from the log: the partial answer of a running job."""
    view = await _view(job_id, caller, svc)
    log = await log_snapshot(job_id, svc.settings.kafka_bootstrap, svc.partitions)
    partial = "".join(log.texts)
    if not partial and view.response:  # the log's retention has passed: use the stored answer
        partial = view.response
    streamed = len(log.texts) if log.texts else int(view.streaming_stats.get("token_count", 0))
    # The log may already hold the end the sink has not written yet: it is the source of truth.
    status = JobStatus(log.finished.type.removeprefix("job.")) if log.finished else view.status  # type: ignore[attr-defined]
    done = status in TERMINAL_STATUSES
    max_tokens = view.max_tokens or log.max_tokens
    progress = 100.0 if done else min(99.0, 100.0 * streamed / max_tokens) if max_tokens else 0.0
    return Envelope(
        data=JobStreamPublic(
            job_id=job_id,
            status=status,
            attempt=max(view.attempt, log.attempt),
            progress_percentage=round(progress, 2),
            tokens_streamed=streamed,
            partial_response=partial,
            last_seq=streamed - 1 if streamed else None,
        )
    )


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


@router.get(
    "/{job_id}/results",
    response_model=Envelope[JobResultPublic],
    responses={409: {"model": ErrorEnvelope, "description": "the job has not finished"}},
)
async def job_results(
    job_id: str, caller: CurrentUser, svc: ServicesDep
) -> Envelope[JobResultPublic]:
    view = await _view(job_id, caller, svc)
    if view.status not in TERMINAL_STATUSES:
        raise ApiError(409, "job_not_finished", f"job {job_id} is {view.status.value}")
    stats, usage = view.streaming_stats, view.token_usage
    parse = spec_for(JobType(view.job_type)).parse(view.response or "") if view.job_type else None
    finish = stats.get("finish_reason")
    return Envelope(
        data=JobResultPublic(
            job_id=job_id,
            status=view.status,
            job_type=view.job_type,
            prompt=view.prompt,
            response=view.response,
            parsed_response=parse.parsed if parse else None,
            token_usage=TokenUsage(
                prompt=usage.get("prompt_tokens", 0),
                completion=usage.get("completion_tokens", 0),
                total=usage.get("total_tokens", 0),
            ),
            performance_metrics=PerformanceMetrics(
                queue_wait_ms=_num(stats.get("queue_wait_ms")),
                ttft_ms=_num(stats.get("ttft_ms")),
                duration_ms=_num(view.processing_time_ms),
                tokens_per_second=_num(stats.get("tokens_per_second")),
            ),
            quality_metrics=QualityMetrics(
                estimated_cost_usd=_num(stats.get("estimated_cost_usd")),
                finish_reason=finish,
                parse_ok=bool(parse and parse.ok),
                parse_error=parse.error if parse else "unknown job type",
                truncated=finish != "stop",
            ),
            attempt=view.attempt,
            error_code=view.error_code,
            error_message=view.error_message,
        )
    )


@router.post(
    "/{job_id}/cancel",
    status_code=202,
    response_model=Envelope[CancelAccepted],
    responses={409: {"model": ErrorEnvelope, "description": "the job already finished"}},
)
async def cancel_job(
    job_id: str, caller: CurrentUser, svc: ServicesDep
) -> Envelope[CancelAccepted]:
    """Stop a job: a queued job never starts; a running stream stops within a second.

    Idempotent: cancelling a cancelled (or cancelling) job answers the same again.
    """
    view = await _view(job_id, caller, svc)
    if view.status == JobStatus.cancelled:
        return Envelope(data=CancelAccepted(job_id=job_id, status=JobStatus.cancelled))
    if view.status in TERMINAL_STATUSES:
        raise ApiError(409, "job_finished", f"job {job_id} already {view.status.value}")
    try:
        await svc.control.request_cancel(job_id, caller.user_id)
    except KafkaUnavailable:
        raise _unavailable("queue_unavailable", "the control channel") from None
    return Envelope(data=CancelAccepted(job_id=job_id, status="cancelling"))


@router.get("/{job_id}/metrics", response_model=Envelope[JobMetricsPublic])
async def job_metrics(
    job_id: str, caller: CurrentUser, svc: ServicesDep
) -> Envelope[JobMetricsPublic]:
    """The job's analytics rows in ClickHouse: its metrics row and its token rows."""
    await _view(job_id, caller, svc)
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
    return Envelope(
        data=JobMetricsPublic(
            job_id=job_id, job_metrics=metrics, token_rows=int(counted[0]["n"]) if counted else 0
        )
    )
