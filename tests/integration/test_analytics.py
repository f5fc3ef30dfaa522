"""Analytics on the real stack: jobs streamed by the worker, stored by the sinks in ClickHouse,
read back as figures over HTTP and as SQL.

One user of its own holds exactly three jobs: one clean, one retried once, and one whose
stream is cut off on every attempt (no usage chunk ever comes, so its tokens are counted).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from sluice.pricing import estimate_cost_usd
from sluice.settings import get_settings
from sluice.tokens import count_text_tokens
from tests.integration.conftest import bearer, feed, mint_token, submit, tokens_of, user_name

ANALYTICS = "/api/openai-streaming/analytics"
SQL = "/api/analytics/sql"
FAST = {"sluice_tokens_per_second": 200, "sluice_ttft_ms": 20}
CONFIG = {"max_tokens": 30}


@dataclass
class Finished:
    job_id: str
    status: str
    attempt: int
    final_tokens: list[dict[str, Any]]


@dataclass
class Scenario:
    token: str
    clean: Finished
    retried: Finished
    cut_off: Finished


async def run_job(api_url: str, token: str, client: httpx.AsyncClient, fault: Any) -> Finished:
    prompt = f"How does a consumer group rebalance? (case {uuid.uuid4().hex[:8]})"
    metadata = {**FAST, **({"sluice_fault": fault} if fault else {})}
    job_id = await submit(client, prompt, config=CONFIG, metadata=metadata)
    messages = await feed(api_url, job_id, token, limit_s=90)
    end = messages[-1]["data"]
    final = [t for t in tokens_of(messages) if t["attempt"] == end["attempt"]]
    return Finished(job_id, end["status"], end["attempt"], final)


@pytest.fixture(scope="module")
async def scenario(api_url: str) -> AsyncIterator[Scenario]:
    token = mint_token(user_name("analytics"))
    tries = get_settings().retry_max_tries
    async with httpx.AsyncClient(base_url=api_url, timeout=30, headers=bearer(token)) as client:
        clean, retried, cut_off = await asyncio.gather(
            run_job(api_url, token, client, None),
            run_job(api_url, token, client, ["500", ""]),
            run_job(api_url, token, client, ["disconnect-after:5"] * tries),
        )
    yield Scenario(token, clean, retried, cut_off)


async def until(read: Callable[[], Any], ready: Callable[[Any], bool], limit_s: float = 60) -> Any:
    """The sinks write ClickHouse a moment after a stream ends: poll until the data is there."""
    deadline = time.monotonic() + limit_s
    while True:
        value = await read()
        if ready(value):
            return value
        assert time.monotonic() < deadline, f"never ready: {value}"
        await asyncio.sleep(0.3)


async def sql_rows(api_url: str, token: str, sql: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=api_url, timeout=30, headers=bearer(token)) as c:
        response = await c.post(SQL, json={"sql": sql})
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    return [dict(zip(data["columns"], row, strict=True)) for row in data["rows"]]


async def job_rows(api_url: str, admin: str, s: Scenario) -> dict[str, dict[str, Any]]:
    ids = ", ".join(f"'{j.job_id}'" for j in (s.clean, s.retried, s.cut_off))

    async def read() -> list[dict[str, Any]]:
        return await sql_rows(api_url, admin, f"SELECT * FROM jobs WHERE job_id IN ({ids})")

    rows = await until(read, lambda rows: len(rows) == 3)
    return {row["job_id"]: row for row in rows}


async def test_each_finished_job_is_in_the_jobs_view(
    api_url: str, admin_token: str, scenario: Scenario
) -> None:
    rows = await job_rows(api_url, admin_token, scenario)
    for job in (scenario.clean, scenario.retried, scenario.cut_off):
        row = rows[job.job_id]
        assert (row["status"], row["attempt"]) == (job.status, job.attempt)
        assert row["streamed_tokens"] == len(job.final_tokens)
        assert len(row["token_gaps_ms"]) == len(job.final_tokens) - 1
    assert scenario.clean.status == "completed" and scenario.retried.attempt == 2
    assert rows[scenario.clean.job_id]["usage_source"] == "reported"


async def test_a_cut_off_stream_is_billed_for_the_tokens_it_counted(
    api_url: str, admin_token: str, scenario: Scenario
) -> None:
    cut = (await job_rows(api_url, admin_token, scenario))[scenario.cut_off.job_id]
    assert cut["status"] == "failed" and cut["error_code"] == "stream_broken"
    assert cut["usage_source"] == "counted"
    text = "".join(t["token"] for t in scenario.cut_off.final_tokens)
    assert len(scenario.cut_off.final_tokens) == 5
    assert cut["completion_tokens"] == count_text_tokens(cut["model"], text) > 0
    expected = estimate_cost_usd(cut["model"], cut["prompt_tokens"], cut["completion_tokens"])
    assert cut["estimated_cost_usd"] == pytest.approx(expected, abs=1e-12) and expected > 0


async def test_a_cut_off_stream_counts_its_prompt_too(
    api_url: str, admin_token: str, scenario: Scenario
) -> None:
    cut = (await job_rows(api_url, admin_token, scenario))[scenario.cut_off.job_id]
    assert cut["prompt_tokens"] > 0


async def test_the_user_sees_the_figures_of_exactly_their_jobs(
    api_url: str, admin_token: str, scenario: Scenario
) -> None:
    rows = await job_rows(api_url, admin_token, scenario)
    async with httpx.AsyncClient(
        base_url=api_url, timeout=30, headers=bearer(scenario.token)
    ) as client:

        async def read() -> dict[str, Any]:
            response = await client.get(ANALYTICS, params={"window": "1h"})
            assert response.status_code == 200, response.text
            data: dict[str, Any] = response.json()["data"]
            return data

        data = await until(read, lambda d: d["groups"] and d["groups"][0]["jobs"] == 3)
    assert data["scope"] == "own"
    [group] = data["groups"]
    assert (group["completed"], group["failed"], group["cancelled"]) == (2, 1, 0)
    assert group["success_rate"] == pytest.approx(2 / 3)
    tries = get_settings().retry_max_tries
    assert group["attempts"] == {
        "total": 1 + 2 + tries,
        "mean": pytest.approx((1 + 2 + tries) / 3),
        "max": tries,
        "retried_jobs": 2,
    }
    assert group["error_types"] == {"stream_broken": 1}
    assert group["tokens"]["completion"] == sum(r["completion_tokens"] for r in rows.values())
    assert group["cost"]["total_usd"] == pytest.approx(
        sum(r["estimated_cost_usd"] for r in rows.values()), abs=1e-12
    )
    assert group["cost"]["counted_jobs"] == 1
    ttfts = sorted(r["ttft_ms"] for r in rows.values())
    assert group["ttft_ms"]["p50"] == pytest.approx(ttfts[1])


async def test_sql_is_read_only_and_for_admins(
    api_url: str, admin_token: str, scenario: Scenario
) -> None:
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as client:
        refused = await client.post(SQL, json={"sql": "SELECT 1"}, headers=bearer(scenario.token))
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
        for sql, code in [
            ("DROP TABLE job_metrics", "read_only"),
            ("SELECT * FROM system.users", "forbidden_table"),
            ("SELECT 1 SETTINGS max_execution_time = 0", "settings_change"),
        ]:
            response = await client.post(SQL, json={"sql": sql}, headers=bearer(admin_token))
            assert response.status_code == 403 and response.json()["error"]["code"] == code
