"""One view of a job, from Postgres when the sink has written it, else from the log.

Right after a 202 the sink may not have written the row yet; the job's lifecycle is
already in `job-events` (the source of truth), so the api reads it there instead of
answering 404.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from api.auth import Principal
from api.errors import ApiError
from api.feed import FeedAssembler, PartitionCounts, job_feed
from api.store import JobStore
from schemas.events import JobFailed, JobFinished
from schemas.jobs import JobStatus
from sluice.jobids import is_job_id


@dataclass(frozen=True)
class JobView:
    job_id: str
    user_id: str | None
    status: JobStatus
    job_type: str | None = None
    priority: str | None = None
    attempt: int = 0
    model: str | None = None
    max_tokens: int | None = None
    prompt: str | None = None
    response: str | None = None
    submitted_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    token_usage: dict[str, Any] = field(default_factory=dict)
    streaming_stats: dict[str, Any] = field(default_factory=dict)
    processing_time_ms: float | None = None
    error_code: str | None = None
    error_message: str | None = None


def view_from_row(row: dict[str, Any]) -> JobView:
    config = row.get("config") or {}
    stats = row.get("streaming_stats") or {}
    return JobView(
        job_id=row["job_id"],
        user_id=row["user_id"],
        status=JobStatus(row["status"]),
        job_type=row["job_type"],
        priority=row["priority"],
        attempt=row["attempt"] or 0,
        model=stats.get("model") or config.get("model"),
        max_tokens=config.get("max_tokens"),
        prompt=row["prompt"],
        response=row["response"],
        submitted_at=row["submitted_at"],
        started_at=row["started_at"],
        completed_at=row["completed_at"],
        token_usage=row["token_usage"] or {},
        streaming_stats=stats,
        processing_time_ms=row["processing_time_ms"],
        error_code=row["error_code"],
        error_message=row["error_message"],
    )


def _ts(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


def view_from_log(log: FeedAssembler) -> JobView | None:
    queued = log.queued
    if queued is None:
        return None
    end: JobFinished | None = log.finished or log.pending_end
    status = JobStatus.queued
    if log.started is not None:
        status = JobStatus.running
    if end is not None:
        status = JobStatus(end.type.removeprefix("job."))  # type: ignore[attr-defined]
    return JobView(
        job_id=queued.job_id,
        user_id=queued.user_id,
        status=status,
        job_type=queued.job_type.value,
        priority=queued.priority.value,
        attempt=log.started.attempt if log.started else 0,
        model=queued.config.model,
        max_tokens=queued.config.max_tokens,
        prompt=queued.prompt,
        response=end.response if end else None,
        submitted_at=_ts(queued.submitted_at),
        started_at=_ts(log.started.started_at if log.started else None),
        completed_at=_ts(end.finished_at if end else None),
        error_code=end.error.code if isinstance(end, JobFailed) else None,
        error_message=end.error.message if isinstance(end, JobFailed) else None,
    )


async def log_snapshot(job_id: str, bootstrap: str, partitions: PartitionCounts) -> FeedAssembler:
    """What the log holds about the job right now (its events and tokens so far)."""
    assembler = FeedAssembler(job_id)
    async for _ in job_feed(job_id, bootstrap, partitions, assembler=assembler, follow=False):
        pass
    return assembler


def not_found(job_id: str) -> ApiError:
    return ApiError(404, "job_not_found", f"no job {job_id}")


async def load_view(
    job_id: str,
    caller: Principal,
    jobs: JobStore,
    bootstrap: str,
    partitions: PartitionCounts,
) -> JobView:
    """The job as `caller` may see it; another user's job is exactly like a missing one."""
    if not is_job_id(job_id):
        raise not_found(job_id)
    row = await jobs.get_job(job_id)
    view = view_from_row(row) if row is not None else None
    if view is None:
        view = view_from_log(await log_snapshot(job_id, bootstrap, partitions))
    if view is None or not caller.can_see(view.user_id):
        raise not_found(job_id)
    return view
