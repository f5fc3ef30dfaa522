"""Requeueing from the DLQ: the newest runnable letter, sent back one attempt past its last."""

from __future__ import annotations

import pytest

from producers.dlq import DeadLetterError, StoredLetter, latest_job_letter, requeued_job
from schemas.events import DeadLetter, JobRequested
from schemas.jobs import JobConfig, JobType
from schemas.topics import Priority

JOB = JobRequested(
    job_id="0190f0e0-0000-7000-8000-000000000001",
    user_id="u",
    job_type=JobType.analysis,
    priority=Priority.high,
    prompt="p",
    config=JobConfig(),
)


def stored(
    offset: int, payload: str, attempt: int | None, at: float, job_id: str = JOB.job_id
) -> StoredLetter:
    letter = DeadLetter(
        job_id=job_id,
        source_topic="jobs.high",
        reason="exhausted 3 tries",
        payload=payload,
        attempt=attempt,
        error_code="llm_server_error",
        dead_lettered_at=at,
    )
    return StoredLetter(0, offset, letter, letter.to_bytes())


def test_requeue_takes_the_newest_letter_and_goes_one_attempt_further() -> None:
    letters = [
        stored(0, JOB.to_bytes().decode(), attempt=3, at=10.0),
        stored(1, JOB.model_copy(update={"attempt": 4}).to_bytes().decode(), attempt=6, at=20.0),
        stored(2, "{not a job", attempt=None, at=30.0),
    ]
    chosen = latest_job_letter(letters, JOB.job_id)
    assert chosen.offset == 1
    again = requeued_job(chosen)
    assert again.attempt == 7 and again.priority is Priority.high
    assert again.prompt == JOB.prompt and again.event_id != JOB.event_id


def test_a_job_without_letters_or_without_a_runnable_one_cannot_be_requeued() -> None:
    with pytest.raises(DeadLetterError, match="no dead letter"):
        latest_job_letter([stored(0, "x", None, 1.0, job_id="other")], JOB.job_id)
    with pytest.raises(DeadLetterError, match="no job request"):
        latest_job_letter([stored(0, "{}", None, 1.0)], JOB.job_id)
