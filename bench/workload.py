"""The jobs the bench submits: M tokens each, paced by the simulator at R tokens/s.

Pace and length travel in the job's metadata (processors/simulator_hooks.py), which
the worker turns into the simulator's per-request headers. The direct baseline sends
the very same headers, derived from the same job, so both paths ask the simulator for
identical streams: M tokens (the answer is made at least M long, then cut at
``max_tokens=M``), the first after TTFT, then one every 1/R.
"""

from __future__ import annotations

from dataclasses import dataclass

from processors.simulator_hooks import (
    ANSWER_TOKENS,
    TOKENS_PER_SECOND,
    TTFT_MS,
    simulator_headers,
)
from schemas.events import JobRequested
from schemas.jobs import DEFAULT_MODEL, JobConfig, JobType
from schemas.topics import Priority

JOB_TYPE = JobType.analysis  # free text: the simulator's answer length is ours to choose
PRIORITY = Priority.normal


def prompt_text(k: int) -> str:
    return f"Benchmark job {k}: explain how Kafka partitions keep a stream's tokens in order."


@dataclass(frozen=True)
class Workload:
    """M tokens per job, paced at `rate` tokens/s after `ttft_ms` (0 and 0: unthrottled)."""

    tokens: int
    rate: float
    ttft_ms: int

    @property
    def ttft_s(self) -> float:
        return self.ttft_ms / 1000

    def config(self, max_tokens: int | None = None) -> JobConfig:
        return JobConfig(model=DEFAULT_MODEL, max_tokens=max_tokens or self.tokens)

    def metadata(self) -> dict[str, object]:
        return {
            ANSWER_TOKENS: self.tokens,
            TOKENS_PER_SECOND: self.rate,
            TTFT_MS: self.ttft_ms,
        }

    def request_body(self, k: int, max_tokens: int | None = None) -> dict[str, object]:
        """The POST /start body of job `k`."""
        return {
            "prompt": prompt_text(k),
            "job_type": JOB_TYPE.value,
            "priority": PRIORITY.value,
            "config": self.config(max_tokens).model_dump(),
            "metadata": self.metadata(),
        }

    def job(self, k: int) -> JobRequested:
        """Job `k` as the worker would receive it, for the direct baseline."""
        return JobRequested(
            job_id=f"direct-{k}",
            user_id="bench",
            job_type=JOB_TYPE,
            priority=PRIORITY,
            prompt=prompt_text(k),
            config=self.config(),
            metadata=self.metadata(),
        )

    def simulator_headers(self, k: int) -> dict[str, str]:
        """The simulator headers the worker sends for job `k`'s first attempt."""
        return simulator_headers(self.job(k), 1)
