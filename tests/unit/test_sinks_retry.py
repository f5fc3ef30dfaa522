"""Transient write errors are retried with growing waits until success or shutdown."""

from __future__ import annotations

import asyncio

import pytest

from sinks.retry import Backoff, SinkStopping, retry_transient


class Outage(Exception):
    pass


class Flaky:
    def __init__(self, failures: int, error: Exception | None = None) -> None:
        self.failures = failures
        self.calls = 0
        self.error = error or Outage("db down")

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "written"


def transient(exc: BaseException) -> bool:
    return isinstance(exc, Outage)


async def test_retries_transient_errors_with_capped_exponential_waits() -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    operation = Flaky(failures=5)
    result = await retry_transient(
        operation,
        is_transient=transient,
        stopping=asyncio.Event(),
        what="write",
        backoff=Backoff(initial_s=1.0, max_s=4.0),
        sleep=sleep,
    )
    assert result == "written"
    assert operation.calls == 6
    assert waits == [1.0, 2.0, 4.0, 4.0, 4.0]


async def test_other_errors_are_not_retried() -> None:
    operation = Flaky(failures=1, error=ValueError("bad row"))
    with pytest.raises(ValueError):
        await retry_transient(
            operation, is_transient=transient, stopping=asyncio.Event(), what="write"
        )
    assert operation.calls == 1


async def test_a_stop_during_an_outage_gives_up_without_success() -> None:
    stopping = asyncio.Event()

    async def sleep(seconds: float) -> None:
        stopping.set()

    operation = Flaky(failures=100)
    with pytest.raises(SinkStopping):
        await retry_transient(
            operation, is_transient=transient, stopping=stopping, what="write", sleep=sleep
        )
    assert operation.calls == 2


async def test_the_default_wait_ends_early_when_stopping() -> None:
    stopping = asyncio.Event()
    asyncio.get_running_loop().call_later(0.05, stopping.set)
    with pytest.raises(SinkStopping):
        await asyncio.wait_for(
            retry_transient(
                Flaky(failures=100),
                is_transient=transient,
                stopping=stopping,
                what="write",
                backoff=Backoff(initial_s=60, max_s=60),
            ),
            timeout=5,
        )
