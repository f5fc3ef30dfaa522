"""Processes dying or going away mid-job, against the real stack: the worker (SIGKILL and
SIGTERM), Kafka, Postgres, and the sinks process (which holds the embedded ClickHouse).

Every test acts on the stack configured by the environment, through the stack's own
supervisor, and leaves every process running and healthy again when it ends.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import psycopg
import pytest
import websockets

from sluice.settings import Settings, get_settings
from sluice.stack.probes import tcp_open
from sluice.stack.procs import Supervisor
from sluice.stack.services import ProcessService, app_services, kafka_service, local_postgres
from tests.integration.conftest import (
    START,
    TERMINAL_FEED_EVENTS,
    bearer,
    mint_token,
    user_name,
    ws_url,
)
from tests.integration.test_faults import (
    API,
    CONFIG,
    FAST,
    Ended,
    User,
    assert_same_answer,
    ended,
    start,
    stored,
    unique,
)

# The first attempt streams long enough for a fault to land (100 tokens at 8/s); a retry is quick.
SLOW = {"sluice_tokens_per_second": [8, 200], "sluice_ttft_ms": 20}
LONG = {"max_tokens": 100}
# How long Postgres and the sinks stay down; the 30 s with SLUICE_FAULT_OUTAGE_S=30.
OUTAGE_S = float(os.environ.get("SLUICE_FAULT_OUTAGE_S", "8"))


@pytest.fixture
async def user(api_url: str) -> AsyncIterator[User]:
    token = mint_token(user_name("crashes"))
    async with httpx.AsyncClient(base_url=api_url, timeout=30, headers=bearer(token)) as c:
        yield User(token, c, api_url)


def app_service(name: str, settings: Settings | None = None) -> ProcessService:
    s = settings or get_settings()
    return next(svc for svc in app_services(s, Supervisor(s.home)) if svc.name == name)


def kill(name: str) -> None:
    """SIGKILL an app process of the stack: no shutdown code runs."""
    s = get_settings()
    supervisor = Supervisor(s.home)
    pid = supervisor.pid(name)
    assert pid is not None, f"{name} is not running"
    os.kill(pid, signal.SIGKILL)
    port = app_service(name, s).port
    deadline = time.monotonic() + 10
    # A killed process's threads may hold its sockets a moment after it shows as gone.
    while supervisor.is_running(name) or (port is not None and tcp_open("127.0.0.1", port)):
        assert time.monotonic() < deadline, f"{name} survived SIGKILL"
        time.sleep(0.05)


@contextmanager
def restored(*names: str) -> Iterator[None]:
    """Whatever the test does to these app processes, they run again when it ends."""
    try:
        yield
    finally:
        for name in names:
            app_service(name).up()


class Watcher:
    """A job's WebSocket feed read in the background, so the test can act mid-stream."""

    def __init__(self, user: User, job_id: str) -> None:
        self.messages: list[dict[str, Any]] = []
        self.tokens = asyncio.Event()
        self._user, self._job_id = user, job_id
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Watcher:
        self._ws = await websockets.connect(
            ws_url(self._user.api_url, self._job_id), additional_headers=bearer(self._user.token)
        )
        self._task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
        await self._ws.close()

    async def _read(self) -> None:
        async for raw in self._ws:
            message = json.loads(raw)
            self.messages.append(message)
            if message["event"] == "token.streamed" and message["data"]["seq"] >= 4:
                self.tokens.set()
            if message["event"] in TERMINAL_FEED_EVENTS:
                return

    async def streaming(self, limit_s: float = 20) -> None:
        """Until the job has streamed a few tokens."""
        await asyncio.wait_for(self.tokens.wait(), limit_s)

    async def end(self, limit_s: float = 60) -> list[dict[str, Any]]:
        assert self._task is not None
        await asyncio.wait_for(self._task, limit_s)
        return self.messages


async def test_a_worker_killed_mid_stream_loses_nothing_the_job_completes_as_a_new_attempt(
    user: User,
) -> None:
    prompt = unique("Why must offsets be committed after the work is done?")
    clean_id = await start(user, prompt, FAST, config=LONG)
    job_id = await start(user, prompt, SLOW, config=LONG)
    async with Watcher(user, job_id) as watch:
        await watch.streaming()
        with restored("worker"):
            kill("worker")
        messages = await watch.end()
    clean = await ended(user, clean_id)
    result, metrics = await stored(user, job_id, messages[-1]["data"]["attempt"], "completed")
    job = Ended(job_id, messages, result, metrics)
    assert job.events[-1] == "streaming.completed"
    assert result["attempt"] == 2  # attempt 1 died with its worker; the log said so
    assert_same_answer(clean, job)


