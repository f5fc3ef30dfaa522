"""Events on the topics. Every event carries a schema version and an event id.

Readers ignore unknown fields (forward compatible) and raise ``EventDecodeError``
for anything they cannot decode, so a consumer can dead-letter it and carry on.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from schemas.jobs import JobConfig, JobType
from schemas.topics import Priority

SCHEMA_VERSION = 1


class EventDecodeError(ValueError):
    """A message that is not a valid event of the expected kind."""


def new_event_id() -> str:
    return uuid.uuid4().hex


def now() -> float:
    return time.time()


class Event(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    schema_version: int = SCHEMA_VERSION
    event_id: str = Field(default_factory=new_event_id)
    job_id: str

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    def key(self) -> bytes:
        return self.job_id.encode()


class JobRequested(Event):
    """A job to run, on ``jobs.<priority>``.

    ``attempt`` is the first attempt number this message may use: 1 when submitted,
    one past the last attempt when requeued from the dead-letter queue.
    """

    type: Literal["job.requested"] = "job.requested"
    user_id: str
    job_type: JobType
    priority: Priority
    prompt: str
    config: JobConfig
    metadata: dict[str, Any] = Field(default_factory=dict)
    submitted_at: float = Field(default_factory=now)
    attempt: int = 1

    def attempt_context(self) -> dict[str, Any]:
        """What every lifecycle event of this attempt repeats (see JobContext), plus its model."""
        return {
            "job_id": self.job_id,
            "user_id": self.user_id,
            "job_type": self.job_type,
            "priority": self.priority,
            "attempt": self.attempt,
            "model": self.config.model,
        }


class CancelRequested(Event):
    """A command on ``jobs.control``: stop this job wherever it is."""

    type: Literal["job.cancel_requested"] = "job.cancel_requested"
    user_id: str
    requested_at: float = Field(default_factory=now)


class TokenStreamed(Event):
    """One streamed token on ``tokens``. ``seq`` restarts at 0 for each attempt."""

    type: Literal["token.streamed"] = "token.streamed"
    attempt: int
    seq: int
    text: str
    ts: float = Field(default_factory=now)


class Usage(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class CountedUsage(Usage):
    """Usage the worker counted with the model's tokenizer, because no usage chunk came."""


UsageSource = Literal["reported", "counted"]


def _usage_source(fields: dict[str, Any]) -> UsageSource:
    return "counted" if isinstance(fields.get("usage"), CountedUsage) else "reported"


class Timings(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    queue_wait_ms: float = 0.0
    ttft_ms: float | None = None
    duration_ms: float = 0.0


class JobContext(Event):
    """Fields every lifecycle event repeats, so sinks need no joins."""

    user_id: str
    job_type: JobType
    priority: Priority
    occurred_at: float = Field(default_factory=now)


class JobQueued(JobContext):
    type: Literal["job.queued"] = "job.queued"
    prompt: str
    config: JobConfig
    metadata: dict[str, Any] = Field(default_factory=dict)
    submitted_at: float


class JobStarted(JobContext):
    type: Literal["job.started"] = "job.started"
    attempt: int
    model: str
    worker: str
    started_at: float


class ErrorInfo(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    code: str
    message: str


class JobFinished(JobContext):
    """What every terminal event knows about the attempt that ended the job."""

    attempt: int
    model: str
    token_count: int
    response: str
    usage: Usage
    timings: Timings
    tokens_per_second: float
    estimated_cost_usd: float
    finish_reason: str | None = None
    started_at: float
    finished_at: float
    usage_source: UsageSource = Field(
        default_factory=_usage_source,
        description="usage and cost reported by the provider, or counted by the worker",
    )


class JobCompleted(JobFinished):
    type: Literal["job.completed"] = "job.completed"


class JobFailed(JobFinished):
    type: Literal["job.failed"] = "job.failed"
    error: ErrorInfo


class JobCancelled(JobFinished):
    type: Literal["job.cancelled"] = "job.cancelled"


class JobRetrying(JobContext):
    """Attempt ``attempt`` ended without an answer; attempt ``attempt + 1`` follows.

    Its tokens are superseded: the result will hold the next attempt's tokens only.
    ``counts_as_try`` is false when the attempt was handed back (worker shutdown,
    partition moved), not failed: such attempts do not use up the job's tries.
    """

    type: Literal["job.retrying"] = "job.retrying"
    attempt: int
    model: str
    error: ErrorInfo
    token_count: int = 0
    retry_in_s: float = 0.0
    counts_as_try: bool = True
    started_at: float
    failed_at: float

    @property
    def next_attempt(self) -> int:
        return self.attempt + 1


JobEvent = Annotated[
    JobQueued | JobStarted | JobRetrying | JobCompleted | JobFailed | JobCancelled,
    Field(discriminator="type"),
]
TerminalEvent = JobCompleted | JobFailed | JobCancelled
TERMINAL_TYPES = frozenset({"job.completed", "job.failed", "job.cancelled"})

_job_event: TypeAdapter[JobEvent] = TypeAdapter(JobEvent)


T = TypeVar("T")


def _decode(adapter: TypeAdapter[T], raw: bytes | str) -> T:
    try:
        return adapter.validate_json(raw)
    except ValidationError as exc:
        raise EventDecodeError(_short_reason(exc)) from None


def _short_reason(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "message"
    return f"{where}: {first.get('msg', 'invalid')}"


_job_requested = TypeAdapter(JobRequested)
_token = TypeAdapter(TokenStreamed)
_cancel = TypeAdapter(CancelRequested)


def decode_job_event(raw: bytes | str) -> JobEvent:
    return _decode(_job_event, raw)


def decode_job_requested(raw: bytes | str) -> JobRequested:
    return _decode(_job_requested, raw)


def decode_token(raw: bytes | str) -> TokenStreamed:
    return _decode(_token, raw)


def decode_cancel(raw: bytes | str) -> CancelRequested:
    return _decode(_cancel, raw)


class DeadLetter(BaseModel):
    """What lands on ``jobs.dlq``: the original payload and why it could not be processed."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    schema_version: int = SCHEMA_VERSION
    event_id: str = Field(default_factory=new_event_id)
    type: Literal["dead_letter"] = "dead_letter"
    job_id: str | None = None
    source_topic: str
    partition: int | None = None
    offset: int | None = None
    reason: str
    payload: str = Field(description="the original message, UTF-8 with invalid bytes replaced")
    dead_lettered_at: float = Field(default_factory=now)
    # Set when a job exhausted its tries: the last error and the last attempt it ran.
    error_code: str | None = None
    attempt: int | None = None

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()


_dead_letter = TypeAdapter(DeadLetter)


def decode_dead_letter(raw: bytes | str) -> DeadLetter:
    return _decode(_dead_letter, raw)


class BreakerStatus(BaseModel):
    """One circuit breaker of a worker, as its status page reports it."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    worker: str
    provider: str
    model: str
    state: Literal["closed", "open", "half_open"]
    failure_rate: float
    calls_in_window: int
    opened_at: float | None = None
    retry_at: float | None = Field(default=None, description="when an open breaker half-opens")
