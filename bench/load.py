"""The load: N client slots, each running jobs back to back, directly or through sluice.

A slot is one user: it submits a job, watches it to its end, then submits the next.
Every receipt is stamped with ``time.time()``, the clock the worker stamps tokens with.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import httpx
import openai
import websockets
from openai import AsyncOpenAI

from bench.workload import Workload
from processors.llm import StreamOutcome, stream_tokens

START_PATH = "/api/openai-streaming/start"
TERMINAL_EVENTS = frozenset({"streaming.completed", "analysis.failed", "job.cancelled"})


@dataclass
class JobTrace:
    """One job as its client saw it."""

    submitted_at: float
    job_id: str | None = None
    accepted_at: float | None = None
    seqs: list[int] = field(default_factory=list)
    received: list[float] = field(default_factory=list)
    worker_ts: list[float] = field(default_factory=list)  # TokenStreamed.ts, pipeline only
    done_at: float | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.done_at is not None


JobFn = Callable[[int], Awaitable[JobTrace]]


async def run_slots(
    concurrency: int, job: JobFn, *, jobs_per_slot: int | None = None, until: float | None = None
) -> list[JobTrace]:
    """Run `concurrency` slots until each ran `jobs_per_slot` jobs or `until` (epoch s) passed."""
    traces: list[JobTrace] = []
    numbers = itertools.count()

    async def slot() -> None:
        done = 0
        while jobs_per_slot is None or done < jobs_per_slot:
            if until is not None and time.time() >= until:
                return
            traces.append(await job(next(numbers)))
            done += 1

    await asyncio.gather(*(slot() for _ in range(concurrency)))
    return traces


def make_llm_client(base_url: str) -> AsyncOpenAI:
    """The openai client exactly as the worker builds it: no hidden retries, default pool."""
    return AsyncOpenAI(
        api_key="sk-sluice-bench",
        base_url=base_url,
        max_retries=0,
        timeout=openai.Timeout(connect=10.0, read=120.0, write=30.0, pool=30.0),
    )


def direct_job(client: AsyncOpenAI, work: Workload, timeout_s: float) -> JobFn:
    """Baseline (a): stream straight from the simulator with the worker's own reading code."""

    async def run(k: int) -> JobTrace:
        job, headers = work.job(k), work.simulator_headers(k)
        trace = JobTrace(submitted_at=time.time())
        try:
            async with asyncio.timeout(timeout_s):
                async for _ in stream_tokens(client, job, StreamOutcome(), headers=headers):
                    trace.received.append(time.time())
                    trace.seqs.append(len(trace.seqs))
            trace.done_at = time.time()
        except Exception as exc:  # any failure is a result to report, not a crash
            trace.error = f"{type(exc).__name__}: {exc}"[:200]
        return trace

    return run


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def pipeline_job(
    http: httpx.AsyncClient,
    ws_base: str,
    work: Workload,
    timeout_s: float,
    tokens: Sequence[str],
) -> JobFn:
    """Through sluice: POST /start, then the job's WebSocket until its terminal event.

    Job k is submitted and watched by user k mod len(tokens): with a token per slot, the
    jobs of one wave all belong to different users, as N users' streams would.
    """

    async def run(k: int) -> JobTrace:
        auth = bearer(tokens[k % len(tokens)])
        trace = JobTrace(submitted_at=time.time())
        try:
            async with asyncio.timeout(timeout_s):
                resp = await http.post(START_PATH, json=work.request_body(k), headers=auth)
                if resp.status_code != 202:
                    trace.error = f"submit answered {resp.status_code}: {resp.text[:80]}"
                    return trace
                trace.accepted_at = time.time()
                trace.job_id = resp.json()["data"]["job_id"]
                await _watch(f"{ws_base}/api/openai-streaming/{trace.job_id}/ws", auth, trace)
        except Exception as exc:  # any failure is a result to report, not a crash
            trace.error = f"{type(exc).__name__}: {exc}"[:200]
        return trace

    return run


async def _watch(url: str, headers: dict[str, str], trace: JobTrace) -> None:
    """Record the feed until the server closes it, as it does after the terminal event."""
    connecting = websockets.connect(url, additional_headers=headers, max_size=None, open_timeout=60)
    async with connecting as ws:
        async for raw in ws:
            now = time.time()
            message = json.loads(raw)
            event = message["event"]
            if event == "token.streamed":
                data = message["data"]
                trace.received.append(now)
                trace.seqs.append(data["seq"])
                trace.worker_ts.append(data["ts"])
            elif event in TERMINAL_EVENTS:
                trace.done_at = now
                if event != "streaming.completed":
                    trace.error = event
    if trace.done_at is None:
        close = f" ({ws.close_code} {ws.close_reason})" if ws.close_code else ""
        trace.error = f"the feed closed before the job ended{close}"


async def submit_only(
    http: httpx.AsyncClient, work: Workload, count: int, concurrency: int, tokens: Sequence[str]
) -> tuple[list[float], list[str], dict[int, int]]:
    """POST `count` one-token jobs from `concurrency` slots, slot i as user i mod len(tokens).

    Returns each accepted submission's latency, the accepted job ids, and how many
    submissions got each other status.
    """
    latencies: list[float] = []
    job_ids: list[str] = []
    refused: Counter[int] = Counter()
    numbers = iter(range(count))

    async def slot(i: int) -> None:
        auth = bearer(tokens[i % len(tokens)])
        for k in numbers:
            began = time.perf_counter()
            body = work.request_body(k, max_tokens=1)
            resp = await http.post(START_PATH, json=body, headers=auth)
            if resp.status_code == 202:
                latencies.append(time.perf_counter() - began)
                job_ids.append(resp.json()["data"]["job_id"])
            else:
                refused[resp.status_code] += 1

    await asyncio.gather(*(slot(i) for i in range(concurrency)))
    return latencies, job_ids, dict(refused)
