"""Queue wait per priority under a mixed load that keeps the worker saturated.

A private stack (home .sluice/bench-priority, ports moved by 30000) with a small worker
(4 slots by default). Jobs of all four priorities arrive together at about twice what
the worker can run (offered load over capacity), so a queue builds and the scheduler has
to choose. Each job's queue wait is its first start minus its submission, read from the
api's status endpoint once every job has ended. The report gives p50/p95 per priority
and, as ratios against the same run, each priority's p50 over the low one's.

    .venv/bin/python -m bench.priority [--jobs 120] [--slots 4] [--keep-stack]

Writes bench/results/priority.json and bench/results/priority.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench.config import RESULTS_DIR, BenchConfig, StackPorts
from bench.stack import BenchStack
from schemas.topics import PRIORITIES_HIGHEST_FIRST
from sluice import accounts
from sluice.settings import get_settings

API = "/api/openai-streaming"
MIX = {"urgent": 0.1, "high": 0.2, "normal": 0.3, "low": 0.4}
TOKENS, RATE, TTFT_MS = 60, 40, 20  # about 1.5 s per job on the simulator
USERS = 8  # submissions of one user are serialised by its limits; spread them


@dataclass(frozen=True)
class Options:
    jobs: int
    slots: int
    starvation_every: int
    load: float  # offered load over capacity
    keep_stack: bool
    seed: int


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def _ts(value: str | None) -> float | None:
    return datetime.fromisoformat(value).timestamp() if value else None


async def _submit(client: httpx.AsyncClient, priority: str, i: int) -> str:
    """Submit a job; a 503 (the api's database pool busy) is retried after its Retry-After."""
    body = {
        "prompt": f"priority bench job {i} ({priority})",
        "priority": priority,
        "config": {"max_tokens": TOKENS},
        "metadata": {"sluice_tokens_per_second": RATE, "sluice_ttft_ms": TTFT_MS},
    }
    for _ in range(20):
        resp = await client.post(f"{API}/start", json=body)
        if resp.status_code != 503:
            break
        await asyncio.sleep(float(resp.headers.get("Retry-After", "1")))
    resp.raise_for_status()
    job_id: str = resp.json()["data"]["job_id"]
    return job_id


async def _ended(client: httpx.AsyncClient, job_id: str, limit_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + limit_s
    while True:
        resp = await client.get(f"{API}/{job_id}/status")
        data: dict[str, Any] = resp.json().get("data") or {}
        if data.get("completed_at"):
            return data
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} did not end: {data}")
        await asyncio.sleep(0.5)


async def run_load(api_url: str, tokens: list[str], opts: Options) -> dict[str, list[float]]:
    rng = random.Random(opts.seed)
    per_job_s = TTFT_MS / 1000 + TOKENS / RATE
    interval = per_job_s / (opts.slots * opts.load)  # mean gap between submissions
    priorities = list(MIX)
    weights = [MIX[p] for p in priorities]
    limits = httpx.Limits(max_connections=16)
    clients = [
        httpx.AsyncClient(
            base_url=api_url, headers={"Authorization": f"Bearer {t}"}, timeout=30, limits=limits
        )
        for t in tokens
    ]
    try:
        # Arrivals on a schedule (Poisson), each submitted without waiting for the last.
        submissions: list[tuple[str, httpx.AsyncClient, asyncio.Task[str]]] = []
        for i in range(opts.jobs):
            priority = rng.choices(priorities, weights)[0]
            client = clients[i % len(clients)]
            task = asyncio.create_task(_submit(client, priority, i))
            submissions.append((priority, client, task))
            await asyncio.sleep(rng.expovariate(1 / interval))
        jobs = [(priority, client, await task) for priority, client, task in submissions]
        limit_s = 60 + opts.jobs * per_job_s / opts.slots * 3
        ends = await asyncio.gather(*(_ended(c, j, limit_s) for _, c, j in jobs))
    finally:
        for client in clients:
            await client.aclose()
    waits: dict[str, list[float]] = {p: [] for p in priorities}
    for (priority, _, _), status in zip(jobs, ends, strict=True):
        submitted, started = _ts(status["submitted_at"]), _ts(status["started_at"])
        if submitted is not None and started is not None:
            waits[priority].append(max(0.0, started - submitted))
    return waits


def summarise(waits: dict[str, list[float]], opts: Options, elapsed_s: float) -> dict[str, Any]:
    rows = {
        p.value: {
            "jobs": len(waits[p.value]),
            "wait_p50_s": round(percentile(waits[p.value], 0.5), 3),
            "wait_p95_s": round(percentile(waits[p.value], 0.95), 3),
            "wait_mean_s": round(statistics.fmean(waits[p.value]), 3) if waits[p.value] else None,
        }
        for p in PRIORITIES_HIGHEST_FIRST
    }
    low_p50 = rows["low"]["wait_p50_s"]
    for row in rows.values():
        row["p50_over_low_p50"] = round(row["wait_p50_s"] / low_p50, 3) if low_p50 else None
    return {
        "scenario": "priority",
        "slots": opts.slots,
        "starvation_every": opts.starvation_every,
        "offered_load_over_capacity": opts.load,
        "jobs": opts.jobs,
        "mix": MIX,
        "job_tokens": TOKENS,
        "tokens_per_second": RATE,
        "elapsed_s": round(elapsed_s, 1),
        "per_priority": rows,
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Queue wait per priority under a mixed load",
        "",
        f"{result['jobs']} jobs ({', '.join(f'{p} {int(s * 100)}%' for p, s in MIX.items())}) "
        f"on a worker with {result['slots']} slots, offered at "
        f"{result['offered_load_over_capacity']}x its capacity; "
        f"{result['job_tokens']} tokens at {result['tokens_per_second']} tokens/s per job; "
        f"starvation_every={result['starvation_every']}; run took {result['elapsed_s']} s.",
        "",
        "| priority | jobs | wait p50 (s) | wait p95 (s) | p50 / low p50 |",
        "|---|---|---|---|---|",
    ]
    for p, row in result["per_priority"].items():
        lines.append(
            f"| {p} | {row['jobs']} | {row['wait_p50_s']} | {row['wait_p95_s']} "
            f"| {row['p50_over_low_p50']} |"
        )
    lines += ["", "Reproduce: `.venv/bin/python -m bench.priority`", ""]
    return "\n".join(lines)


def bench_tokens(users: int) -> list[str]:
    """A token for each of ``users`` bench users, minted in the bench stack's database."""
    with psycopg.connect(get_settings().resolved_database_url, autocommit=True) as conn:
        out = []
        for n in range(users):
            accounts.ensure_user(conn, f"bench-priority-{n}")
            out.append(accounts.create_token(conn, f"bench-priority-{n}", name="bench").token)
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=120)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--starvation-every", type=int, default=10)
    parser.add_argument("--load", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep-stack", action="store_true")
    args = parser.parse_args()
    opts = Options(
        args.jobs, args.slots, args.starvation_every, args.load, args.keep_stack, args.seed
    )
    cfg = BenchConfig(
        name="priority",
        home=Path(".sluice/bench-priority"),
        ports=StackPorts(offset=30_000),
        extra_env={
            "SLUICE_WORKER_CONCURRENCY": str(opts.slots),
            "SLUICE_STARVATION_EVERY": str(opts.starvation_every),
        },
    )
    stack = BenchStack(cfg)
    stack.up()
    try:
        tokens = bench_tokens(USERS)
        began = time.monotonic()
        waits = asyncio.run(run_load(cfg.ports.api_url, tokens, opts))
        result = summarise(waits, opts, time.monotonic() - began)
    finally:
        if not opts.keep_stack:
            stack.down()
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "priority.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS_DIR / "priority.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
