"""Many WebSocket subscribers on one api process: delivery latency and the process's memory.

    python -m bench.subscribers [--subscribers 1000] [--jobs 10] [--tokens 60] [--rate 5]

Runs on the bench's own stack (ports offset by 20000 so it never meets the main bench).
Each job is watched by subscribers/jobs clients at once, all connecting together; a
client refused with 1013 (try again later) or dropped backs off and resumes after its
last token. Every token's delivery latency is the client's receive time minus the
worker's stamp on the token (same machine, same clock).
Writes bench/results/subscribers.json and .md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import psutil
import websockets

from bench.config import RESULTS_DIR, BenchConfig, StackPorts
from bench.stack import BenchStack

API = "/api/openai-streaming"


@dataclass
class SubscribersReport:
    subscribers: int
    jobs: int
    tokens_per_job: int
    rate: float
    connected: int
    completed_streams: int
    reconnects: int
    tokens_delivered: int
    latency_ms_p50: float
    latency_ms_p99: float
    latency_ms_max: float
    api_rss_mb_idle: float
    api_rss_mb_peak: float
    api_rss_kb_per_subscriber: float
    wall_s: float
    failures: dict[str, int]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def subscriber(
    ws_url: str, token: str, latencies: list[float], done: list[int], retries: list[int]
) -> int:
    """Read one job's feed to its end; on a 1013 (try again later) or a drop, back off and
    resume after the last token held, as a well-behaved client does."""
    delivered, last = 0, -1
    headers = {"Authorization": f"Bearer {token}"}
    for _ in range(20):
        url = ws_url if last < 0 else f"{ws_url}?starting_after={last}"
        try:
            async with websockets.connect(url, additional_headers=headers, open_timeout=60) as ws:
                async for raw in ws:
                    now = time.time()
                    message = json.loads(raw)
                    if message["event"] == "token.streamed":
                        latencies.append((now - message["data"]["ts"]) * 1000)
                        delivered += 1
                        last = message["data"]["sequence_number"]
                    elif message["event"] in ("streaming.completed", "analysis.failed"):
                        done.append(1)
                        return delivered
        except (websockets.ConnectionClosed, OSError, TimeoutError):
            pass
        retries.append(1)
        await asyncio.sleep(random.uniform(0.5, 2.0))
    return delivered


async def measure(args: argparse.Namespace, stack: BenchStack) -> SubscribersReport:
    token = stack.api_token()
    api_pid = stack.pid("api")
    assert api_pid is not None
    api = psutil.Process(api_pid)
    idle_rss = api.memory_info().rss
    base = stack.cfg.ports.api_url
    per_job = max(1, args.subscribers // args.jobs)
    body = {
        "prompt": "Many readers.",
        "config": {"max_tokens": args.tokens},
        "metadata": {
            "sluice_answer_tokens": args.tokens,
            "sluice_tokens_per_second": args.rate,
            "sluice_ttft_ms": 3000,  # time for every subscriber to connect first
        },
    }
    latencies: list[float] = []
    done: list[int] = []
    retries: list[int] = []
    peak = idle_rss
    started = time.monotonic()
    auth = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, timeout=60, headers=auth) as http:
        job_ids = []
        for _ in range(args.jobs):
            resp = await http.post(f"{API}/start", json=body)
            resp.raise_for_status()
            job_ids.append(resp.json()["data"]["job_id"])
    ws_base = base.replace("http", "ws", 1)
    tasks = [
        asyncio.create_task(
            subscriber(f"{ws_base}{API}/{job_id}/ws", token, latencies, done, retries)
        )
        for job_id in job_ids
        for _ in range(per_job)
    ]
    while not all(t.done() for t in tasks):
        peak = max(peak, api.memory_info().rss)
        await asyncio.sleep(0.25)
    results = await asyncio.gather(*tasks, return_exceptions=True)
    connected = sum(1 for r in results if isinstance(r, int))
    failures = Counter(
        f"{type(r).__name__}: {str(r)[:80]}" for r in results if isinstance(r, BaseException)
    )
    subscribers = per_job * args.jobs
    return SubscribersReport(
        subscribers=subscribers,
        jobs=args.jobs,
        tokens_per_job=args.tokens,
        rate=args.rate,
        connected=connected,
        completed_streams=len(done),
        reconnects=len(retries),
        tokens_delivered=sum(r for r in results if isinstance(r, int)),
        latency_ms_p50=round(percentile(latencies, 0.50), 2),
        latency_ms_p99=round(percentile(latencies, 0.99), 2),
        latency_ms_max=round(max(latencies, default=float("nan")), 2),
        api_rss_mb_idle=round(idle_rss / 2**20, 1),
        api_rss_mb_peak=round(peak / 2**20, 1),
        api_rss_kb_per_subscriber=round((peak - idle_rss) / 1024 / max(1, subscribers), 1),
        wall_s=round(time.monotonic() - started, 1),
        failures=dict(failures.most_common(5)),
    )


def write(report: SubscribersReport, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "subscribers.json").write_text(json.dumps(asdict(report), indent=2) + "\n")
    rows = "\n".join(f"| {k} | {v} |" for k, v in asdict(report).items())
    md = out_dir / "subscribers.md"
    md.write_text(
        "# Many WebSocket subscribers on one api process\n\n"
        "`python -m bench.subscribers` — delivery latency is receive time minus the "
        "worker's stamp on each token.\n\n| figure | value |\n|---|---|\n" + rows + "\n"
    )
    return md


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=10)
    parser.add_argument("--tokens", type=int, default=60)
    parser.add_argument("--rate", type=float, default=5.0)
    parser.add_argument("--keep-stack", action="store_true")
    args = parser.parse_args()
    cfg = BenchConfig(
        name="subscribers",
        home=Path(".sluice/bench-subscribers"),
        ports=StackPorts(offset=20_000),
        extra_env={"SLUICE_FEED_SEND_TIMEOUT_S": "30"},
    )
    stack = BenchStack(cfg)
    stack.up()
    try:
        report = asyncio.run(measure(args, stack))
    finally:
        if not args.keep_stack:
            stack.down()
    print(json.dumps(asdict(report), indent=2))
    print(f"wrote {write(report, RESULTS_DIR)}")


if __name__ == "__main__":
    main()
