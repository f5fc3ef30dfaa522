"""The simulator's HTTP app: OpenAI's ``/v1/chat/completions`` and ``/v1/models``.

Per-request headers override the server's timing and inject faults:
``x-sluice-tokens-per-second``, ``x-sluice-ttft-ms`` and ``x-sluice-fault``
(see ``sluice.fakellm.faults``).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import Receive, Scope, Send

from sluice.fakellm.faults import FAULT_HEADER, ConnectionDropped, Fault, parse_fault
from sluice.fakellm.pacing import Pace, paced_tokens
from sluice.fakellm.protocol import ChatCompletionRequest, InvalidRequest, parse_chat_request
from sluice.fakellm.text import answer_tokens, count_prompt_tokens
from sluice.fakellm.wire import (
    SSE_DONE,
    CompletionHeader,
    FinishReason,
    Usage,
    completion,
    content_chunk,
    error_body,
    finish_chunk,
    role_chunk,
    sse_event,
    usage_chunk,
)

MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-4.1", "gpt-4.1-mini", "o4-mini")
_MODELS_CREATED = 1_715_367_049  # a fixed date keeps /v1/models byte-stable

TOKENS_PER_SECOND_HEADER = "x-sluice-tokens-per-second"
TTFT_MS_HEADER = "x-sluice-ttft-ms"
# A longer natural answer than usual (in tokens), for tests that need volume.
ANSWER_TOKENS_HEADER = "x-sluice-answer-tokens"

# (message, type, code) as api.openai.com words them.
_FAULT_ERRORS: dict[int, tuple[str, str, str | None]] = {
    429: ("Rate limit reached for requests (simulated).", "requests", "rate_limit_exceeded"),
    500: (
        "The server had an error while processing your request. Sorry about that!",
        "server_error",
        None,
    ),
    502: ("Bad gateway.", "server_error", None),
    503: ("The server is overloaded or not ready yet.", "server_error", None),
}


@dataclass(frozen=True)
class Answer:
    """What the simulated model says to one request, before any timing."""

    tokens: list[str]
    finish_reason: FinishReason
    usage: Usage


def create_app(tokens_per_second: float, ttft_ms: int) -> FastAPI:
    """The simulator as an ASGI app, with its default timing.

    ``tokens_per_second <= 0`` sends tokens as fast as possible.
    """
    default_pace = Pace(tokens_per_second, max(0, ttft_ms) / 1000)
    app = FastAPI(title="sluice LLM simulator")

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        started_at = asyncio.get_running_loop().time()
        try:
            body = parse_chat_request(await request.body())
            pace = pace_for(request.headers, default_pace)
            fault = parse_fault(request.headers.get(FAULT_HEADER))
        except InvalidRequest as exc:
            return invalid_request_response(exc)
        if fault.status is not None:
            return fault_response(fault)
        answer = compose_answer(body, _answer_length(request.headers))
        if body.stream:
            return SSEResponse(stream_events(body, answer, pace, fault, started_at))
        return await complete(body, answer, pace, fault, started_at)

    @app.get("/v1/models")
    async def list_models() -> JSONResponse:
        return JSONResponse({"object": "list", "data": [_model_card(m) for m in MODELS]})

    @app.get("/v1/models/{model}")
    async def retrieve_model(model: str) -> JSONResponse:
        if model not in MODELS:
            message = f"The model '{model}' does not exist"
            body = error_body(message, "invalid_request_error", "model", "model_not_found")
            return JSONResponse(body, status_code=404)
        return JSONResponse(_model_card(model))

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        # Unknown routes and methods answer in OpenAI's error shape too.
        body = error_body(str(exc.detail), "invalid_request_error", None, None)
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    return app


def serve(host: str, port: int, tokens_per_second: float, ttft_ms: int) -> None:
    """Run the simulator under uvicorn until interrupted (blocking)."""
    uvicorn.run(create_app(tokens_per_second, ttft_ms), host=host, port=port)


def _answer_length(headers: Headers) -> int | None:
    length = _number_header(headers, ANSWER_TOKENS_HEADER)
    return None if length is None or length < 1 else int(length)


def compose_answer(request: ChatCompletionRequest, length: int | None = None) -> Answer:
    """The request's deterministic answer, cut at its token limit."""
    natural = answer_tokens(request.messages, request.seed, request.model, length)
    limit = request.token_limit
    tokens = natural if limit is None else natural[:limit]
    finish: FinishReason = "length" if len(tokens) < len(natural) else "stop"
    return Answer(tokens, finish, Usage(count_prompt_tokens(request.messages), len(tokens)))


