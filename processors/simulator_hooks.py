"""Test hooks: a job's metadata may ask the LLM simulator for faults and pacing.

Only used when the worker talks to the simulator (no OpenAI key configured); against a
real provider the metadata is never turned into headers. Each value is either one
setting for every attempt, or a list with one entry per attempt (attempt 1 first;
attempts past the list's end get no override):

- ``sluice_fault``: the simulator's ``x-sluice-fault``, e.g. ``"disconnect-after:5"``
  or ``["500", ""]`` (the first attempt fails, the second runs clean);
- ``sluice_tokens_per_second`` and ``sluice_ttft_ms``: the simulator's pacing headers;
- ``sluice_answer_tokens``: a longer answer than the simulator's usual, for volume;
- ``sluice_idle_timeout_s``: this job's stream idle timeout, so a stall test is quick.
"""

from __future__ import annotations

import math
from typing import Any

from schemas.events import JobRequested

FAULT = "sluice_fault"
TOKENS_PER_SECOND = "sluice_tokens_per_second"
TTFT_MS = "sluice_ttft_ms"
IDLE_TIMEOUT_S = "sluice_idle_timeout_s"
ANSWER_TOKENS = "sluice_answer_tokens"

_HEADERS = {
    FAULT: "x-sluice-fault",
    TOKENS_PER_SECOND: "x-sluice-tokens-per-second",
    TTFT_MS: "x-sluice-ttft-ms",
    ANSWER_TOKENS: "x-sluice-answer-tokens",
}


def for_attempt(value: Any, attempt: int) -> Any:
    """The setting for one attempt: a list is indexed by attempt, anything else applies to all."""
    if isinstance(value, list):
        return value[attempt - 1] if 0 < attempt <= len(value) else None
    return value


def simulator_headers(job: JobRequested, attempt: int) -> dict[str, str]:
    """The simulator headers this attempt asks for; empty values and unknown types are skipped."""
    headers = {}
    for field, header in _HEADERS.items():
        value = for_attempt(job.metadata.get(field), attempt)
        if isinstance(value, str | int | float) and not isinstance(value, bool) and value != "":
            headers[header] = str(value)
    return headers


def idle_timeout_override(job: JobRequested, attempt: int) -> float | None:
    value = for_attempt(job.metadata.get(IDLE_TIMEOUT_S), attempt)
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if number and math.isfinite(value) and value > 0 else None
