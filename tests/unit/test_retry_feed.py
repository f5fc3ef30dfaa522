"""The feed relays job.retrying between the failed attempt's tokens and the next attempt's."""

from __future__ import annotations

from api.feed import FeedAssembler
from schemas.events import ErrorInfo, JobCompleted, JobRetrying, JobStarted, Timings, TokenStreamed
from schemas.events import Usage as EventUsage
from schemas.jobs import JobType
from schemas.topics import Priority

JOB = "0190f0e0-0000-7000-8000-000000000000"
CTX = {"job_id": JOB, "user_id": "u", "job_type": JobType.analysis, "priority": Priority.normal}


def token(seq: int, attempt: int) -> TokenStreamed:
    return TokenStreamed(job_id=JOB, attempt=attempt, seq=seq, text=f"a{attempt}t{seq}", ts=1.0)


def started(attempt: int) -> JobStarted:
    return JobStarted(**CTX, attempt=attempt, model="m", worker="w", started_at=0.0)


def retrying(attempt: int, token_count: int) -> JobRetrying:
    return JobRetrying(
        **CTX,
        attempt=attempt,
        model="m",
        error=ErrorInfo(code="stream_broken", message="cut"),
        token_count=token_count,
        retry_in_s=1.5,
        started_at=0.0,
        failed_at=1.0,
    )


def completed(attempt: int, token_count: int) -> JobCompleted:
    return JobCompleted(
        **CTX,
        attempt=attempt,
        model="m",
        token_count=token_count,
        response="",
        usage=EventUsage(),
        timings=Timings(),
        tokens_per_second=0.0,
        estimated_cost_usd=0.0,
        started_at=0.0,
        finished_at=1.0,
    )


def script(*steps: object) -> list[tuple[str, int | None]]:
    feed = FeedAssembler(JOB)
    out = []
    for step in steps:
        if isinstance(step, TokenStreamed):
            out += feed.on_token(step)
        else:
            out += feed.on_job_event(step)  # type: ignore[arg-type]
    return [(i.event, i.data.get("attempt")) for i in out]


def test_retrying_comes_after_the_failed_attempts_tokens_even_when_read_first() -> None:
    events = script(started(1), token(0, 1), retrying(1, 2), token(1, 1), started(2), token(0, 2))
    assert events == [
        ("job.started", 1),
        ("token.streamed", 1),
        ("token.streamed", 1),
        ("job.retrying", 1),
        ("job.started", 2),
        ("token.streamed", 2),
    ]


def test_retrying_carries_the_error_and_the_pause() -> None:
    feed = FeedAssembler(JOB)
    feed.on_job_event(started(1))
    (item,) = feed.on_job_event(retrying(1, 0))
    assert item.event == "job.retrying"
    assert item.data["error"]["code"] == "stream_broken"
    assert item.data["retry_in_s"] == 1.5 and item.data["next_attempt"] == 2


def test_a_newer_start_releases_a_retrying_whose_tokens_never_came() -> None:
    events = script(started(1), retrying(1, 3), started(2))
    assert events == [("job.started", 1), ("job.retrying", 1), ("job.started", 2)]


def test_the_feed_ends_with_the_last_attempt_only() -> None:
    events = script(
        started(1), token(0, 1), retrying(1, 1), started(2), token(0, 2), token(1, 2),
        completed(2, 2),
    )  # fmt: skip
    assert events[-1] == ("streaming.completed", 2)
    assert events.count(("token.streamed", 2)) == 2


def test_a_stale_retrying_of_an_older_attempt_is_ignored() -> None:
    events = script(started(2), retrying(1, 0))
    assert events == [("job.started", 2)]
