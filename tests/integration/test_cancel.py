"""Cancel: a queued job never starts; a running stream stops within a second of the
request, keeps its partial answer, and ends `cancelled`; cancelling again changes nothing."""

from __future__ import annotations

import time

import httpx

from sluice.settings import get_settings
from sluice.stack.procs import Supervisor
from tests.integration.conftest import feed, submit, tokens_of, wait_for
from tests.integration.test_faults_processes import app_service, restored

API = "/api/openai-streaming"
SLOW = {"metadata": {"sluice_tokens_per_second": 10}, "config": {"max_tokens": 400}}


async def test_cancelling_a_running_stream_stops_it_within_a_second(
    client: httpx.AsyncClient, api_url: str, alice_token: str
) -> None:
    job_id = await submit(client, "Stream slowly so that I can cancel you.", **SLOW)
    await wait_for(client, f"{API}/{job_id}/stream", lambda d: d["tokens_streamed"] >= 5)
    requested_at = time.time()
    resp = await client.post(f"{API}/{job_id}/cancel")
    assert resp.status_code == 202, resp.text
    assert resp.json()["data"]["status"] in ("cancelling", "cancelled")

    messages = await feed(api_url, job_id, alice_token)
    assert messages[-1]["event"] == "job.cancelled"
    tokens = tokens_of(messages)
    assert tokens, "the tokens streamed before the cancel stay"
    assert max(t["ts"] for t in tokens) <= requested_at + 1.0, "a token came after the bound"
    assert len(tokens) < 60  # at 10 tokens/s the full answer is far longer than the wait

    result = await wait_for(client, f"{API}/{job_id}/results", lambda d: d["status"] == "cancelled")
    assert result["response"] == "".join(t["token"] for t in tokens)
    again = await client.post(f"{API}/{job_id}/cancel")
    assert again.status_code == 202
    assert again.json()["data"]["status"] == "cancelled"


async def test_a_cancelled_queued_job_never_starts(
    client: httpx.AsyncClient, api_url: str, alice_token: str
) -> None:
    settings = get_settings()
    supervisor = Supervisor(settings.home)
    with restored("worker"):
        supervisor.stop("worker")  # nobody takes jobs: this one stays queued
        job_id = await submit(client, "Never run me.")
        status = (await client.get(f"{API}/{job_id}/status")).json()["data"]
        assert status["status"] == "queued"
        resp = await client.post(f"{API}/{job_id}/cancel")
        assert resp.status_code == 202
        app_service("worker").up()
        messages = await feed(api_url, job_id, alice_token, limit_s=90)
    assert [m["event"] for m in messages] == ["job.cancelled"]
    result = await wait_for(client, f"{API}/{job_id}/results", lambda d: d["status"] == "cancelled")
    assert result["response"] == "" and result["token_usage"]["completion"] == 0
    metrics = await wait_for(
        client, f"{API}/{job_id}/metrics", lambda d: d["job_metrics"] is not None
    )
    assert metrics["job_metrics"]["status"] == "cancelled" and metrics["token_rows"] == 0
