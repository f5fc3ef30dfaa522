"""Client-side provider limits per model: requests and tokens per minute, and the provider's word.

Each configured model gets two aiolimiter leaky buckets (requests/min, tokens/min). A job
takes one request and its estimated tokens (prompt plus ``max_tokens``) before it asks
for a running slot; when a bucket is empty the job waits, so the worker slows its
intake instead of sending requests the provider would refuse.

The provider also says how close we are: ``x-ratelimit-remaining-requests`` /
``-tokens`` and ``x-ratelimit-reset-requests`` / ``-tokens`` on every response. They
are read from an httpx response hook on the openai client's HTTP client (the hook sees
the headers of streaming responses before their body), and when what remains is at or
near zero every job of that model waits until the reset time the provider gave.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import httpx
from aiolimiter import AsyncLimiter

from schemas.events import JobRequested

log = logging.getLogger(__name__)

# "near a limit": at most this share of the provider's limit is left (and at least 1)
NEAR_LIMIT_SHARE = 0.02
MAX_PAUSE_S = 120.0  # a reset further away than this is not believed

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_reset(value: str | None) -> float | None:
    """OpenAI's reset durations ("1s", "6m0s", "20ms", "0.5s") or plain seconds, in seconds."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    parts = _DURATION.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        return None
    return sum(float(n) * _UNIT_S[u] for n, u in parts)


def _int(value: str | None) -> int | None:
    try:
        return int(float(value)) if value is not None else None
    except ValueError:
        return None


def estimated_tokens(job: JobRequested) -> int:
    """What a job may cost against a tokens/min limit: its prompt (about 4 chars a token)
    and every token it may generate."""
    return len(job.prompt) // 4 + 1 + job.config.max_tokens


@dataclass
class _Buckets:
    requests: AsyncLimiter | None
    tokens: AsyncLimiter | None


class ModelRateLimits:
    def __init__(
        self,
        limits: Mapping[str, tuple[int, int]] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._buckets = {
            model: _Buckets(
                AsyncLimiter(rpm, 60) if rpm > 0 else None,
                AsyncLimiter(tpm, 60) if tpm > 0 else None,
            )
            for model, (rpm, tpm) in (limits or {}).items()
        }
        self._paused_until: dict[str, float] = {}
        self._clock = clock
        self._sleep = sleep

    def paused_for(self, model: str) -> float:
        """Seconds until the provider said this model's limit resets (0 when not paused)."""
        return max(0.0, self._paused_until.get(model, 0.0) - self._clock())

    async def admit(self, model: str, tokens: int) -> None:
        """Wait until the model may take one more request of about ``tokens`` tokens."""
        while (wait := self.paused_for(model)) > 0:
            await self._sleep(wait)
        buckets = self._buckets.get(model)
        if buckets is None:
            return
        if buckets.requests is not None:
            await buckets.requests.acquire(1)
        if buckets.tokens is not None:
            # A job larger than a minute's budget takes the whole budget, not forever.
            await buckets.tokens.acquire(min(tokens, buckets.tokens.max_rate))

    def observe(self, model: str, headers: Mapping[str, str]) -> None:
        """Take the provider's remaining/reset headers into account for later jobs."""
        for kind in ("requests", "tokens"):
            remaining = _int(headers.get(f"x-ratelimit-remaining-{kind}"))
            if remaining is None:
                continue
            limit = _int(headers.get(f"x-ratelimit-limit-{kind}"))
            near = max(1, int((limit or 0) * NEAR_LIMIT_SHARE))
            reset = parse_reset(headers.get(f"x-ratelimit-reset-{kind}"))
            if remaining <= near and reset:
                until = self._clock() + min(reset, MAX_PAUSE_S)
                if until > self._paused_until.get(model, 0.0):
                    log.info("model %s near its %s limit: waiting %.2fs", model, kind, reset)
                    self._paused_until[model] = until

    async def on_response(self, response: httpx.Response) -> None:
        """httpx response hook: feed the provider's rate-limit headers to ``observe``."""
        if not any(k.startswith("x-ratelimit-") for k in response.headers):
            return
        model = _request_model(response.request)
        if model is not None:
            self.observe(model, response.headers)


def _request_model(request: httpx.Request) -> str | None:
    try:
        body = json.loads(request.content)
    except (ValueError, httpx.RequestNotRead):
        return None
    model = body.get("model") if isinstance(body, dict) else None
    return model if isinstance(model, str) else None
