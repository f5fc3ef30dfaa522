"""When to try a job again: exponential backoff with jitter, Retry-After, and the job's budget.

Pure: time comes in as numbers and randomness as a function, so tests need no sleeping.
Written by hand rather than with tenacity's wait strategies: the delay depends on the
failure's Retry-After and on the job's remaining time, which a wait strategy cannot see
outside tenacity's own retry loop, and our loop publishes an event per attempt.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from sluice.settings import Settings


@dataclass(frozen=True)
class RetryPolicy:
    max_tries: int = 3
    initial_s: float = 1.0
    max_s: float = 60.0
    retry_after_max_s: float = 300.0
    job_timeout_s: float = 1800.0

    @classmethod
    def from_settings(cls, s: Settings) -> RetryPolicy:
        return cls(
            max_tries=s.retry_max_tries,
            initial_s=s.retry_backoff_initial_s,
            max_s=s.retry_backoff_max_s,
            retry_after_max_s=s.retry_after_max_s,
            job_timeout_s=s.job_timeout_s,
        )


def backoff_s(
    policy: RetryPolicy,
    tries_used: int,
    retry_after_s: float | None = None,
    rand: Callable[[], float] = random.random,
) -> float:
    """The pause before the next attempt, after ``tries_used`` failed tries (1 for the first).

    Exponential (initial, 2x, 4x, ... capped at ``max_s``) with "equal jitter": half of the
    step is fixed, half random, so retries of many jobs spread out yet never come at once.
    A provider's Retry-After is a floor (capped at ``retry_after_max_s``).
    """
    step = min(policy.max_s, policy.initial_s * 2.0 ** max(0, tries_used - 1))
    delay = step / 2 + rand() * step / 2
    if retry_after_s is not None:
        delay = max(delay, min(retry_after_s, policy.retry_after_max_s))
    return delay


@dataclass(frozen=True)
class RetryDecision:
    retry: bool
    delay_s: float = 0.0
    why_not: str | None = None  # "exhausted" or "timeout" when retry is False


def decide_retry(
    policy: RetryPolicy,
    tries_used: int,
    now: float,
    deadline: float,
    retry_after_s: float | None = None,
    rand: Callable[[], float] = random.random,
) -> RetryDecision:
    """After a retryable failure: retry after a delay, or stop (tries exhausted, no time left)."""
    if tries_used >= policy.max_tries:
        return RetryDecision(False, why_not="exhausted")
    delay = backoff_s(policy, tries_used, retry_after_s, rand)
    if now + delay >= deadline:
        return RetryDecision(False, why_not="timeout")
    return RetryDecision(True, delay)
