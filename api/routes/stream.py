"""WS /api/openai-streaming/{job_id}/ws: a job's tokens and lifecycle, live."""

from __future__ import annotations

import logging

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from api.deps import Services
from api.feed import job_feed
from sluice.jobids import is_job_id

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/openai-streaming", tags=["stream"])

# WebSocket close codes in the application range (4000-4999).
CLOSE_JOB_NOT_FOUND = 4404


@router.websocket("/{job_id}/ws")
async def job_stream(websocket: WebSocket, job_id: str) -> None:
    services: Services = websocket.app.state.services
    await websocket.accept()
    if not is_job_id(job_id):
        await websocket.close(code=CLOSE_JOB_NOT_FOUND, reason="job_not_found")
        return
    try:
        async for item in job_feed(job_id, services.settings.kafka_bootstrap, services.partitions):
            await websocket.send_json({"event": item.event, "data": item.data})
    except WebSocketDisconnect:
        return
    await websocket.close(code=1000)
