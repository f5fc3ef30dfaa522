"""HTTP API models: what comes in, what goes out, never the same class."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.jobs import MAX_TOKENS_LIMIT, JobStatus, JobType
from schemas.topics import Priority

T = TypeVar("T")


class JobConfigIn(BaseModel):
    """A request's model settings. Omitted fields take the job type's defaults; a
    misspelt field is an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(default=None, min_length=1, max_length=100)
    max_tokens: int | None = Field(default=None, ge=1, le=MAX_TOKENS_LIMIT)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)


class JobCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1)
    job_type: JobType = JobType.analysis
    priority: Priority = Priority.normal
    config: JobConfigIn = Field(default_factory=JobConfigIn)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("prompt")
    @classmethod
    def prompt_has_text(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("prompt must contain text, not only whitespace")
        return value


class JobAccepted(BaseModel):
    job_id: str
    status: JobStatus = JobStatus.queued
    priority: Priority
    job_type: JobType
    model: str
    max_tokens: int
    ws_url: str


class ErrorBody(BaseModel):
    code: str
    message: str
    details: Any = None


class Envelope(BaseModel, Generic[T]):
    success: bool = True
    data: T


class ErrorEnvelope(BaseModel):
    success: bool = False
    error: ErrorBody


class TokenUsage(BaseModel):
    prompt: int
    completion: int
    total: int


class JobStatusPublic(BaseModel):
    job_id: str
    status: JobStatus
    job_type: JobType | None
    priority: Priority | None
    attempt: int
    submitted_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    queue_position: int | None = Field(
        default=None, description="while queued: jobs ahead of this one (1 = next)"
    )
    estimated_wait_s: float | None = Field(default=None, description="while queued")
    error_code: str | None = None
    error_message: str | None = None


class JobSummary(BaseModel):
    job_id: str
    status: JobStatus
    job_type: JobType | None
    priority: Priority | None
    model: str | None
    submitted_at: datetime | None
    completed_at: datetime | None
    user_id: str | None


class JobsPage(BaseModel):
    jobs: list[JobSummary]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page")


class JobStreamPublic(BaseModel):
    job_id: str
    status: JobStatus
    attempt: int
    progress_percentage: float
    tokens_streamed: int
    partial_response: str
    last_seq: int | None


class PerformanceMetrics(BaseModel):
    queue_wait_ms: float | None
    ttft_ms: float | None
    duration_ms: float | None
    tokens_per_second: float | None


class QualityMetrics(BaseModel):
    estimated_cost_usd: float | None
    finish_reason: str | None
    parse_ok: bool
    parse_error: str | None = None
    truncated: bool = Field(description="the answer hit max_tokens or the stream was cut")


class JobResultPublic(BaseModel):
    job_id: str
    status: JobStatus
    job_type: JobType | None
    prompt: str | None
    response: str | None
    parsed_response: dict[str, Any] | None
    token_usage: TokenUsage | None
    performance_metrics: PerformanceMetrics
    quality_metrics: QualityMetrics
    attempt: int
    error_code: str | None = None
    error_message: str | None = None


class CancelAccepted(BaseModel):
    job_id: str
    status: JobStatus | str = Field(description="`cancelling` until the worker stops it")


class JobMetricsPublic(BaseModel):
    """The job's rows in ClickHouse (analytics store)."""

    job_id: str
    job_metrics: dict[str, Any] | None
    token_rows: int
