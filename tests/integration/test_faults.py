"""Faults of the model provider, injected per job through the simulator, against the real stack.

Each test asserts what a user sees: the job's final status, its final response equal to a
clean run of the same prompt (the simulator answers a prompt deterministically), its token
counts in Postgres (/results) and ClickHouse (/metrics), and the dead-letter queue.
Faults go in the job's metadata (``sluice_fault``, one entry per attempt); the worker turns
them into the simulator's fault header, and only ever when it talks to the simulator.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from schemas.events import DeadLetter, decode_job_requested
from sluice.settings import get_settings
from tests.integration.conftest import (
    bearer,
    feed,
    mint_token,
    submit,
    tokens_of,
    user_name,
    wait_for,
)

API = "/api/openai-streaming"
FAST = {"sluice_tokens_per_second": 200, "sluice_ttft_ms": 20}
CONFIG = {"max_tokens": 40}


@dataclass
class User:
    token: str
    client: httpx.AsyncClient
    api_url: str


@pytest.fixture
async def user(api_url: str) -> AsyncIterator[User]:
    """A user of its own per test: the per-user limits never couple two tests."""
    token = mint_token(user_name("faults"))
    async with httpx.AsyncClient(base_url=api_url, timeout=30, headers=bearer(token)) as c:
        yield User(token, c, api_url)


@dataclass
class Ended:
    """A job as its user sees it once it has ended."""

    job_id: str
    messages: list[dict[str, Any]]
    result: dict[str, Any]
    metrics: dict[str, Any]

    @property
    def events(self) -> list[str]:
        return [m["event"] for m in self.messages]

    def final_tokens(self) -> list[dict[str, Any]]:
        attempt = self.result["attempt"]
        return [t for t in tokens_of(self.messages) if t["attempt"] == attempt]

    def retries(self) -> list[dict[str, Any]]:
        return [m["data"] for m in self.messages if m["event"] == "job.retrying"]


def unique(prompt: str) -> str:
    return f"{prompt} (case {uuid.uuid4().hex[:8]})"


async def start(user: User, prompt: str, metadata: dict[str, Any], **fields: Any) -> str:
    return await submit(
        user.client, prompt, config=fields.pop("config", CONFIG), metadata=metadata, **fields
    )


async def ended(user: User, job_id: str, limit_s: float = 60) -> Ended:
    """Watch the job's feed to its end, then wait for both sinks to hold its final attempt."""
    messages = await feed(user.api_url, job_id, user.token, limit_s=limit_s)
    end = messages[-1]["data"]
    result, metrics = await stored(user, job_id, end["attempt"], end["status"], limit_s)
    return Ended(job_id, messages, result, metrics)


