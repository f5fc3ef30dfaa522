from __future__ import annotations

from processors.cancellation import CancelRegistry
from schemas.events import CancelRequested


def cancel(job_id: str) -> CancelRequested:
    return CancelRequested(job_id=job_id, user_id="u")


def test_a_running_job_is_signalled_when_cancelled() -> None:
    registry = CancelRegistry()
    event = registry.watch("j1")
    assert not event.is_set()
    registry.record(cancel("j1"))
    assert event.is_set() and registry.is_cancelled("j1")


def test_a_job_cancelled_before_it_runs_starts_cancelled() -> None:
    registry = CancelRegistry()
    registry.record(cancel("j2"))
    assert registry.watch("j2").is_set()


def test_other_jobs_are_untouched() -> None:
    registry = CancelRegistry()
    event = registry.watch("j3")
    registry.record(cancel("j4"))
    assert not event.is_set() and not registry.is_cancelled("j3")
    registry.release("j3")
