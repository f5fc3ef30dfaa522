"""The dashboard's admin api: who may call it, what the overview says, the dead-letter queue."""

from __future__ import annotations

import asyncio
import time

import httpx
from aiokafka import AIOKafkaProducer

from schemas.events import DeadLetter, JobRequested
from schemas.jobs import JobConfig, JobType
from schemas.topics import DLQ, Priority, priority_topic
from sluice.jobids import new_job_id
from sluice.settings import get_settings
from tests.integration.conftest import bearer, feed, submit, wait_for


async def test_admin_routes_need_an_admin_token(api_url: str, alice_token: str) -> None:
    async with httpx.AsyncClient(base_url=api_url, timeout=15) as http:
        for path in ("/api/admin/overview", "/api/admin/charts", "/api/admin/dlq"):
            anonymous = await http.get(path)
            assert anonymous.status_code == 401, path
            user = await http.get(path, headers=bearer(alice_token))
            assert user.status_code == 403, path
            assert user.json()["error"]["code"] == "forbidden"
        dashboard = await http.get("/dashboard")
    assert dashboard.status_code == 200  # the page itself is public; its data is not
    assert "text/html" in dashboard.headers["content-type"]
    assert "script-src 'self'" in dashboard.headers["content-security-policy"]


async def test_overview_shows_a_running_job_and_then_its_figures(
    api_url: str, alice_token: str, admin_token: str
) -> None:
    async with (
        httpx.AsyncClient(base_url=api_url, timeout=30, headers=bearer(alice_token)) as alice,
        httpx.AsyncClient(base_url=api_url, timeout=30, headers=bearer(admin_token)) as admin,
    ):
        job_id = await submit(alice, "overview", priority="urgent", config={"max_tokens": 300})
        seen_active = seen_workers = False
        deadline = time.monotonic() + 30
        # A panel is None while its source is briefly unavailable (say, a client reconnecting
        # after an earlier test restarted Kafka): poll until both have been seen.
        while time.monotonic() < deadline and not (seen_active and seen_workers):
            data = (await admin.get("/api/admin/overview")).json()["data"]
            active = data["active_jobs"] or []
            seen_active = seen_active or any(j["job_id"] == job_id for j in active)
            if data["workers"] and data["worker_group_state"] == "stable":
                seen_workers = True
                assert set(data["queue_lag"]) == {"urgent", "high", "normal", "low"}
            await asyncio.sleep(0.2)
        assert seen_active, "the running job never showed among the active jobs"
        assert seen_workers, "the worker group never showed as stable with its workers"
        await feed(api_url, job_id, alice_token)
        await wait_for(alice, f"/api/openai-streaming/{job_id}/metrics", lambda d: d["job_metrics"])
        deadline = time.monotonic() + 20
        while True:
            data = (await admin.get("/api/admin/overview")).json()["data"]
            if not data["problems"] or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        charts = (await admin.get("/api/admin/charts?minutes=60")).json()["data"]
    assert data["problems"] == {}
    assert data["jobs_by_status"]["completed"] >= 1
    assert data["p95_ttft_ms"] is not None and data["p95_ttft_ms"] > 0
    assert data["cost_today_usd"] > 0
    assert data["tokens_total"] > 0
    assert charts["points"] and charts["points"][-1]["jobs"] >= 1


async def test_a_dead_lettered_job_is_listed_and_requeued_to_completion(
    api_url: str, admin_token: str
) -> None:
    job = JobRequested(
        job_id=new_job_id(),
        user_id="dlq-test",
        job_type=JobType.analysis,
        priority=Priority.low,
        prompt="run me again",
        config=JobConfig(max_tokens=20),
    )
    letter = DeadLetter(
        job_id=job.job_id,
        source_topic=priority_topic(job.priority),
        reason="llm_unavailable: exhausted 3 tries",
        payload=job.model_dump_json(),
    )
    producer = AIOKafkaProducer(bootstrap_servers=get_settings().kafka_bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(DLQ, letter.to_bytes(), key=job.job_id.encode())
    finally:
        await producer.stop()
    async with httpx.AsyncClient(base_url=api_url, timeout=30, headers=bearer(admin_token)) as c:
        listed = (await c.get("/api/admin/dlq?limit=500")).json()["data"]["dead_letters"]
        mine = [e for e in listed if e["job_id"] == job.job_id]
        assert mine and mine[0]["requeueable"] and mine[0]["priority"] == "low"
        resp = await c.post(f"/api/admin/dlq/{job.job_id}/requeue")
        assert resp.status_code == 202, resp.text
        assert resp.json()["data"] == {"job_id": job.job_id, "priority": "low", "attempt": 2}
        status = await wait_for(
            c, f"/api/openai-streaming/{job.job_id}/status", lambda d: d["status"] == "completed"
        )
        assert status["attempt"] == 2
        again = await c.post(f"/api/admin/dlq/{job.job_id}/requeue")
        assert again.status_code == 409  # completed now: nothing to requeue
        unknown = await c.post(f"/api/admin/dlq/{new_job_id()}/requeue")
        assert unknown.status_code == 404
