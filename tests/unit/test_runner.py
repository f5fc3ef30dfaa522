"""One job attempt against the in-process simulator, with a publisher that records."""

from __future__ import annotations

import openai
import pytest

from processors.runner import JobRunner
from schemas.events import JobCompleted, JobFailed, JobRequested, JobStarted, TokenStreamed
from schemas.jobs import JobConfig, JobType
from schemas.topics import Priority
from sluice.jobids import new_job_id


class RecordingPublisher:
    def __init__(self) -> None:
        self.tokens: list[TokenStreamed] = []
        self.events: list[object] = []

    async def publish_token(self, token: TokenStreamed) -> None:
        self.tokens.append(token)

    async def publish_job_event(self, event: object) -> None:
        self.events.append(event)


def job(max_tokens: int = 512) -> JobRequested:
    return JobRequested(
        job_id=new_job_id(),
        user_id="u1",
        job_type=JobType.analysis,
        priority=Priority.high,
        prompt="How do partitions keep order?",
        config=JobConfig(model="gpt-4o-mini", max_tokens=max_tokens),
    )


def llm(url: str, fault: str | None = None) -> openai.AsyncOpenAI:
    headers = {"x-sluice-fault": fault} if fault else None
    return openai.AsyncOpenAI(base_url=url, api_key="k", max_retries=0, default_headers=headers)


async def test_completed_attempt_publishes_every_token_then_the_outcome(simulator_url: str) -> None:
    pub = RecordingPublisher()
    end = await JobRunner(llm(simulator_url), pub, "w1").run(job())

    assert isinstance(pub.events[0], JobStarted)
    assert isinstance(end, JobCompleted) and pub.events[-1] is end
    assert [t.seq for t in pub.tokens] == list(range(len(pub.tokens)))
    assert end.response == "".join(t.text for t in pub.tokens)
    assert end.token_count == len(pub.tokens) == end.usage.completion_tokens
    assert end.finish_reason == "stop"
    assert end.usage.prompt_tokens > 0
    assert end.estimated_cost_usd > 0
    assert end.timings.ttft_ms is not None and end.timings.duration_ms >= end.timings.ttft_ms


async def test_max_tokens_cuts_the_answer_with_length(simulator_url: str) -> None:
    pub = RecordingPublisher()
    end = await JobRunner(llm(simulator_url), pub, "w1").run(job(max_tokens=5))
    assert isinstance(end, JobCompleted)
    assert end.token_count == 5 and end.finish_reason == "length"


@pytest.mark.parametrize(
    ("fault", "code", "tokens"),
    [
        ("429", "llm_rate_limited", 0),
        ("503", "llm_server_error", 0),
        ("disconnect-after:3", "stream_broken", 3),
    ],
)
async def test_provider_failures_end_the_attempt_with_a_stable_code(
    simulator_url: str, fault: str, code: str, tokens: int
) -> None:
    pub = RecordingPublisher()
    end = await JobRunner(llm(simulator_url, fault), pub, "w1").run(job())
    assert isinstance(end, JobFailed)
    assert end.error.code == code
    assert end.token_count == len(pub.tokens) == tokens
    assert simulator_url not in end.error.message
