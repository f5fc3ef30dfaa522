"""Token counting with OpenAI's vocabularies, offline, and the worker's use of it."""

from __future__ import annotations

import pytest

from processors.job_types import chat_messages
from processors.llm import StreamOutcome
from processors.runner import AttemptRecord, attempt_usage
from schemas.events import CountedUsage, JobCancelled, JobRequested, Timings, Usage
from schemas.jobs import JobConfig, JobType
from schemas.topics import Priority
from sluice.tokens import (
    count_chat_prompt_tokens,
    count_text_tokens,
    vocabulary_for,
)


@pytest.mark.parametrize(
    ("model", "vocabulary"),
    [
        ("gpt-4o", "o200k_base"),
        ("gpt-4o-mini-2024-07-18", "o200k_base"),
        ("gpt-4.1-nano", "o200k_base"),
        ("gpt-5", "o200k_base"),
        ("o3", "o200k_base"),
        ("o4-mini", "o200k_base"),
        ("openai/gpt-4o", "o200k_base"),
        ("gpt-4", "cl100k_base"),
        ("gpt-4-turbo", "cl100k_base"),
        ("gpt-4-0613", "cl100k_base"),
        ("gpt-3.5-turbo", "cl100k_base"),
        ("llama3.1:8b", "o200k_base"),
    ],
)
def test_each_model_is_counted_with_its_vocabulary(model: str, vocabulary: str) -> None:
    assert vocabulary_for(model) == vocabulary


@pytest.mark.parametrize(
    ("model", "text", "tokens"),
    [
        # The ids tiktoken gives: cl100k "hello world" = [15339, 1917], o200k = [24912, 2375].
        ("gpt-4", "hello world", 2),
        ("gpt-4o", "hello world", 2),
        ("gpt-4o", "The contract calls withdraw before updating balances", 7),
        ("gpt-4", "The contract calls withdraw before updating balances", 7),
        ("gpt-4o", "", 0),
        # A special-token marker in a prompt is text, as the API treats it.
        ("gpt-4o", "<|endoftext|>", 7),
    ],
)
def test_text_is_counted_as_tiktoken_counts_it(model: str, text: str, tokens: int) -> None:
    assert count_text_tokens(model, text) == tokens


def test_a_chat_prompt_counts_every_message_and_its_frame() -> None:
    messages = [
        {"role": "system", "content": "hello world"},  # 3 + 1 + 2
        {"role": "user", "content": "hello world", "name": "ann"},  # 3 + 1 + 2 + 1 + 1
    ]
    assert count_chat_prompt_tokens("gpt-4o", messages) == 6 + 8 + 3


def job(model: str = "gpt-4o") -> JobRequested:
    return JobRequested(
        job_id="j",
        user_id="u",
        job_type=JobType.security_analysis,
        priority=Priority.normal,
        prompt="Analyze this contract for reentrancy.",
        config=JobConfig(model=model, max_tokens=64, temperature=0.0),
    )


def record(pieces: list[str], usage: Usage | None = None) -> AttemptRecord:
    rec = AttemptRecord(started_at=0.0, pieces=pieces)
    rec.outcome = StreamOutcome(finish_reason=None, usage=usage)
    return rec


def test_the_providers_usage_is_reported_as_is() -> None:
    usage = Usage(prompt_tokens=10, completion_tokens=2, total_tokens=12)
    assert attempt_usage(record(["a", "b"], usage), job()) is usage


def test_a_stream_without_usage_counts_its_prompt_and_answer() -> None:
    pieces = ["The", " contract", " calls", " withdraw", " before", " updating", " balances"]
    usage = attempt_usage(record(pieces), job())
    prompt = count_chat_prompt_tokens(
        "gpt-4o", chat_messages(JobType.security_analysis, job().prompt)
    )
    assert isinstance(usage, CountedUsage)
    assert usage == CountedUsage(prompt_tokens=prompt, completion_tokens=7, total_tokens=prompt + 7)


def test_an_attempt_that_got_no_answer_was_not_billed() -> None:
    usage = attempt_usage(record([]), job())
    assert isinstance(usage, CountedUsage) and usage.total_tokens == 0


def cancelled(usage: Usage) -> JobCancelled:
    return JobCancelled(
        job_id="j",
        user_id="u",
        job_type=JobType.analysis,
        priority=Priority.low,
        attempt=1,
        model="gpt-4o",
        token_count=1,
        response="a",
        usage=usage,
        timings=Timings(),
        tokens_per_second=0.0,
        estimated_cost_usd=0.0,
        started_at=1.0,
        finished_at=2.0,
    )


def test_terminal_events_say_where_their_usage_came_from() -> None:
    counted = cancelled(CountedUsage(prompt_tokens=5, completion_tokens=1, total_tokens=6))
    assert counted.usage_source == "counted"
    wire = counted.model_dump(mode="json")
    assert wire["usage_source"] == "counted"
    assert wire["usage"] == {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}
    assert JobCancelled.model_validate_json(counted.to_bytes()).usage_source == "counted"
    assert cancelled(Usage(prompt_tokens=5)).usage_source == "reported"


def test_events_from_before_the_field_read_as_reported() -> None:
    older = cancelled(Usage()).model_dump(mode="json")
    del older["usage_source"]
    assert JobCancelled.model_validate(older).usage_source == "reported"
