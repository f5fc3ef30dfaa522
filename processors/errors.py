"""Failures of a job attempt: stable codes safe to show a user, and whether to try again."""

from __future__ import annotations

import email.utils
import math
import time
from dataclasses import dataclass

import openai

from schemas.events import ErrorInfo


class StreamBroken(Exception):
    """The stream ended without a finish_reason: cut off, never a completed answer."""


class StreamIdle(Exception):
    """No chunk arrived for longer than the idle timeout."""


class ContentFiltered(Exception):
    """The provider stopped the answer with ``finish_reason: content_filter``."""


class JobTimedOut(Exception):
    """The job ran out of its time budget (``job_timeout_s`` since its first start)."""


@dataclass(frozen=True)
class Failure:
    """What went wrong with one attempt and what to do about it."""

    error: ErrorInfo
    retryable: bool
    # Whether it says something about the provider's health (feeds the circuit breaker).
    provider_fault: bool
    retry_after_s: float | None = None


_NOT_RETRYABLE_STATUSES = frozenset({400, 401, 403, 404, 422})


def classify_failure(exc: BaseException, mid_stream: bool = False) -> ErrorInfo:
    """Map an exception to a code and a message with no internals (no URLs, keys, traces)."""
    return assess_failure(exc, mid_stream).error


def assess_failure(exc: BaseException, mid_stream: bool = False) -> Failure:
    """Classify a failure: its code, whether another attempt may succeed, and Retry-After.

    Retryable: 429, 5xx, connect and read timeouts, a stream that broke or went idle.
    Not retryable: the request itself is wrong (400, 401, 403, 404) or was filtered.
    A connection lost after tokens arrived is a broken stream, not an unreachable provider.
    """
    if isinstance(exc, StreamBroken) or (mid_stream and isinstance(exc, openai.APIError)):
        return _retry("stream_broken", "the model's stream ended before finishing")
    if isinstance(exc, StreamIdle):
        return _retry("stream_idle", "the model's stream stalled")
    if isinstance(exc, ContentFiltered):
        return _final("llm_content_filter", "the model provider filtered the answer")
    if isinstance(exc, JobTimedOut):
        return _failure("job_timeout", "the job ran out of time", retryable=False)
    if isinstance(exc, openai.APIStatusError):
        return _status_failure(exc)
    if isinstance(exc, openai.APITimeoutError):
        return _retry("llm_timeout", "the model provider timed out")
    if isinstance(exc, openai.APIConnectionError):
        return _retry("llm_unreachable", "the model provider could not be reached")
    # A bug or an unexpected library error: another attempt may well succeed.
    return _failure("internal", "the worker hit an internal error", retryable=True)


def _status_failure(exc: openai.APIStatusError) -> Failure:
    status = exc.status_code
    retry_after = retry_after_seconds(exc)
    if isinstance(exc, openai.RateLimitError):
        return _retry("llm_rate_limited", "the model provider is rate limiting", retry_after)
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return _final("llm_auth", "the model provider refused the credentials")
    if isinstance(exc, openai.NotFoundError):
        return _final("llm_not_found", "the model was not found at the provider")
    if isinstance(exc, openai.BadRequestError):
        return _final("llm_bad_request", "the model provider rejected the request")
    if status >= 500:
        return _retry("llm_server_error", "the model provider had a server error", retry_after)
    message = f"the model provider answered {status}"
    if status in _NOT_RETRYABLE_STATUSES:
        return _final("llm_error", message)
    return _retry("llm_error", message, retry_after)


def _failure(code: str, message: str, *, retryable: bool) -> Failure:
    return Failure(ErrorInfo(code=code, message=message), retryable, provider_fault=False)


def _retry(code: str, message: str, retry_after_s: float | None = None) -> Failure:
    return Failure(ErrorInfo(code=code, message=message), True, True, retry_after_s)


def _final(code: str, message: str) -> Failure:
    # The provider answered, so it is healthy: not a fault for the breaker.
    return Failure(ErrorInfo(code=code, message=message), retryable=False, provider_fault=False)


def retry_after_seconds(exc: openai.APIStatusError, now: float | None = None) -> float | None:
    """The response's Retry-After (seconds or an HTTP date), or None when absent or unreadable."""
    headers = exc.response.headers
    if (millis := _seconds(headers.get("retry-after-ms"))) is not None:
        return millis / 1000
    raw = headers.get("retry-after")
    if raw is None:
        return None
    if (seconds := _seconds(raw)) is not None:
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _seconds(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None
