"""Dead letters as the dashboard lists them: which can be requeued, and as what."""

from __future__ import annotations

from api.ops.dlq import _entry
from schemas.events import JobRequested
from schemas.jobs import JobConfig, JobType
from schemas.topics import Priority


def test_a_letter_holding_a_job_is_requeueable_with_its_priority() -> None:
    job = JobRequested(
        job_id="j-1",
        user_id="u",
        job_type=JobType.gas_analysis,
        priority=Priority.urgent,
        prompt="p",
        config=JobConfig(),
    )
    letter = {
        "job_id": "j-1",
        "source_topic": "jobs.urgent",
        "reason": "exhausted",
        "payload": job.model_dump_json(),
        "attempt": 3,
        "error_code": "llm_unavailable",
        "dead_lettered_at": 5.0,
    }
    entry = _entry(letter, offset=7)
    assert entry.requeueable and entry.priority == "urgent" and entry.job_type == "gas_analysis"
    assert (entry.attempt, entry.error_code, entry.offset) == (3, "llm_unavailable", 7)


def test_an_undecodable_message_is_listed_but_not_requeueable() -> None:
    entry = _entry({"source_topic": "jobs.low", "reason": "bad json", "payload": "{oops"}, 0)
    assert not entry.requeueable and entry.priority is None and entry.job_id is None
