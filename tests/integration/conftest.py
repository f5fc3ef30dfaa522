"""Integration tests run against the local stack that `make up` starts (api, worker, sinks,
Kafka, Postgres, ClickHouse, the LLM simulator). Each test makes its own jobs."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import websockets

from sluice import accounts
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


def mint_token(user: str, admin: bool = False) -> str:
    """A fresh user (unique per test run) and a token for it, straight in Postgres."""
    with psycopg.connect(get_settings().resolved_database_url, autocommit=True) as conn:
        accounts.ensure_user(conn, user)
        return accounts.create_token(conn, user, name="tests", admin=admin).token


def user_name(role: str) -> str:
    return f"{role}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def alice_token() -> str:
    return mint_token(user_name("alice"))


@pytest.fixture(scope="session")
def bob_token() -> str:
    return mint_token(user_name("bob"))


@pytest.fixture(scope="session")
def admin_token() -> str:
    return mint_token(user_name("admin"), admin=True)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def client(api_url: str, alice_token: str) -> AsyncIterator[httpx.AsyncClient]:
    """Alice's client: most tests act as one ordinary user."""
    async with httpx.AsyncClient(base_url=api_url, timeout=30, headers=bearer(alice_token)) as c:
        yield c


async def submit(client: httpx.AsyncClient, prompt: str, **fields: Any) -> str:
    resp = await client.post(START, json={"prompt": prompt, **fields})
    assert resp.status_code == 202, resp.text
    job_id: str = resp.json()["data"]["job_id"]
    return job_id


def ws_url(api_url: str, job_id: str) -> str:
    return api_url.replace("http", "ws", 1) + f"/api/openai-streaming/{job_id}/ws"


async def feed(api_url: str, job_id: str, token: str, limit_s: float = 60) -> list[dict[str, Any]]:
    """Every message the job's WebSocket sends, up to and including its terminal event."""
    messages: list[dict[str, Any]] = []
    connect = websockets.connect(ws_url(api_url, job_id), additional_headers=bearer(token))
    async with asyncio.timeout(limit_s), connect as ws:
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


def finished_job_feed(token: str, prompt: str) -> tuple[str, list[dict[str, Any]]]:
    """From synchronous tests: submit a job and watch it to its end."""

    async def run() -> tuple[str, list[dict[str, Any]]]:
        url = get_settings().api_url
        async with httpx.AsyncClient(base_url=url, timeout=30, headers=bearer(token)) as c:
            job_id = await submit(c, prompt)
            return job_id, await feed(url, job_id, token)

    return asyncio.run(run())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ApiProcess:
    """An extra api replica on the same Kafka and Postgres, for tests of several apis."""

    url: str
    port: int
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ApiProcess:
        log = self.log_path.open("a")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sluice.cli", "api"], env=self.env, stdout=log, stderr=log
        )
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            assert time.monotonic() < deadline, self.log_path.read_text()[-3000:]
            time.sleep(0.2)

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


def spawn_api(log_dir: Path, **settings: str) -> ApiProcess:
    port = free_port()
    env = {**os.environ, "SLUICE_API_PORT": str(port), **settings}
    return ApiProcess(f"http://127.0.0.1:{port}", port, env, log_dir / f"api-{port}.log").start()
