"""The LLM simulator, seen through the official openai client and raw HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest

from sluice.fakellm.protocol import ChatMessage
from sluice.fakellm.server import create_app
from sluice.fakellm.text import answer_tokens

MESSAGES: list[Any] = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Explain how Kafka partitions keep tokens in order."},
]


@pytest.fixture(scope="module")
def base_url(simulator_url: str) -> str:
    return simulator_url


@pytest.fixture
def client(base_url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0) as c:
        yield c


@pytest.fixture
async def async_client(base_url: str) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=base_url, api_key="sk-test", max_retries=0) as c:
        yield c


@pytest.fixture
async def asgi() -> AsyncIterator[httpx.AsyncClient]:
    """In-process client for checks that need no real socket."""
    transport = httpx.ASGITransport(app=create_app(tokens_per_second=0, ttft_ms=0))
    async with httpx.AsyncClient(transport=transport, base_url="http://fake") as c:
        yield c


@dataclass
class Streamed:
    pieces: list[str]
    finish_reason: str | None
    usage: openai.types.CompletionUsage | None

    @property
    def text(self) -> str:
        return "".join(self.pieces)


def stream_answer(client: openai.OpenAI, **kwargs: Any) -> Streamed:
    kwargs.setdefault("messages", MESSAGES)
    stream = client.chat.completions.create(
        model="gpt-4o-mini", stream=True, stream_options={"include_usage": True}, **kwargs
    )
    result = Streamed([], None, None)
    for chunk in stream:
        if chunk.usage is not None:
            result.usage = chunk.usage
        for choice in chunk.choices:
            if choice.delta.content:
                result.pieces.append(choice.delta.content)
            if choice.finish_reason is not None:
                result.finish_reason = choice.finish_reason
    return result


def answer_text(client: openai.OpenAI, **kwargs: Any) -> str:
    kwargs.setdefault("messages", MESSAGES)
    response = client.chat.completions.create(model="gpt-4o-mini", **kwargs)
    return response.choices[0].message.content or ""


def content_arrivals(base_url: str, max_tokens: int, headers: dict[str, str]) -> list[float]:
    """Seconds from the request to each content chunk's arrival, read off the raw stream."""
    body = {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True, "max_tokens": max_tokens}
    arrivals: list[float] = []
    start = time.monotonic()
    url = f"{base_url}/chat/completions"
    with httpx.stream("POST", url, json=body, headers=headers) as response:
        for line in response.iter_lines():
            if not line.startswith("data: {"):
                continue
            choices = json.loads(line.removeprefix("data: "))["choices"]
            if choices and choices[0]["delta"].get("content"):
                arrivals.append(time.monotonic() - start)
    return arrivals


def test_streamed_answer_equals_non_streamed_answer(client: openai.OpenAI) -> None:
    streamed = stream_answer(client, seed=7)
    response = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, seed=7)

    assert streamed.text == response.choices[0].message.content
    assert streamed.finish_reason == response.choices[0].finish_reason == "stop"
    assert streamed.text.endswith(".")
    assert streamed.usage is not None and response.usage is not None
    assert streamed.usage.completion_tokens == len(streamed.pieces)
    assert streamed.usage.model_dump() == response.usage.model_dump()
    assert streamed.usage.total_tokens == (
        streamed.usage.prompt_tokens + streamed.usage.completion_tokens
    )


async def test_async_client_accepts_the_stream(async_client: openai.AsyncOpenAI) -> None:
    stream = await async_client.chat.completions.create(
        model="gpt-4.1", messages=MESSAGES, stream=True
    )
    pieces, finish_reasons = [], []
    async for chunk in stream:
        assert chunk.model == "gpt-4.1"
        assert chunk.usage is None
        pieces += [c.delta.content for c in chunk.choices if c.delta.content]
        finish_reasons += [c.finish_reason for c in chunk.choices if c.finish_reason]

    assert finish_reasons == ["stop"]
    assert 40 <= len(pieces) <= 160
    assert "".join(pieces).endswith(".")


def test_same_request_gives_same_text(client: openai.OpenAI) -> None:
    first = answer_text(client)
    assert answer_text(client) == first
    assert stream_answer(client).text == first


def test_different_prompt_or_seed_gives_different_text(client: openai.OpenAI) -> None:
    base = answer_text(client)
    other_prompt = [{"role": "user", "content": "Write a haiku about consumer groups."}]
    assert answer_text(client, messages=other_prompt) != base
    assert answer_text(client, seed=1) != base


def test_tokens_look_like_word_pieces() -> None:
    tokens = answer_tokens([ChatMessage(role="user", content="hello there")], None, "gpt-4o")
    assert tokens[-1] == "."
    assert not tokens[0].startswith(" ")
    assert sum(t.startswith(" ") for t in tokens) > len(tokens) / 2


def test_natural_answer_length_varies_within_bounds() -> None:
    lengths = {
        len(answer_tokens([ChatMessage(role="user", content=f"q{i}")], None, "gpt-4o"))
        for i in range(300)
    }
    assert min(lengths) >= 40
    assert max(lengths) <= 165
    assert len(lengths) > 50


