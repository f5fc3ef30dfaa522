"""Streaming chat completions through the official openai client.

Works unchanged against OpenAI, any OpenAI-compatible server, or the simulator.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import openai
from openai import AsyncOpenAI

from processors.errors import StreamBroken, StreamIdle
from processors.job_types import chat_messages
from schemas.events import JobRequested, Usage
from sluice.settings import Settings


def make_llm_client(settings: Settings) -> AsyncOpenAI:
    # Retries belong to the job (new attempts the user can see), not hidden in the client.
    return AsyncOpenAI(
        api_key=settings.resolved_openai_api_key,
        base_url=settings.resolved_openai_base_url,
        max_retries=0,
        timeout=openai.Timeout(connect=10.0, read=120.0, write=30.0, pool=30.0),
    )


@dataclass
class StreamOutcome:
    """What the end of a stream told us; filled while the stream is read."""

    finish_reason: str | None = None
    usage: Usage | None = None


async def stream_tokens(
    client: AsyncOpenAI,
    job: JobRequested,
    outcome: StreamOutcome,
    *,
    headers: dict[str, str] | None = None,
    idle_timeout_s: float | None = None,
) -> AsyncIterator[str]:
    """Yield each content piece as it arrives; record finish_reason and usage in `outcome`.

    Raises ``StreamIdle`` when no chunk (nor the response itself) arrives for
    ``idle_timeout_s``: the client's read timeout covers one socket read, not a stream
    that keeps a connection open and sends nothing useful.
    """
    idle = asyncio.timeout(idle_timeout_s)
    try:
        async with idle:
            stream = await client.chat.completions.create(
                model=job.config.model,
                messages=chat_messages(job.job_type, job.prompt),
                max_tokens=job.config.max_tokens,
                temperature=job.config.temperature,
                stream=True,
                stream_options={"include_usage": True},
                extra_headers=headers or None,
            )
    except TimeoutError:
        if idle.expired():
            raise StreamIdle from None
        raise
    async with stream:
        chunks = aiter(stream)
        while True:
            idle = asyncio.timeout(idle_timeout_s)
            try:
                async with idle:
                    chunk = await anext(chunks)
            except StopAsyncIteration:
                return
            except TimeoutError:
                if idle.expired():
                    raise StreamIdle from None
                raise
            except ValueError as exc:
                # A chunk the client could not parse: the answer is cut off there.
                raise StreamBroken from exc
            if chunk.usage is not None:
                outcome.usage = Usage(
                    prompt_tokens=chunk.usage.prompt_tokens,
                    completion_tokens=chunk.usage.completion_tokens,
                    total_tokens=chunk.usage.total_tokens,
                )
            for choice in chunk.choices:
                if choice.delta is not None and choice.delta.content:
                    yield choice.delta.content
                if choice.finish_reason is not None:
                    outcome.finish_reason = choice.finish_reason
