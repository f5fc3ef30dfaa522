"""Failures get a stable code and a verdict: try again (and when) or fail at once."""

from __future__ import annotations

import httpx
import openai
import pytest

from processors.errors import (
    ContentFiltered,
    StreamBroken,
    StreamIdle,
    assess_failure,
    retry_after_seconds,
)

REQUEST = httpx.Request("POST", "http://llm.example/v1/chat/completions")


def status_error(status: int, headers: dict[str, str] | None = None) -> openai.APIStatusError:
    response = httpx.Response(status, headers=headers or {}, request=REQUEST)
    return openai.OpenAI(api_key="k", base_url="http://llm.example/v1")._make_status_error(
        "boom", body=None, response=response
    )


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (status_error(429), "llm_rate_limited"),
        (status_error(500), "llm_server_error"),
        (status_error(502), "llm_server_error"),
        (status_error(503), "llm_server_error"),
        (openai.APITimeoutError(request=REQUEST), "llm_timeout"),
        (openai.APIConnectionError(request=REQUEST), "llm_unreachable"),
        (StreamBroken(), "stream_broken"),
        (StreamIdle(), "stream_idle"),
    ],
)
def test_transient_failures_are_retried_and_count_against_the_provider(
    exc: BaseException, code: str
) -> None:
    failure = assess_failure(exc)
    assert failure.error.code == code
    assert failure.retryable and failure.provider_fault


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (status_error(400), "llm_bad_request"),
        (status_error(401), "llm_auth"),
        (status_error(403), "llm_auth"),
        (status_error(404), "llm_not_found"),
        (ContentFiltered(), "llm_content_filter"),
    ],
)
def test_the_request_itself_being_wrong_fails_at_once(exc: BaseException, code: str) -> None:
    failure = assess_failure(exc)
    assert failure.error.code == code
    assert not failure.retryable and not failure.provider_fault


def test_a_connection_lost_after_tokens_is_a_broken_stream() -> None:
    failure = assess_failure(openai.APIConnectionError(request=REQUEST), mid_stream=True)
    assert failure.error.code == "stream_broken" and failure.retryable


def test_messages_never_carry_the_provider_url() -> None:
    for exc in (status_error(500), openai.APIConnectionError(request=REQUEST)):
        assert "llm.example" not in assess_failure(exc).error.message


def test_retry_after_in_seconds_milliseconds_or_as_a_date() -> None:
    assert retry_after_seconds(status_error(429, {"retry-after": "7"})) == 7.0
    assert retry_after_seconds(status_error(429, {"retry-after-ms": "1500"})) == 1.5
    date = "Wed, 21 Oct 2015 07:28:00 GMT"
    assert retry_after_seconds(status_error(429, {"retry-after": date}), now=1445412470.0) == 10.0
    assert retry_after_seconds(status_error(429, {"retry-after": "soon"})) is None
    assert retry_after_seconds(status_error(429)) is None
    assert assess_failure(status_error(429, {"retry-after": "3"})).retry_after_s == 3.0
