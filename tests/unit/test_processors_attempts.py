"""A job from message to end against the in-process simulator: retries, DLQ, breaker, history."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import openai
import pytest

from processors.attempts import Delivery, JobProcessor
from processors.breaker import BreakerConfig, BreakerKey, Breakers, Pass
from processors.history import JobHistory
from processors.retry import RetryPolicy
from processors.runner import JobRunner
from schemas.events import (
    DeadLetter,
    JobCompleted,
    JobFailed,
    JobRequested,
    JobRetrying,
    JobStarted,
    TokenStreamed,
)
from schemas.jobs import JobConfig, JobType
from schemas.topics import Priority
from sluice.jobids import new_job_id

PROVIDER = "sim"


class Recorder:
    """A publisher that keeps everything, and a sleep that only writes down how long."""

    def __init__(self) -> None:
        self.tokens: list[TokenStreamed] = []
        self.events: list[Any] = []
        self.letters: list[DeadLetter] = []
        self.sleeps: list[float] = []
        self.wanted_tokens = 0
        self.enough_tokens = asyncio.Event()

    async def publish_token(self, token: TokenStreamed) -> None:
        self.tokens.append(token)
        if self.wanted_tokens and len(self.tokens) >= self.wanted_tokens:
            self.enough_tokens.set()

    async def publish_job_event(self, event: Any) -> None:
        self.events.append(event)

    async def dead_letter(self, letter: DeadLetter) -> None:
        self.letters.append(letter)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def kinds(self) -> list[str]:
        return [f"{e.type.removeprefix('job.')}:{e.attempt}" for e in self.events]

    def text(self, attempt: int) -> str:
        return "".join(t.text for t in self.tokens if t.attempt == attempt)


def job(metadata: dict[str, Any] | None = None, attempt: int = 1) -> JobRequested:
    return JobRequested(
        job_id=new_job_id(),
        user_id="u1",
        job_type=JobType.analysis,
        priority=Priority.normal,
        prompt="What does a broker do when a consumer dies?",
        config=JobConfig(model="gpt-4o-mini", max_tokens=64),
        metadata=metadata or {},
        attempt=attempt,
    )


def delivery(j: JobRequested) -> Delivery:
    return Delivery(j, "jobs.normal", 2, 41, j.to_bytes())


def processor(
    url: str,
    rec: Recorder,
    *,
    policy: RetryPolicy | None = None,
    breakers: Breakers | None = None,
    idle_timeout_s: float = 5.0,
) -> JobProcessor:
    llm = openai.AsyncOpenAI(base_url=url, api_key="k", max_retries=0)
    return JobProcessor(
        JobRunner(llm, rec, "w1"),
        rec,
        breakers or Breakers(BreakerConfig(min_calls=100)),
        policy or RetryPolicy(max_tries=3, initial_s=1.0, max_s=8.0),
        provider=PROVIDER,
        idle_timeout_s=idle_timeout_s,
        simulator=True,
        sleep=rec.sleep,
        rand=lambda: 0.0,
    )


async def clean_answer(url: str, j: JobRequested) -> str:
    rec = Recorder()
    end = await processor(url, rec).process(delivery(j.model_copy(update={"metadata": {}})))
    assert isinstance(end, JobCompleted)
    return end.response


async def test_a_clean_job_is_one_attempt(simulator_url: str) -> None:
    rec = Recorder()
    end = await processor(simulator_url, rec).process(delivery(job()))
    assert rec.kinds() == ["started:1", "completed:1"]
    assert isinstance(end, JobCompleted) and end.response == rec.text(1)


@pytest.mark.parametrize("fault", ["disconnect-after:5", "500", "503", "502", "429:0"])
async def test_a_transient_failure_is_retried_and_only_the_new_attempt_is_the_answer(
    simulator_url: str, fault: str
) -> None:
    rec = Recorder()
    j = job({"sluice_fault": [fault]})
    end = await processor(simulator_url, rec).process(delivery(j))
    assert rec.kinds() == ["started:1", "retrying:1", "started:2", "completed:2"]
    assert isinstance(end, JobCompleted) and end.attempt == 2
    assert end.response == rec.text(2) == await clean_answer(simulator_url, j)
    assert end.token_count == len([t for t in rec.tokens if t.attempt == 2])
    retry = rec.events[1]
    assert isinstance(retry, JobRetrying) and retry.counts_as_try
    assert retry.token_count == len([t for t in rec.tokens if t.attempt == 1])
    assert rec.sleeps == [retry.retry_in_s] and rec.letters == []


async def test_retry_after_of_a_429_is_honoured(simulator_url: str) -> None:
    rec = Recorder()
    await processor(simulator_url, rec).process(delivery(job({"sluice_fault": ["429:3"]})))
    assert rec.sleeps == [3.0]
    assert rec.events[1].error.code == "llm_rate_limited"


async def test_a_stalled_stream_is_cut_by_the_idle_timeout_and_retried(
    simulator_url: str,
) -> None:
    rec = Recorder()
    j = job({"sluice_fault": ["stall-after:3:5000"], "sluice_idle_timeout_s": 0.3})
    end = await processor(simulator_url, rec).process(delivery(j))
    assert rec.events[1].error.code == "stream_idle"
    assert isinstance(end, JobCompleted) and end.attempt == 2


async def test_a_job_that_keeps_failing_is_dead_lettered_after_its_tries(
    simulator_url: str,
) -> None:
    rec = Recorder()
    j = job({"sluice_fault": "500"})
    end = await processor(simulator_url, rec).process(delivery(j))
    assert rec.kinds() == [
        "started:1", "retrying:1", "started:2", "retrying:2", "started:3", "failed:3",
    ]  # fmt: skip
    assert rec.sleeps == [0.5, 1.0]  # exponential, with the jitter at its lowest
    assert isinstance(end, JobFailed) and end.error.code == "llm_server_error"
    (letter,) = rec.letters
    assert letter.job_id == j.job_id and letter.error_code == "llm_server_error"
    assert letter.attempt == 3 and "exhausted 3 tries" in letter.reason
    assert letter.payload == j.to_bytes().decode()
    assert (letter.source_topic, letter.partition, letter.offset) == ("jobs.normal", 2, 41)


async def test_a_request_the_provider_refuses_fails_at_once(simulator_url: str) -> None:
    rec = Recorder()
    # The simulator answers 400 to a malformed fault header, like any invalid request.
    end = await processor(simulator_url, rec).process(delivery(job({"sluice_fault": "nope"})))
    assert rec.kinds() == ["started:1", "failed:1"]
    assert isinstance(end, JobFailed) and end.error.code == "llm_bad_request"
    assert rec.letters == [] and rec.sleeps == []


async def test_a_job_that_already_ended_is_not_run_again(simulator_url: str) -> None:
    rec = Recorder()
    j = job()
    first = await processor(simulator_url, rec).process(delivery(j))
    assert first is not None
    history = JobHistory()
    for event in rec.events:
        history.add(event)
    again = Recorder()
    assert await processor(simulator_url, again).process(delivery(j), history) is None
    assert again.events == []


async def test_a_job_whose_worker_died_goes_on_with_the_next_attempt(simulator_url: str) -> None:
    j = job()
    history = JobHistory()
    history.add(
        JobStarted(
            job_id=j.job_id, user_id="u1", job_type=j.job_type, priority=j.priority,
            attempt=1, model="gpt-4o-mini", worker="dead", started_at=time.time(),
        )
    )  # fmt: skip
    rec = Recorder()
    end = await processor(simulator_url, rec).process(delivery(j), history)
    assert rec.kinds() == ["started:2", "completed:2"]
    assert end is not None and end.response == await clean_answer(simulator_url, j)


async def test_a_job_that_killed_its_workers_too_often_is_dead_lettered(
    simulator_url: str,
) -> None:
    j = job()
    history = JobHistory()
    for attempt in (1, 2, 3):
        history.add(
            JobStarted(
                job_id=j.job_id, user_id="u1", job_type=j.job_type, priority=j.priority,
                attempt=attempt, model="gpt-4o-mini", worker="dead", started_at=time.time(),
            )
        )  # fmt: skip
    rec = Recorder()
    end = await processor(simulator_url, rec).process(delivery(j), history)
    assert isinstance(end, JobFailed) and end.error.code == "worker_crashed"
    assert end.attempt == 3 and rec.kinds() == ["failed:3"]
    assert len(rec.letters) == 1


async def test_an_open_breaker_makes_jobs_wait_not_fail(simulator_url: str) -> None:
    breakers = Breakers(BreakerConfig(0.5, 1, 10.0, open_s=1.0), poll_s=0.01)
    key = BreakerKey(PROVIDER, "gpt-4o-mini")
    rec = Recorder()
    jobs = processor(simulator_url, rec, breakers=breakers)  # built first: it takes a while
    breakers.record(key, await breakers.admit(key), failed=True)
    run = asyncio.create_task(jobs.process(delivery(job())))
    await asyncio.sleep(0.3)
    assert rec.events == []  # waiting for the breaker, not started, not failed
    end = await asyncio.wait_for(run, 5.0)
    assert isinstance(end, JobCompleted)
    assert breakers.breaker(key).request(0)[0] is Pass.go  # the probe closed it


async def test_a_job_out_of_time_fails_and_is_dead_lettered(simulator_url: str) -> None:
    rec = Recorder()
    policy = RetryPolicy(max_tries=5, initial_s=1.0, job_timeout_s=0.5)
    j = job({"sluice_fault": "503", "sluice_ttft_ms": 100})
    end = await processor(simulator_url, rec, policy=policy).process(delivery(j))
    assert isinstance(end, JobFailed) and end.error.code == "job_timeout"
    assert "timed out" in rec.letters[0].reason


async def test_a_stopped_attempt_is_handed_back_without_using_a_try(simulator_url: str) -> None:
    rec = Recorder()
    j = job({"sluice_tokens_per_second": 20})
    run = asyncio.create_task(processor(simulator_url, rec).process(delivery(j)))
    rec.wanted_tokens = 3
    await asyncio.wait_for(rec.enough_tokens.wait(), 5.0)
    run.cancel("worker_shutdown")
    with pytest.raises(asyncio.CancelledError):
        await run
    assert rec.kinds() == ["started:1", "retrying:1"]
    handed = rec.events[-1]
    assert not handed.counts_as_try and handed.error.code == "worker_shutdown"
    history = JobHistory()
    for event in rec.events:
        history.add(event)
    assert history.tries_used == 0 and history.next_attempt == 2
