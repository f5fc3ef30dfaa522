"""What the job-events log says about a redelivered job's earlier attempts."""

from __future__ import annotations

from typing import Any

from processors.history import JobHistory
from schemas.events import (
    ErrorInfo,
    JobCompleted,
    JobEvent,
    JobRetrying,
    JobStarted,
    Timings,
    Usage,
)
from schemas.jobs import JobType
from schemas.topics import Priority

CTX: dict[str, Any] = {
    "job_id": "j",
    "user_id": "u",
    "job_type": JobType.analysis,
    "priority": Priority.normal,
}


def started(attempt: int, at: float = 0.0) -> JobStarted:
    return JobStarted(**CTX, attempt=attempt, model="m", worker="w", started_at=at)


def retrying(attempt: int, counts: bool = True) -> JobRetrying:
    error = ErrorInfo(code="x", message="y")
    return JobRetrying(
        **CTX, attempt=attempt, model="m", error=error, counts_as_try=counts,
        started_at=0.0, failed_at=1.0,
    )  # fmt: skip


def completed(attempt: int) -> JobCompleted:
    return JobCompleted(
        **CTX, attempt=attempt, model="m", token_count=0, response="", usage=Usage(),
        timings=Timings(), tokens_per_second=0.0, estimated_cost_usd=0.0,
        started_at=0.0, finished_at=1.0,
    )  # fmt: skip


def fold(*events: JobEvent, base: int = 1) -> JobHistory:
    history = JobHistory(base=base)
    for event in events:
        history.add(event)
    return history


def test_a_fresh_job_starts_at_its_base_attempt() -> None:
    assert fold().next_attempt == 1
    assert fold(base=4).next_attempt == 4


def test_an_attempt_whose_worker_died_counts_as_a_try_and_is_never_reused() -> None:
    history = fold(started(1, at=5.0))
    assert history.next_attempt == 2
    assert history.interrupted == 1 and history.tries_used == 1
    assert history.first_started_at == 5.0


def test_failed_tries_count_and_handed_back_attempts_do_not() -> None:
    history = fold(started(1), retrying(1), started(2), retrying(2, counts=False))
    assert history.next_attempt == 3
    assert history.tries_used == 1


def test_a_job_that_ended_is_known_as_ended() -> None:
    history = fold(started(1), retrying(1), started(2), completed(2))
    assert history.finished is not None and history.finished.attempt == 2


def test_attempts_before_a_requeue_use_none_of_the_new_tries() -> None:
    history = fold(started(1), retrying(1), started(2), completed(2), base=3)
    assert history.finished is None
    assert history.tries_used == 0 and history.next_attempt == 3
