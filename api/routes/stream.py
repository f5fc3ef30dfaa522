"""A job's feed, live: WS /{job_id}/ws and SSE /{job_id}/events; and a user's channel.

Both job feeds resume: `?starting_after=N` (WebSocket, SSE) or `Last-Event-ID` (SSE)
gives every token after N exactly once, then the live ones. A client too slow to keep
up is closed with the number to resume after; it never slows anyone else.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any

import psycopg
import psycopg_pool
from fastapi import APIRouter, Header, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse
from starlette.requests import HTTPConnection

from api.auth import Principal, authenticate
from api.deps import Services
from api.errors import ApiError
from api.feed import TERMINAL_FEED_NAMES, FeedItem, job_feed
from api.hub import SubscriberOverflow
from api.metrics import TOKENS_RELAYED, counts_open_socket
from api.views import load_view
from schemas.api import ErrorEnvelope
from schemas.events import JobEvent
from sluice.joblog import read_job_log
from sluice.replay import ReplayError, chosen_attempt

log = logging.getLogger(__name__)
router = APIRouter(
    prefix="/api/openai-streaming",
    tags=["stream"],
    responses={code: {"model": ErrorEnvelope} for code in (401, 404, 422, 503)},
)

# WebSocket close codes in the application range (4000-4999), after HTTP's.
CLOSE_UNAUTHORIZED = 4401
CLOSE_JOB_NOT_FOUND = 4404
CLOSE_SLOW_CONSUMER = 4408
CLOSE_TRY_AGAIN_LATER = 1013  # RFC 6455: the server is overloaded or a dependency is down
DATABASE_DOWN = (psycopg.OperationalError, psycopg_pool.PoolTimeout)

LIFECYCLE_NAMES = {
    "job.queued": "job.queued",
    "job.started": "job.started",
    "job.retrying": "job.retrying",
    **TERMINAL_FEED_NAMES,
}


def connection_token(conn: HTTPConnection) -> str | None:
    """The bearer token from the Authorization header, or `?token=` for browsers."""
    header = conn.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value:
        return value.strip()
    return conn.query_params.get("token")


def services_of(conn: HTTPConnection) -> Services:
    svc: Services = conn.app.state.services
    return svc


async def authorized_job(conn: HTTPConnection, job_id: str) -> Principal:
    """The caller, if they may watch this job; ApiError (401 or 404) otherwise."""
    svc = services_of(conn)
    caller = await authenticate(connection_token(conn), svc.tokens)
    await load_view(job_id, caller, svc.jobs, svc.settings.kafka_bootstrap, svc.partitions)
    return caller


def feed_of(
    conn: HTTPConnection, job_id: str, starting_after: int | None
) -> AsyncIterator[FeedItem]:
    svc = services_of(conn)
    return job_feed(
        job_id,
        svc.settings.kafka_bootstrap,
        svc.partitions,
        hub=svc.hub,
        starting_after=starting_after,
    )


@router.websocket("/{job_id}/ws")
@counts_open_socket
async def job_socket(websocket: WebSocket, job_id: str, starting_after: int | None = None) -> None:
    await websocket.accept()
    try:
        await authorized_job(websocket, job_id)
    except ApiError as exc:
        code = CLOSE_UNAUTHORIZED if exc.status == 401 else CLOSE_JOB_NOT_FOUND
        await websocket.close(code=code, reason=exc.code)
        return
    except DATABASE_DOWN:
        await websocket.close(code=CLOSE_TRY_AGAIN_LATER, reason="database_unavailable")
        return
    last = -1 if starting_after is None else starting_after
    send_timeout_s = services_of(websocket).settings.feed_send_timeout_s
    try:
        async for item in feed_of(websocket, job_id, starting_after):
            message = json.dumps({"event": item.event, "data": item.data})
            await asyncio.wait_for(websocket.send_text(message), send_timeout_s)
            if item.event == "token.streamed":
                TOKENS_RELAYED.inc()
            last = item.sequence_number
    except WebSocketDisconnect:
        return
    except TimeoutError:
        log.info("closing a slow subscriber of %s after token %d", job_id, last)
        await _close_quietly(websocket, CLOSE_SLOW_CONSUMER, f"slow_consumer;resume_after={last}")
        return
    await websocket.close(code=1000)


async def _close_quietly(websocket: WebSocket, code: int, reason: str) -> None:
    # The peer may be gone or stuck: its connection is dropped either way.
    with contextlib.suppress(TimeoutError, RuntimeError, WebSocketDisconnect):
        await asyncio.wait_for(websocket.close(code=code, reason=reason), 2.0)


def sse_event(item: FeedItem) -> bytes:
    body = json.dumps(item.data, separators=(",", ":"))
    return f"id: {item.sequence_number}\nevent: {item.event}\ndata: {body}\n\n".encode()


@router.get(
    "/{job_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "the job's feed"}},
    summary="The job's feed as Server-Sent Events",
)
async def job_events(
    request: Request,
    job_id: str,
    starting_after: Annotated[int | None, Query(ge=-1)] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """The same feed as the WebSocket, for clients that can't hold one. Resumes after
    `Last-Event-ID` (what EventSource sends on reconnect) or `starting_after`."""
    await authorized_job(request, job_id)
    cursor = starting_after
    if last_event_id is not None and last_event_id.lstrip("-").isdigit():
        cursor = int(last_event_id)

    async def stream() -> AsyncIterator[bytes]:
        # A slow reader just pauses this generator: the feed reads the log at its pace.
        async for item in feed_of(request, job_id, cursor):
            yield sse_event(item)

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)


@router.get(
    "/{job_id}/replay",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "the replay"}},
    summary="Replay a job's tokens from the log, with their original timing",
)
async def job_replay(
    request: Request,
    job_id: str,
    speed: Annotated[float, Query(gt=0, le=1000, description="1 = real time")] = 1.0,
    attempt: Annotated[int | None, Query(ge=1)] = None,
) -> StreamingResponse:
    """For debugging (and the dashboard): the tokens as the worker sent them, gaps and all."""
    await authorized_job(request, job_id)
    bootstrap = services_of(request).settings.kafka_bootstrap
    log_ = await asyncio.to_thread(read_job_log, bootstrap, job_id)
    try:
        chosen = chosen_attempt(log_, attempt)
    except ReplayError as exc:
        raise ApiError(404, "replay_not_found", str(exc)) from None
    tokens = log_.tokens_of(chosen)

    async def stream() -> AsyncIterator[bytes]:
        for number, token in enumerate(tokens):
            if number:
                await asyncio.sleep(max(0.0, token.ts - tokens[number - 1].ts) / speed)
            data = {
                "token": token.text,
                "seq": token.seq,
                "attempt": token.attempt,
                "ts": token.ts,
                "sequence_number": number,
            }
            yield sse_event(FeedItem("token.replayed", data))
        done = {"attempt": chosen, "tokens": len(tokens), "sequence_number": len(tokens) - 1}
        yield sse_event(FeedItem("replay.completed", done))

    return StreamingResponse(stream(), media_type="text/event-stream")


def lifecycle_message(event: JobEvent, number: int) -> dict[str, Any]:
    data: dict[str, Any] = {
        "job_id": event.job_id,
        "job_type": event.job_type.value,
        "priority": event.priority.value,
        "attempt": getattr(event, "attempt", 0),
        "sequence_number": number,
    }
    if (error := getattr(event, "error", None)) is not None:
        data["error"] = error.model_dump()
    return {"event": LIFECYCLE_NAMES.get(event.type, event.type), "data": data}


@router.websocket("/users/me/ws")
@counts_open_socket
async def user_socket(websocket: WebSocket, everyone: bool = False) -> None:
    """Lifecycle of all the caller's jobs as they happen (admins: `?everyone=true`)."""
    svc = services_of(websocket)
    await websocket.accept()
    try:
        caller = await authenticate(connection_token(websocket), svc.tokens)
    except ApiError as exc:
        await websocket.close(code=CLOSE_UNAUTHORIZED, reason=exc.code)
        return
    scope = None if everyone and caller.is_admin else caller.user_id
    number = 0
    try:
        with svc.hub.user_subscription(scope) as sub:
            while True:
                event = await sub.next(timeout_s=30.0)
                if event is None or not hasattr(event, "user_id"):
                    continue
                message = lifecycle_message(event, number)  # type: ignore[arg-type]
                await asyncio.wait_for(
                    websocket.send_json(message), svc.settings.feed_send_timeout_s
                )
                number += 1
    except WebSocketDisconnect:
        return
    except (SubscriberOverflow, TimeoutError):
        await _close_quietly(websocket, CLOSE_SLOW_CONSUMER, "slow_consumer")
