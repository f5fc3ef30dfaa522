"""Retry a durable write through an outage: transient errors only, until it succeeds or we stop.

A sink never skips a batch it could not write: it keeps retrying, and when asked to
stop it gives up without committing, so the messages are consumed again after a restart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_exponential

log = logging.getLogger(__name__)

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]


class SinkStopping(Exception):
    """Stop was requested while a write kept failing; nothing was committed."""


@dataclass(frozen=True)
class Backoff:
    initial_s: float = 0.2
    max_s: float = 30.0


async def retry_transient(
    operation: Callable[[], Awaitable[T]],
    *,
    is_transient: Callable[[BaseException], bool],
    stopping: asyncio.Event,
    what: str,
    backoff: Backoff = Backoff(),
    sleep: Sleep | None = None,
) -> T:
    """Run ``operation``; on a transient error wait (growing to ``backoff.max_s``) and rerun.

    Non-transient errors propagate at once. A stop request ends the waiting early and
    raises ``SinkStopping``.
    """

    async def pause(seconds: float) -> None:
        with suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), seconds)

    def report(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning("%s failed (attempt %d), retrying: %r", what, state.attempt_number, exc)

    async def attempt() -> T:
        # An explicit coroutine function: tenacity would not await a lambda's coroutine.
        return await operation()

    retrying = AsyncRetrying(
        retry=retry_if_exception(is_transient),
        wait=wait_exponential(multiplier=backoff.initial_s, max=backoff.max_s),
        stop=lambda _state: stopping.is_set(),
        sleep=sleep or pause,
        before_sleep=report,
        reraise=True,
    )
    try:
        return await retrying(attempt)
    except Exception as exc:
        if stopping.is_set() and is_transient(exc):
            raise SinkStopping(f"{what} abandoned at shutdown") from exc
        raise
