from __future__ import annotations

from api.feed import FeedAssembler
from schemas.events import (
    ErrorInfo,
    JobCompleted,
    JobFailed,
    JobQueued,
    JobStarted,
    Timings,
    TokenStreamed,
    Usage,
)
from schemas.jobs import JobConfig, JobType
from schemas.topics import Priority

JOB = "0190f0e0-0000-7000-8000-000000000000"
CTX = {"job_id": JOB, "user_id": "u", "job_type": JobType.analysis, "priority": Priority.normal}


def token(seq: int, attempt: int = 1) -> TokenStreamed:
    return TokenStreamed(job_id=JOB, attempt=attempt, seq=seq, text=f"t{seq}", ts=1.0 + seq)


def finished(token_count: int, attempt: int = 1, failed: bool = False) -> JobCompleted | JobFailed:
    fields = {
        **CTX,
        "attempt": attempt,
        "model": "m",
        "token_count": token_count,
        "response": "",
        "usage": Usage(),
        "timings": Timings(),
        "tokens_per_second": 0.0,
        "estimated_cost_usd": 0.0,
        "started_at": 0.0,
        "finished_at": 1.0,
    }
    if failed:
        return JobFailed(error=ErrorInfo(code="x", message="y"), **fields)
    return JobCompleted(**fields)


def started(attempt: int = 1) -> JobStarted:
    return JobStarted(**CTX, attempt=attempt, model="m", worker="w", started_at=0.0)


def new_feed(attempt: int = 1) -> FeedAssembler:
    feed = FeedAssembler(JOB)
    feed.on_job_event(started(attempt))
    return feed


def names(items: list) -> list[str]:  # type: ignore[type-arg]
    return [i.event for i in items]


def test_tokens_then_completion_in_order() -> None:
    feed = new_feed()
    out = []
    for seq in range(3):
        out += feed.on_token(token(seq))
    out += feed.on_job_event(finished(3))
    assert names(out) == ["token.streamed"] * 3 + ["streaming.completed"]
    assert [i.data["token"] for i in out[:3]] == ["t0", "t1", "t2"]
    assert feed.done


def test_completion_read_before_last_tokens_waits_for_them() -> None:
    feed = new_feed()
    out = feed.on_token(token(0))
    out += feed.on_job_event(finished(3))
    assert names(out) == ["token.streamed"]
    out += feed.on_token(token(1))
    out += feed.on_token(token(2))
    assert names(out) == ["token.streamed"] * 3 + ["streaming.completed"]


def test_duplicate_tokens_are_delivered_once() -> None:
    feed = new_feed()
    out = feed.on_token(token(0)) + feed.on_token(token(0)) + feed.on_token(token(1))
    assert [i.data["seq"] for i in out] == [0, 1]


def test_newer_attempt_supersedes_older_tokens() -> None:
    feed = new_feed()
    out = feed.on_token(token(0, attempt=1)) + feed.on_job_event(started(2))
    out += feed.on_token(token(0, attempt=2))
    out += feed.on_token(token(1, attempt=1))  # late token of the old attempt: dropped
    out += feed.on_job_event(finished(1, attempt=2))
    assert [(i.event, i.data.get("attempt")) for i in out] == [
        ("token.streamed", 1),
        ("job.started", 2),
        ("token.streamed", 2),
        ("streaming.completed", 2),
    ]


def test_failure_with_no_tokens_ends_the_feed_with_its_error() -> None:
    feed = FeedAssembler(JOB)
    out = feed.on_job_event(finished(0, failed=True))
    assert names(out) == ["analysis.failed"]
    assert out[0].data["error"]["code"] == "x"


def test_progress_is_tokens_against_max_tokens() -> None:
    feed = FeedAssembler(JOB)
    queued = JobQueued(**CTX, prompt="p", config=JobConfig(max_tokens=4), submitted_at=0.0)
    feed.on_job_event(queued)
    feed.on_job_event(started())
    out = feed.on_token(token(0))
    assert out[0].data["progress"] == 25.0


def test_tokens_read_before_their_start_wait_for_it() -> None:
    feed = FeedAssembler(JOB)
    out = feed.on_token(token(0)) + feed.on_token(token(1))
    assert out == []
    out = feed.on_job_event(started())
    assert names(out) == ["job.started", "token.streamed", "token.streamed"]