async def stored(
    user: User, job_id: str, attempt: int, status: str, limit_s: float = 60
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The job's Postgres row (/results) and ClickHouse rows (/metrics) once at `attempt`."""
    result = await wait_for(
        user.client,
        f"{API}/{job_id}/results",
        lambda d: d["attempt"] == attempt and d["status"] == status,
        limit_s=limit_s,
    )
    metrics = await wait_for(
        user.client,
        f"{API}/{job_id}/metrics",
        lambda d: (
            (d["job_metrics"] or {}).get("attempt") == attempt
            and d["token_rows"] >= d["job_metrics"]["token_count"]
        ),
        limit_s=limit_s,
    )
    return result, metrics


async def clean_and_faulty(
    user: User, prompt: str, fault: dict[str, Any], **fields: Any
) -> tuple[Ended, Ended]:
    """The same prompt twice, at once: once clean, once with the fault."""
    clean_id, faulty_id = await asyncio.gather(
        start(user, prompt, FAST, **dict(fields)), start(user, prompt, {**FAST, **fault}, **fields)
    )
    clean, faulty = await asyncio.gather(ended(user, clean_id), ended(user, faulty_id))
    assert clean.result["status"] == "completed" and clean.result["attempt"] == 1
    return clean, faulty


def assert_same_answer(clean: Ended, job: Ended) -> None:
    """The job's final response, Postgres row and ClickHouse rows are the clean run's."""
    final = job.final_tokens()
    assert [t["seq"] for t in final] == list(range(len(final)))
    assert "".join(t["token"] for t in final) == clean.result["response"]
    assert job.result["response"] == clean.result["response"]
    assert job.result["token_usage"]["completion"] == clean.result["token_usage"]["completion"]
    assert job.metrics["token_rows"] == clean.metrics["token_rows"] == len(final)
    assert job.metrics["job_metrics"]["attempt"] == job.result["attempt"]
    assert job.metrics["job_metrics"]["completion_tokens"] == len(final)


TRANSIENT = {
    "disconnect-mid-stream": ({"sluice_fault": ["disconnect-after:5"]}, "stream_broken"),
    "500": ({"sluice_fault": ["500"]}, "llm_server_error"),
    "503": ({"sluice_fault": ["503"]}, "llm_server_error"),
    "429-retry-after": ({"sluice_fault": ["429:1"]}, "llm_rate_limited"),
    "stalled-stream": (
        {"sluice_fault": ["stall-after:4:5000"], "sluice_idle_timeout_s": [0.8]},
        "stream_idle",
    ),
}


@pytest.mark.parametrize("fault", list(TRANSIENT))
async def test_a_transient_fault_is_retried_and_the_user_gets_the_clean_answer(
    user: User, fault: str
) -> None:
    metadata, code = TRANSIENT[fault]
    clean, job = await clean_and_faulty(user, unique(f"How do brokers survive {fault}?"), metadata)

    assert job.result["status"] == "completed" and job.result["attempt"] == 2
    assert job.events[-1] == "streaming.completed"
    (retry,) = job.retries()
    assert retry["attempt"] == 1 and retry["next_attempt"] == 2
    assert retry["error"]["code"] == code
    assert job.events.index("job.retrying") < len(job.events) - len(job.final_tokens())
    assert_same_answer(clean, job)
    if fault == "429-retry-after":
        assert retry["retry_in_s"] >= 1.0  # the provider's Retry-After is honoured


async def test_a_request_the_provider_refuses_fails_at_once_and_is_not_dead_lettered(
    user: User,
) -> None:
    # The simulator refuses a malformed fault header with a 400, like any bad request.
    job_id = await start(user, unique("Refuse me."), {**FAST, "sluice_fault": "teapot"})
    job = await ended(user, job_id)
    assert job.events[-1] == "analysis.failed"
    assert job.result["status"] == "failed" and job.result["attempt"] == 1
    assert job.result["error_code"] == "llm_bad_request"
    assert job.retries() == []
    assert [letter for letter in await dead_letters() if letter.job_id == job_id] == []


async def test_a_job_out_of_tries_is_dead_lettered_and_a_requeue_completes_it(
    user: User,
) -> None:
    tries = get_settings().retry_max_tries
    prompt = unique("What happens when every attempt fails?")
    clean, job = await clean_and_faulty(user, prompt, {"sluice_fault": ["500"] * tries})

    assert job.result["status"] == "failed" and job.result["attempt"] == tries
    assert job.result["error_code"] == "llm_server_error"
    assert [r["attempt"] for r in job.retries()] == list(range(1, tries))
    (letter,) = [letter for letter in await dead_letters() if letter.job_id == job.job_id]
    assert letter.error_code == "llm_server_error" and letter.attempt == tries
    assert f"exhausted {tries} tries" in letter.reason
    assert letter.source_topic == "jobs.normal"
    original = decode_job_requested(letter.payload)
    assert original.prompt == prompt and original.attempt == 1

    out = await sluice("dlq", "requeue", job.job_id)
    assert f"as attempt {tries + 1}" in out
    # The WebSocket feed of a job ends at its first end, so the new run is read from the sinks.
    result, metrics = await stored(user, job.job_id, tries + 1, "completed")
    assert result["response"] == clean.result["response"]
    assert result["token_usage"]["completion"] == clean.result["token_usage"]["completion"]
    assert metrics["token_rows"] == clean.metrics["token_rows"]
    assert metrics["job_metrics"]["status"] == "completed"


async def test_an_open_breaker_holds_new_jobs_of_that_model_until_a_probe_succeeds(
    user: User, api_url: str
) -> None:
    settings = get_settings()
    model = "gpt-4.1"  # a model of its own: no other test feeds this breaker
    config = {"model": model, "max_tokens": 20}
    admin = bearer(mint_token(user_name("ops"), admin=True))
    failing = await asyncio.gather(
        *(
            start(
                user, unique("Trip the breaker."), {**FAST, "sluice_fault": ["500"]}, config=config
            )
            for _ in range(settings.breaker_min_calls)
        )
    )
    state = await breaker_state(api_url, admin, model, "open")
    assert state["retry_at"] is not None
    async with httpx.AsyncClient(timeout=10) as http:
        scraped = (await http.get(f"{settings.resolved_worker_status_urls[0]}/metrics")).text
    assert f'model="{model}"' in scraped and "sluice_breaker_state{" in scraped

    waiting = await start(user, unique("Wait for the breaker."), FAST, config=config)
    for _ in range(10):  # a second: still queued, neither started nor failed
        status = (await user.client.get(f"{API}/{waiting}/status")).json()["data"]
        assert status["status"] == "queued", status
        await asyncio.sleep(0.1)

    jobs = await asyncio.gather(*(ended(user, j) for j in [waiting, *failing]))
    assert all(j.result["status"] == "completed" for j in jobs)
    assert jobs[0].result["attempt"] == 1
    assert all(j.result["attempt"] == 2 for j in jobs[1:])
    await breaker_state(api_url, admin, model, "closed")


async def breaker_state(
    api_url: str, headers: dict[str, str], model: str, state: str, limit_s: float = 20
) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=api_url, headers=headers, timeout=10) as admin:
        data = await wait_for(
            admin,
            "/api/breakers",
            lambda d: any(b["model"] == model and b["state"] == state for b in d["breakers"]),
            limit_s=limit_s,
        )
    assert data["workers_unreachable"] == []
    found: dict[str, Any] = next(b for b in data["breakers"] if b["model"] == model)
    return found


async def sluice(*args: str) -> str:
    """Run the `sluice` command against the stack these tests use (same environment)."""
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "sluice.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ),
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def dead_letters() -> list[DeadLetter]:
    out = await sluice("dlq", "list", "--json", "--limit", "100000")
    return [DeadLetter.model_validate_json(line) for line in out.splitlines() if line.strip()]
