"""Backoff between attempts: exponential, jittered, Retry-After as a floor, bounded by the job."""

from __future__ import annotations

import pytest

from processors.retry import RetryPolicy, backoff_s, decide_retry

POLICY = RetryPolicy(max_tries=3, initial_s=1.0, max_s=8.0, retry_after_max_s=30.0)


@pytest.mark.parametrize(("tries", "step"), [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)])
def test_each_step_doubles_up_to_the_cap_and_jitter_stays_in_its_upper_half(
    tries: int, step: float
) -> None:
    assert backoff_s(POLICY, tries, rand=lambda: 0.0) == step / 2
    assert backoff_s(POLICY, tries, rand=lambda: 1.0) == step


def test_jitter_spreads_retries_of_many_jobs() -> None:
    delays = {backoff_s(POLICY, 2, rand=lambda r=r / 10: r) for r in range(10)}
    assert len(delays) == 10 and min(delays) >= 1.0 and max(delays) <= 2.0


def test_retry_after_is_a_floor_and_is_capped() -> None:
    assert backoff_s(POLICY, 1, retry_after_s=5.0, rand=lambda: 0.0) == 5.0
    assert backoff_s(POLICY, 1, retry_after_s=0.1, rand=lambda: 0.0) == 0.5
    assert backoff_s(POLICY, 1, retry_after_s=3600.0, rand=lambda: 0.0) == 30.0


def test_a_job_stops_when_its_tries_are_used_up() -> None:
    assert decide_retry(POLICY, 2, now=0.0, deadline=100.0, rand=lambda: 0.0).retry
    final = decide_retry(POLICY, 3, now=0.0, deadline=100.0, rand=lambda: 0.0)
    assert not final.retry and final.why_not == "exhausted"


def test_a_job_stops_when_the_pause_would_pass_its_deadline() -> None:
    decision = decide_retry(POLICY, 1, now=99.8, deadline=100.0, rand=lambda: 0.0)
    assert not decision.retry and decision.why_not == "timeout"
    assert decide_retry(POLICY, 1, now=10.0, deadline=100.0, rand=lambda: 0.0).delay_s == 0.5
