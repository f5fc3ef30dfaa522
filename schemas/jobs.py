"""What a job is: its type, its model config, and the bounds on both."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class JobType(StrEnum):
    security_analysis = "security_analysis"
    gas_analysis = "gas_analysis"
    sentiment_analysis = "sentiment_analysis"
    analysis = "analysis"


class JobStatus(StrEnum):
    queued = "queued"
    running = "running"
    retrying = "retrying"
    completed = "completed"
    failed = "failed"
    cancelled = "cancelled"


TERMINAL_STATUSES = frozenset({JobStatus.completed, JobStatus.failed, JobStatus.cancelled})

DEFAULT_MODEL = "gpt-4o-mini"
MAX_TOKENS_LIMIT = 131_072  # a hard ceiling; SLUICE_MAX_TOKENS_LIMIT sets the working bound
MAX_PROMPT_CHARS = 100_000


class JobConfig(BaseModel):
    """Model settings of a job. Ignores unknown fields, as every event reader must."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    model: str = Field(default=DEFAULT_MODEL, min_length=1, max_length=100)
    max_tokens: int = Field(default=512, ge=1, le=MAX_TOKENS_LIMIT)
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
