"""Priority scheduling against the real stack, on a worker with two slots.

The stack's own worker is stopped through the supervisor and a worker with
``SLUICE_WORKER_CONCURRENCY=2`` (same home, same consumer group) runs in its place for
the test; the normal worker runs again when the test ends, whatever happened. Jobs are
paced by the simulator (40 tokens at 20 tokens/s: about 2 s each), so the worker is
saturated for as long as the test needs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.integration.conftest import bearer, mint_token, submit, user_name
from tests.integration.test_faults import API, unique
from tests.integration.test_faults_processes import app_service, restored

PACED = {"sluice_tokens_per_second": 20, "sluice_ttft_ms": 20}
CONFIG = {"max_tokens": 40}


@contextmanager
def small_worker(**settings: str) -> Iterator[None]:
    """The stack's worker replaced by one with these settings, for the block."""
    with restored("worker"):
        normal = app_service("worker")
        normal.down()
        small = dataclasses.replace(normal, env={**normal.env, **settings})
        small.up()
        try:
            yield
        finally:
            small.down()


@pytest.fixture
async def clients(api_url: str) -> AsyncIterator[list[httpx.AsyncClient]]:
    """Three users: the per-user limit on active jobs (20) allows no more from one."""
    async with (
        httpx.AsyncClient(base_url=api_url, timeout=30) as a,
        httpx.AsyncClient(base_url=api_url, timeout=30) as b,
        httpx.AsyncClient(base_url=api_url, timeout=30) as c,
    ):
        for client in (a, b, c):
            client.headers.update(bearer(mint_token(user_name("priority"))))
        yield [a, b, c]


async def start(client: httpx.AsyncClient, priority: str) -> str:
    return await submit(
        client, unique(f"a {priority} job"), priority=priority, config=CONFIG, metadata=PACED
    )


async def status(client: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    resp = await client.get(f"{API}/{job_id}/status")
    assert resp.status_code == 200, resp.text
    data: dict[str, Any] = resp.json()["data"]
    return data


async def started_at(client: httpx.AsyncClient, job_id: str, limit_s: float = 120) -> float:
    deadline = time.monotonic() + limit_s
    while (at := (await status(client, job_id))["started_at"]) is None:
        assert time.monotonic() < deadline, f"job {job_id} never started"
        await asyncio.sleep(0.2)
    return datetime.fromisoformat(at).timestamp()


async def all_started(jobs: list[tuple[httpx.AsyncClient, str]]) -> list[float]:
    return list(await asyncio.gather(*(started_at(c, j) for c, j in jobs)))


async def saturate(
    clients: list[httpx.AsyncClient], priority: str, n: int
) -> list[tuple[httpx.AsyncClient, str]]:
    """Submit n jobs; return once the first two hold both slots."""
    jobs = []
    for i in range(n):
        client = clients[i % len(clients)]
        jobs.append((client, await start(client, priority)))
    await all_started(jobs[:2])
    return jobs


async def test_an_urgent_job_starts_next_on_a_worker_full_of_low_jobs(
    clients: list[httpx.AsyncClient],
) -> None:
    # Strict priority here (no starvation share), so "next" means next.
    with small_worker(SLUICE_WORKER_CONCURRENCY="2", SLUICE_STARVATION_EVERY="0"):
        lows = await saturate(clients, "low", 22)
        waiting = [j for j in lows if (await status(*j))["started_at"] is None]
        assert len(waiting) >= 18, "the low jobs should be queued behind the two running"
        submitted = time.time()
        urgent = await start(clients[0], "urgent")
        urgent_at = await started_at(clients[0], urgent, limit_s=30)
        low_starts = await all_started(lows)
    before = [t for t in low_starts if submitted < t < urgent_at]
    # At most the slot that freed while the urgent job was on its way to the worker.
    assert len(before) <= 1, f"{len(before)} low jobs started before the urgent one"
    assert urgent_at - submitted < 5, "the urgent job waited for more than one low job"
    assert sum(t > urgent_at for t in low_starts) >= 15


async def test_a_waiting_low_job_gets_its_share_while_high_jobs_keep_coming(
    clients: list[httpx.AsyncClient],
) -> None:
    every = 4
    with small_worker(SLUICE_WORKER_CONCURRENCY="2", SLUICE_STARVATION_EVERY=str(every)):
        highs = await saturate(clients, "high", 18)
        submitted = time.time()
        low = await start(clients[2], "low")
        low_at = await started_at(clients[2], low)
        high_starts = await all_started(highs)
    ahead = [t for t in high_starts if submitted < t < low_at]
    # Within `every` grants (plus the one in flight while the low job reached the worker).
    assert len(ahead) <= every + 1, f"{len(ahead)} high jobs started before the low one"
    # And it did not merely wait for the high jobs to run out.
    assert sum(t > low_at for t in high_starts) >= 5
