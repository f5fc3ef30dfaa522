"""Provider limits make jobs wait, never fail: client-side buckets and the provider's headers."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from processors.rate_limits import ModelRateLimits, parse_reset


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1s", 1.0), ("6m0s", 360.0), ("20ms", 0.02), ("0.5s", 0.5), ("2", 2.0), ("1h2m", 3720.0)],
)
def test_reset_durations_are_read_like_openai_writes_them(text: str, seconds: float) -> None:
    assert parse_reset(text) == pytest.approx(seconds)


def test_a_reset_that_is_not_a_duration_is_ignored() -> None:
    assert parse_reset("soon") is None
    assert parse_reset(None) is None


async def test_requests_over_the_per_minute_limit_wait() -> None:
    limits = ModelRateLimits({"m": (120, 0)})  # two a second
    began = asyncio.get_running_loop().time()
    for _ in range(122):
        await limits.admit("m", 10)
    waited = asyncio.get_running_loop().time() - began
    assert 0.5 < waited < 3


async def test_a_model_without_limits_never_waits() -> None:
    limits = ModelRateLimits({"m": (1, 1)})
    async with asyncio.timeout(0.5):
        for _ in range(100):
            await limits.admit("other", 100_000)


async def test_tokens_over_the_per_minute_limit_wait_and_a_huge_job_still_runs() -> None:
    limits = ModelRateLimits({"m": (0, 6000)})  # 100 tokens a second
    await limits.admit("m", 1_000_000)  # larger than a minute: takes the whole budget
    task = asyncio.create_task(limits.admit("m", 50))
    await asyncio.sleep(0.1)
    assert not task.done()
    async with asyncio.timeout(2):
        await task


class Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.now += s


async def test_near_the_providers_limit_jobs_wait_for_its_reset() -> None:
    clock = Clock()
    limits = ModelRateLimits(clock=clock, sleep=clock.sleep)
    limits.observe(
        "m",
        {
            "x-ratelimit-limit-requests": "500",
            "x-ratelimit-remaining-requests": "3",
            "x-ratelimit-reset-requests": "1.5s",
        },
    )
    assert limits.paused_for("m") == pytest.approx(1.5)
    assert limits.paused_for("other") == 0
    await limits.admit("m", 10)
    assert clock.slept == [pytest.approx(1.5)]


async def test_plenty_left_means_no_wait() -> None:
    clock = Clock()
    limits = ModelRateLimits(clock=clock, sleep=clock.sleep)
    limits.observe(
        "m",
        {
            "x-ratelimit-limit-tokens": "150000",
            "x-ratelimit-remaining-tokens": "149000",
            "x-ratelimit-reset-tokens": "6m0s",
        },
    )
    assert limits.paused_for("m") == 0


async def test_the_response_hook_reads_the_model_from_the_request() -> None:
    clock = Clock()
    limits = ModelRateLimits(clock=clock, sleep=clock.sleep)
    request = httpx.Request(
        "POST", "http://llm/v1/chat/completions", content=json.dumps({"model": "gpt-4o"})
    )
    headers = {"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "20ms"}
    await limits.on_response(httpx.Response(200, headers=headers, request=request))
    assert limits.paused_for("gpt-4o") == pytest.approx(0.02)