@pytest.mark.parametrize("limit_field", ["max_tokens", "max_completion_tokens"])
def test_token_limit_cuts_the_answer_with_length(client: openai.OpenAI, limit_field: str) -> None:
    streamed = stream_answer(client, **{limit_field: 7})
    full = answer_text(client)

    assert len(streamed.pieces) == 7
    assert streamed.finish_reason == "length"
    assert streamed.usage is not None and streamed.usage.completion_tokens == 7
    assert full.startswith(streamed.text)


def test_tokens_are_paced(base_url: str) -> None:
    headers = {"x-sluice-ttft-ms": "200", "x-sluice-tokens-per-second": "50"}
    arrivals = content_arrivals(base_url, max_tokens=21, headers=headers)

    assert len(arrivals) == 21
    assert 0.2 <= arrivals[0] < 0.3
    assert 0.3 <= arrivals[-1] - arrivals[0] <= 0.5  # 20 tokens at 50/s: 0.4 s


def test_raw_stream_has_openai_framing(base_url: str) -> None:
    body = {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True, "max_tokens": 3}
    response = httpx.post(f"{base_url}/chat/completions", json=body)

    assert response.headers["content-type"].startswith("text/event-stream")
    raw = response.content
    assert raw.endswith(b"data: [DONE]\n\n")
    events = raw.split(b"\n\n")
    assert events[-1] == b""
    assert all(e.startswith(b"data: ") and b"\n" not in e for e in events[:-1])

    chunks = [json.loads(e[len(b"data: ") :]) for e in events[:-2]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    expected = answer_tokens([ChatMessage.model_validate(m) for m in MESSAGES], None, "gpt-4o-mini")
    assert [c["choices"][0]["delta"] for c in chunks[1:4]] == [{"content": t} for t in expected[:3]]
    assert chunks[-1]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "length",
    }
    assert {c["id"] for c in chunks} == {chunks[0]["id"]}
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert all("usage" not in c for c in chunks)


def test_include_usage_adds_null_usage_and_a_final_usage_chunk(base_url: str) -> None:
    body = {
        "model": "gpt-4o-mini",
        "messages": MESSAGES,
        "stream": True,
        "max_tokens": 4,
        "stream_options": {"include_usage": True},
    }
    events = httpx.post(f"{base_url}/chat/completions", json=body).content.split(b"\n\n")
    chunks = [json.loads(e[len(b"data: ") :]) for e in events[:-2]]

    assert all(c["usage"] is None for c in chunks[:-1])
    assert chunks[-1]["choices"] == []
    usage = chunks[-1]["usage"]
    assert usage["completion_tokens"] == 4
    assert usage["total_tokens"] == usage["prompt_tokens"] + 4


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b'{"model": "gpt-4o-mini", "messages": [', None),
        (b'{"model": "gpt-4o-mini"}', "messages"),
        (b'{"model": "gpt-4o-mini", "messages": []}', "messages"),
        (b'{"model": "gpt-4o-mini", "messages": [{"role": "robot"}]}', "messages[0].role"),
        (b'{"model": "m", "messages": [{"role": "user"}], "max_tokens": 0}', "max_tokens"),
    ],
)
async def test_bad_request_gets_openai_error(
    asgi: httpx.AsyncClient, body: bytes, param: str | None
) -> None:
    response = await asgi.post("/v1/chat/completions", content=body)

    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert error["message"]


def test_openai_client_raises_bad_request(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model="gpt-4o-mini", messages=[])
    assert raised.value.status_code == 400


async def test_models_and_health(asgi: httpx.AsyncClient) -> None:
    models = (await asgi.get("/v1/models")).json()
    assert {m["id"] for m in models["data"]} >= {"gpt-4o-mini", "gpt-4.1", "o4-mini"}
    assert (await asgi.get("/healthz")).status_code == 200
    assert (await asgi.get("/v1/models/nope")).json()["error"]["code"] == "model_not_found"


def test_fault_429_has_retry_after(client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as raised:
        answer_text(client, extra_headers={"x-sluice-fault": "429:3"})
    assert raised.value.response.headers["retry-after"] == "3"


def test_fault_503(client: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as raised:
        stream_answer(client, extra_headers={"x-sluice-fault": "503"})
    assert raised.value.status_code == 503


def test_fault_disconnect_mid_stream(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        stream=True,
        extra_headers={"x-sluice-fault": "disconnect-after:3"},
    )
    pieces: list[str] = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in stream:
            pieces += [c.delta.content for c in chunk.choices if c.delta.content]
    assert len(pieces) == 3


def test_fault_disconnect_without_stream(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIConnectionError):
        answer_text(client, extra_headers={"x-sluice-fault": "disconnect-after:3"})


def test_fault_stall_pauses_then_continues(base_url: str) -> None:
    headers = {"x-sluice-fault": "stall-after:2:300"}
    arrivals = content_arrivals(base_url, max_tokens=4, headers=headers)

    assert len(arrivals) == 4
    assert arrivals[1] < 0.2
    assert arrivals[2] >= 0.3  # the stall shifts the rest of the schedule by 300 ms
    assert arrivals[2] - arrivals[1] >= 0.2


async def test_malformed_fault_header_is_a_bad_request(asgi: httpx.AsyncClient) -> None:
    body = {"model": "gpt-4o-mini", "messages": MESSAGES}
    response = await asgi.post(
        "/v1/chat/completions", json=body, headers={"x-sluice-fault": "explode"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "x-sluice-fault"