async def test_sigterm_lets_a_short_job_finish_and_hands_back_a_long_one(user: User) -> None:
    grace = get_settings().worker_shutdown_grace_s
    short_prompt, long_prompt = unique("A short answer, please."), unique("A long answer, please.")
    clean_ids = [await start(user, p, FAST, config=LONG) for p in (short_prompt, long_prompt)]
    # At 8 tokens/s a 100-token answer outlasts the grace period; at 50/s it fits well within.
    pace = 100 / max(1.0, grace / 2)
    short_id = await start(user, short_prompt, {"sluice_tokens_per_second": [pace]}, config=LONG)
    long_id = await start(user, long_prompt, SLOW, config=LONG)
    async with Watcher(user, short_id) as short, Watcher(user, long_id) as long:
        await asyncio.gather(short.streaming(), long.streaming())
        with restored("worker"):
            await asyncio.to_thread(app_service("worker").down)  # SIGTERM, then waits
            short_messages = await short.end(limit_s=5)
        long_messages = await long.end()
    clean_short, clean_long = [await ended(user, j) for j in clean_ids]

    result, metrics = await stored(user, short_id, 1, "completed")
    finished = Ended(short_id, short_messages, result, metrics)
    assert "job.retrying" not in finished.events
    assert_same_answer(clean_short, finished)

    result, metrics = await stored(user, long_id, 2, "completed")
    handed_back = Ended(long_id, long_messages, result, metrics)
    (retry,) = handed_back.retries()
    assert retry["attempt"] == 1 and retry["error"]["code"] == "worker_shutdown"
    assert_same_answer(clean_long, handed_back)


async def test_kafka_down_refuses_jobs_with_503_then_everything_recovers_without_restarts(
    user: User,
) -> None:
    s = get_settings()
    supervisor = Supervisor(s.home)
    before = {name: supervisor.pid(name) for name in ("api", "worker", "sinks")}
    kafka = kafka_service(s, supervisor)
    try:
        await asyncio.to_thread(kafka.down)
        resp = await user.client.post(START, json={"prompt": unique("Anyone there?")})
        assert resp.status_code == 503, resp.text
        assert resp.json()["error"]["code"] == "queue_unavailable"
        assert int(resp.headers["Retry-After"]) > 0
    finally:
        await asyncio.to_thread(kafka.up)

    prompt = unique("Back after the broker returned?")
    job_id = await submit_when_accepted(user, prompt)
    clean_id = await start(user, prompt, FAST)
    job, clean = await asyncio.gather(ended(user, job_id), ended(user, clean_id))
    assert job.result["status"] == "completed"
    assert_same_answer(clean, job)
    assert {name: supervisor.pid(name) for name in before} == before  # nothing restarted


async def submit_when_accepted(user: User, prompt: str, limit_s: float = 30) -> str:
    """Submit as a client honouring Retry-After would, until the api accepts the job."""
    deadline = time.monotonic() + limit_s
    while True:
        resp = await user.client.post(
            START, json={"prompt": prompt, "config": CONFIG, "metadata": FAST}
        )
        if resp.status_code == 202:
            job_id: str = resp.json()["data"]["job_id"]
            return job_id
        assert resp.status_code == 503 and time.monotonic() < deadline, resp.text
        await asyncio.sleep(min(1.0, float(resp.headers.get("Retry-After", "1"))))


async def api_answers(user: User, limit_s: float = 30) -> None:
    """Until the api answers again after Postgres came back.

    Its pool hands out connections the restart closed; each fails once (503) and is
    dropped, so a client that retries on 503 gets through after a few attempts.
    """
    deadline, streak = time.monotonic() + limit_s, 0
    while streak < 5:
        ok = (await user.client.get(f"{API}/jobs?limit=1")).status_code == 200
        streak = streak + 1 if ok else 0
        assert time.monotonic() < deadline, "the api did not recover from the Postgres restart"
        await asyncio.sleep(0.05)


async def test_postgres_down_mid_job_the_sink_catches_up_and_nothing_is_lost(user: User) -> None:
    s = get_settings()
    if s.database_url:
        pytest.skip("Postgres is external (DATABASE_URL): the stack cannot stop it")
    postgres = local_postgres(s)
    prompt = unique("Does the sink wait for the database?")
    clean_id = await start(user, prompt, FAST, config=LONG)
    job_id = await start(user, prompt, {"sluice_tokens_per_second": [25]}, config=LONG)
    async with Watcher(user, job_id) as watch:  # authenticated while Postgres is up
        await watch.streaming()
        down_at = time.monotonic()
        await asyncio.to_thread(postgres.down)
        try:
            messages = await watch.end()  # the job ends while Postgres is down
            await asyncio.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down_at)))
        finally:
            await asyncio.to_thread(postgres.up)
            await api_answers(user)
    clean = await ended(user, clean_id)
    result, metrics = await stored(user, job_id, 1, "completed")
    assert_same_answer(clean, Ended(job_id, messages, result, metrics))
    with psycopg.connect(s.resolved_database_url) as conn:
        row = conn.execute("SELECT status, response FROM jobs WHERE job_id = %s", (job_id,))
        assert row.fetchone() == ("completed", clean.result["response"])


async def test_sinks_down_mid_job_catch_up_from_the_log_in_postgres_and_clickhouse(
    user: User,
) -> None:
    prompt = unique("Do the sinks pick up where they stopped?")
    clean_id = await start(user, prompt, FAST, config=LONG)
    job_id = await start(user, prompt, {"sluice_tokens_per_second": [25]}, config=LONG)
    async with Watcher(user, job_id) as watch:
        await watch.streaming()
        with restored("sinks"):
            kill("sinks")  # the embedded ClickHouse goes down with it
            messages = await watch.end()
            await asyncio.sleep(OUTAGE_S)
    clean = await ended(user, clean_id)
    result, metrics = await stored(user, job_id, 1, "completed")
    assert_same_answer(clean, Ended(job_id, messages, result, metrics))
