"""Failures of a job attempt, as stable codes and messages safe to show a user."""

from __future__ import annotations

import openai

from schemas.events import ErrorInfo


class StreamBroken(Exception):
    """The stream ended without a finish_reason: cut off, never a completed answer."""


def classify_failure(exc: BaseException, mid_stream: bool = False) -> ErrorInfo:
    """Map an exception to a code and a message with no internals (no URLs, keys, traces).

    A connection lost after tokens arrived is a broken stream, not an unreachable provider.
    """
    if isinstance(exc, StreamBroken) or (mid_stream and isinstance(exc, openai.APIError)):
        return ErrorInfo(code="stream_broken", message="the model's stream ended before finishing")
    if isinstance(exc, openai.RateLimitError):
        return ErrorInfo(code="llm_rate_limited", message="the model provider is rate limiting")
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return ErrorInfo(code="llm_auth", message="the model provider refused the credentials")
    if isinstance(exc, openai.NotFoundError):
        return ErrorInfo(code="llm_not_found", message="the model was not found at the provider")
    if isinstance(exc, openai.BadRequestError):
        return ErrorInfo(code="llm_bad_request", message="the model provider rejected the request")
    if isinstance(exc, openai.InternalServerError):
        return ErrorInfo(code="llm_server_error", message="the model provider had a server error")
    if isinstance(exc, openai.APITimeoutError):
        return ErrorInfo(code="llm_timeout", message="the model provider timed out")
    if isinstance(exc, openai.APIConnectionError):
        return ErrorInfo(code="llm_unreachable", message="the model provider could not be reached")
    if isinstance(exc, openai.APIStatusError):
        return ErrorInfo(code="llm_error", message=f"the model provider answered {exc.status_code}")
    return ErrorInfo(code="internal", message="the worker hit an internal error")
