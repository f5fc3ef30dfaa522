"""The stream reader: what counts as a stream that broke, from the bytes on the wire."""

from __future__ import annotations

import httpx2
import openai
import pytest

from processors.errors import StreamBroken, assess_failure
from processors.llm import StreamOutcome, stream_tokens
from schemas.events import JobRequested
from schemas.jobs import JobConfig, JobType
from schemas.topics import Priority

CHUNK = (
    b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m",'
    b'"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}\n\n'
)
JOB = JobRequested(
    job_id="j",
    user_id="u",
    job_type=JobType.analysis,
    priority=Priority.normal,
    prompt="p",
    config=JobConfig(),
)


def llm_answering(body: bytes) -> openai.AsyncOpenAI:
    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    transport = httpx2.MockTransport(answer)
    http = openai.DefaultAsyncHttpxClient(transport=transport)
    return openai.AsyncOpenAI(api_key="k", base_url="http://llm.test/v1", http_client=http)


async def read(body: bytes) -> list[str]:
    return [t async for t in stream_tokens(llm_answering(body), JOB, StreamOutcome())]


async def test_a_chunk_the_client_cannot_parse_is_a_broken_stream() -> None:
    with pytest.raises(StreamBroken) as caught:
        await read(CHUNK + b'data: {"id": oops\n\n')
    failure = assess_failure(caught.value, mid_stream=True)
    assert failure.error.code == "stream_broken" and failure.retryable


async def test_a_stream_that_stops_without_a_finish_reason_reports_none() -> None:
    outcome = StreamOutcome()
    pieces = [t async for t in stream_tokens(llm_answering(CHUNK), JOB, outcome)]
    assert pieces == ["Hi"] and outcome.finish_reason is None  # the runner: StreamBroken
