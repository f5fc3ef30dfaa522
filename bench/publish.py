"""The worker's publish path alone: CPU per token of FaustPublisher against Faust's Topic.send.

Part of `python -m bench.run` (scenario "publish"). Whole-pipeline CPU figures on a busy
2-core machine move by ±30% from run to run; one process publishing in a loop moves by
a few per cent, so a change to the per-token publish path shows here first.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from schemas.events import TokenStreamed
from schemas.topics import TOKENS

JOBS = 50  # keys the tokens are spread over, as concurrent jobs would


def _tokens(count: int, tag: str) -> list[TokenStreamed]:
    return [
        TokenStreamed(job_id=f"{tag}-{i % JOBS}", attempt=1, seq=i // JOBS, text=" token")
        for i in range(count)
    ]


async def _cpu_per_token(
    send: Callable[[TokenStreamed], Awaitable[Any]], tokens: list[TokenStreamed]
) -> tuple[float, float]:
    """CPU microseconds per token and tokens/s, until the broker acknowledged them all."""
    cpu, wall = time.process_time(), time.perf_counter()
    pending = [await send(t) for t in tokens]
    await asyncio.gather(*pending)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return cpu * 1e6 / len(tokens), len(tokens) / wall


async def publish_path(count: int = 20_000, rounds: int = 3) -> dict[str, Any]:
    """Best of `rounds` for the worker's publisher and for Topic.send, interleaved."""
    from processors.app import FaustPublisher, app  # a Faust app: imported only when run

    topic = app.topic(
        TOKENS, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )
    publisher = FaustPublisher()

    async def via_publisher(token: TokenStreamed) -> Any:
        await publisher.publish_token(token)
        return publisher._unconfirmed[token.job_id][-1]  # its delivery, to wait for

    async def via_topic_send(token: TokenStreamed) -> Any:
        return await topic.send(key=token.key(), value=token.to_bytes())

    await app.maybe_start_producer()
    best: dict[str, tuple[float, float]] = {}
    try:
        for n in range(rounds + 1):  # the first round warms up
            for name, send in (("publisher", via_publisher), ("topic_send", via_topic_send)):
                result = await _cpu_per_token(send, _tokens(count if n else 2000, f"{name}{n}"))
                if n and (name not in best or result[0] < best[name][0]):
                    best[name] = result
                publisher._unconfirmed.clear()
    finally:
        await app.producer.stop()
    return {
        "tokens": count,
        "cpu_us_per_token": {name: b[0] for name, b in best.items()},
        "tokens_per_s": {name: b[1] for name, b in best.items()},
    }