def pace_for(headers: Headers, default: Pace) -> Pace:
    """The server's pace, with any per-request timing headers applied."""
    rate = _number_header(headers, TOKENS_PER_SECOND_HEADER)
    ttft_ms = _number_header(headers, TTFT_MS_HEADER)
    if ttft_ms is not None and ttft_ms < 0:
        raise InvalidRequest(f"'{TTFT_MS_HEADER}' must not be negative.", TTFT_MS_HEADER)
    return Pace(
        default.tokens_per_second if rate is None else rate,
        default.ttft_s if ttft_ms is None else ttft_ms / 1000,
    )


def _number_header(headers: Headers, name: str) -> float | None:
    raw = headers.get(name)
    if raw is None:
        return None
    with contextlib.suppress(ValueError):
        if math.isfinite(value := float(raw)):
            return value
    raise InvalidRequest(f"'{name}' must be a number, got {raw!r}.", name)


async def stream_events(
    request: ChatCompletionRequest, answer: Answer, pace: Pace, fault: Fault, started_at: float
) -> AsyncIterator[bytes]:
    """The SSE byte stream of one answer, each token sent when its schedule says."""
    header = CompletionHeader(model=request.model)
    with_usage = request.include_usage
    sent_role = False
    async for token in paced_tokens(answer.tokens, pace, fault, started_at):
        if not sent_role:  # like OpenAI, the role chunk arrives with the first token
            yield sse_event(role_chunk(header, with_usage))
            sent_role = True
        yield sse_event(content_chunk(header, token, with_usage))
    yield sse_event(finish_chunk(header, answer.finish_reason, with_usage))
    if with_usage:
        yield sse_event(usage_chunk(header, answer.usage))
    yield SSE_DONE


async def complete(
    request: ChatCompletionRequest, answer: Answer, pace: Pace, fault: Fault, started_at: float
) -> Response:
    """A non-streamed answer, sent once the whole answer would have been generated."""
    try:
        async for _ in paced_tokens(answer.tokens, pace, fault, started_at):
            pass
    except ConnectionDropped:
        return DroppedConnection()
    header = CompletionHeader(model=request.model)
    content = "".join(answer.tokens)
    return JSONResponse(completion(header, content, answer.finish_reason, answer.usage))


def invalid_request_response(exc: InvalidRequest) -> JSONResponse:
    """400 with OpenAI's ``invalid_request_error`` body."""
    body = error_body(exc.message, "invalid_request_error", exc.param, exc.code)
    return JSONResponse(body, status_code=400)


def fault_response(fault: Fault) -> JSONResponse:
    """The error status a fault asks for, with Retry-After when it has one."""
    assert fault.status is not None
    message, error_type, code = _FAULT_ERRORS[fault.status]
    headers = {} if fault.retry_after_s is None else {"retry-after": str(fault.retry_after_s)}
    body = error_body(message, error_type, None, code)
    return JSONResponse(body, status_code=fault.status, headers=headers)


class SSEResponse(StreamingResponse):
    """An event stream that can also end as a dropped connection.

    On ``ConnectionDropped`` the body is left unterminated; the server then closes
    the socket, so the client sees a connection lost mid-stream (uvicorn logs it).
    """

    media_type = "text/event-stream"

    async def stream_response(self, send: Send) -> None:
        """Send the stream; stop without the terminating chunk when dropped."""
        with contextlib.suppress(ConnectionDropped):
            await super().stream_response(send)


class DroppedConnection(Response):
    """Response headers and no body, then the server closes the socket.

    No content-length is sent, so the client waits for a body that never comes
    and sees the connection lost rather than an empty answer.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Start the response and abandon it."""
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})


def _model_card(model: str) -> dict[str, object]:
    return {"id": model, "object": "model", "created": _MODELS_CREATED, "owned_by": "system"}
