"""Integration tests run against the local stack that `make up` starts (api, worker, sinks,
Kafka, Postgres, ClickHouse, the LLM simulator). Each test makes its own jobs."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import websockets

from sluice.settings import get_settings

START = "/api/openai-streaming/start"
TERMINAL_FEED_EVENTS = {"streaming.completed", "analysis.failed", "job.cancelled"}


@pytest.fixture(scope="session")
def api_url() -> str:
    url = get_settings().api_url
    try:
        httpx.get(f"{url}/healthz", timeout=5).raise_for_status()
    except httpx.HTTPError as exc:
        pytest.fail(f"the api is not running at {url} ({exc}); start the stack with `make up`")
    return url


@pytest.fixture
async def client(api_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as c:
        yield c


async def submit(client: httpx.AsyncClient, prompt: str, **fields: Any) -> str:
    resp = await client.post(START, json={"prompt": prompt, **fields})
    assert resp.status_code == 202, resp.text
    job_id: str = resp.json()["data"]["job_id"]
    return job_id


async def feed(api_url: str, job_id: str, limit_s: float = 60) -> list[dict[str, Any]]:
    """Every message the job's WebSocket sends, up to and including its terminal event."""
    ws_url = api_url.replace("http", "ws", 1) + f"/api/openai-streaming/{job_id}/ws"
    messages: list[dict[str, Any]] = []
    async with asyncio.timeout(limit_s), websockets.connect(ws_url) as ws:
        async for raw in ws:
            message = json.loads(raw)
            messages.append(message)
            if message["event"] in TERMINAL_FEED_EVENTS:
                break
    return messages


def tokens_of(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m["data"] for m in messages if m["event"] == "token.streamed"]


async def wait_for(
    client: httpx.AsyncClient, path: str, ready: Any, limit_s: float = 60
) -> dict[str, Any]:
    """Poll an endpoint until `ready(data)`: sinks write shortly after a stream ends."""
    deadline = time.monotonic() + limit_s
    while True:
        resp = await client.get(path)
        data = resp.json().get("data") if resp.status_code == 200 else None
        if data is not None and ready(data):
            result: dict[str, Any] = data
            return result
        assert time.monotonic() < deadline, f"{path} never became ready: {resp.text}"
        await asyncio.sleep(0.2)
