"""WS /api/openai-streaming/{job_id}/ws: a job's tokens and lifecycle, live."""

from __future__ import annotations

import logging

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from api.auth import authenticate
from api.deps import Services
from api.errors import ApiError
from api.feed import job_feed
from api.metrics import TOKENS_RELAYED, counts_open_socket
from api.views import load_view

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/openai-streaming", tags=["stream"])

# WebSocket close codes in the application range (4000-4999), after HTTP's.
CLOSE_UNAUTHORIZED = 4401
CLOSE_JOB_NOT_FOUND = 4404


def socket_token(websocket: WebSocket) -> str | None:
    """The bearer token from the Authorization header, or `?token=` for browsers."""
    header = websocket.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value:
        return value.strip()
    return websocket.query_params.get("token")


@router.websocket("/{job_id}/ws")
@counts_open_socket
async def job_stream(websocket: WebSocket, job_id: str) -> None:
    svc: Services = websocket.app.state.services
    await websocket.accept()
    try:
        caller = await authenticate(socket_token(websocket), svc.tokens)
    except ApiError as exc:
        await websocket.close(code=CLOSE_UNAUTHORIZED, reason=exc.code)
        return
    try:
        await load_view(job_id, caller, svc.jobs, svc.settings.kafka_bootstrap, svc.partitions)
    except ApiError as exc:
        await websocket.close(code=CLOSE_JOB_NOT_FOUND, reason=exc.code)
        return
    try:
        async for item in job_feed(job_id, svc.settings.kafka_bootstrap, svc.partitions):
            await websocket.send_json({"event": item.event, "data": item.data})
            if item.event == "token.streamed":
                TOKENS_RELAYED.inc()
    except WebSocketDisconnect:
        return
    await websocket.close(code=1000)
