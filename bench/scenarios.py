"""The scenarios of one run, each measured against its baselines on the same stack."""

from __future__ import annotations

import asyncio
import math
import os
import time
from pathlib import Path
from typing import Any

import httpx

from bench.analysis import throttled_scenario, unthrottled_scenario
from bench.config import BenchConfig
from bench.kafka import LifecycleWatcher, ensure_baseline_topic, kafka_loop
from bench.load import (
    JobFn,
    JobTrace,
    direct_job,
    make_llm_client,
    pipeline_job,
    run_slots,
    submit_only,
)
from bench.procs import StageUsage, UsageMeter
from bench.profiled import PROFILE_SIGNAL
from bench.stack import BenchStack
from bench.stats import summary
from bench.workload import Workload

SETTLE_S = 2.0  # lets the sinks finish writing the last scenario's events
PROFILE_WAIT_S = 30.0


async def _appeared(path: Path, timeout_s: float, poll_s: float = 0.2) -> bool:
    """Whether another process wrote `path` within the timeout (polled: no event to wait on)."""
    for _ in range(int(timeout_s / poll_s)):
        if await asyncio.to_thread(path.exists):
            return True
        await asyncio.sleep(poll_s)
    return False


def say(text: str) -> None:
    print(text, flush=True)


class Scenarios:
    def __init__(self, cfg: BenchConfig, stack: BenchStack, api_tokens: list[str]) -> None:
        self.cfg = cfg
        self.stack = stack
        self.tokens = api_tokens  # one user per slot of the largest scenario
        self.paced = Workload(cfg.tokens, cfg.rate, cfg.ttft_ms)
        self.unpaced = Workload(cfg.tokens, 0.0, 0)
        self.job_timeout_s = 4 * cfg.ideal_completion_s + 60

    def _http(self, concurrency: int) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.cfg.ports.api_url,
            limits=httpx.Limits(max_connections=concurrency + 16),
            timeout=60,
        )

    def _pipeline(self, http: httpx.AsyncClient, work: Workload) -> JobFn:
        ws_base = self.cfg.ports.api_url.replace("http", "ws", 1)
        return pipeline_job(http, ws_base, work, self.job_timeout_s, self.tokens)

    async def _measured(
        self, concurrency: int, job: JobFn, *, jobs_per_slot: int | None, until: float | None
    ) -> tuple[list[JobTrace], StageUsage]:
        await asyncio.sleep(SETTLE_S)
        meter = UsageMeter(self.cfg.home)
        meter.start()
        traces = await run_slots(concurrency, job, jobs_per_slot=jobs_per_slot, until=until)
        return traces, await meter.stop()

    async def warm_up(self) -> list[str]:
        """A few jobs both ways, so connections, metadata and imports are warm; any errors."""
        async with self._http(4) as http:
            traces = await run_slots(4, self._pipeline(http, self.paced), jobs_per_slot=2)
        client = make_llm_client(self.cfg.ports.simulator_url)
        job = direct_job(client, self.paced, self.job_timeout_s)
        traces += await run_slots(4, job, jobs_per_slot=2)
        await client.close()
        return [t.error for t in traces if t.error is not None]

    async def throttled(self, concurrency: int) -> dict[str, Any]:
        """N streams of M tokens at R tokens/s: direct, then through the pipeline."""
        waves = max(1, math.ceil(self.cfg.min_jobs / concurrency))
        client = make_llm_client(self.cfg.ports.simulator_url)
        job = direct_job(client, self.paced, self.job_timeout_s)
        traces, usage = await self._measured(concurrency, job, jobs_per_slot=waves, until=None)
        await client.close()
        direct = self._throttled_numbers(traces, usage, concurrency, None)
        watcher = LifecycleWatcher(self.cfg.ports.bootstrap)
        await watcher.start()
        async with self._http(concurrency) as http:
            job = self._pipeline(http, self.paced)
            traces, usage = await self._measured(concurrency, job, jobs_per_slot=waves, until=None)
        await watcher.stop()
        pipeline = self._throttled_numbers(traces, usage, concurrency, watcher.started_at)
        return {"concurrency": concurrency, "waves": waves, "direct": direct, "pipeline": pipeline}

    def _throttled_numbers(
        self,
        traces: list[JobTrace],
        usage: StageUsage,
        concurrency: int,
        request_began: dict[str, float] | None,
    ) -> dict[str, Any]:
        return throttled_scenario(
            traces,
            ttft_s=self.paced.ttft_s,
            rate=self.paced.rate,
            tokens=self.paced.tokens,
            usage=usage,
            concurrency=concurrency,
            request_began=request_began,
        )

    async def unthrottled(self, concurrency: int) -> dict[str, Any]:
        """Closed loop with the simulator unthrottled, for a fixed time: direct, then pipeline."""
        seconds = self.cfg.unthrottled_s
        out: dict[str, Any] = {"concurrency": concurrency}
        client = make_llm_client(self.cfg.ports.simulator_url)
        async with self._http(concurrency) as http:
            for kind, job in (
                ("direct", direct_job(client, self.unpaced, self.job_timeout_s)),
                ("pipeline", self._pipeline(http, self.unpaced)),
            ):
                await asyncio.sleep(SETTLE_S)
                meter = UsageMeter(self.cfg.home)
                meter.start()
                began = time.time()
                traces = await run_slots(concurrency, job, until=began + seconds)
                usage = await meter.stop()
                out[kind] = unthrottled_scenario(traces, usage=usage, concurrency=concurrency)
        await client.close()
        return out

    async def submissions(self) -> dict[str, Any]:
        """POST /start as fast as the api accepts one-token jobs: from one user, then many."""
        concurrency = self.cfg.submit_concurrency
        return {
            "one_user": await self._submissions(self.tokens[:1]),
            "many_users": await self._submissions(self.tokens[:concurrency]),
        }

    async def _submissions(self, tokens: list[str]) -> dict[str, Any]:
        count, concurrency = self.cfg.submissions, self.cfg.submit_concurrency
        watcher = LifecycleWatcher(self.cfg.ports.bootstrap)
        await watcher.start()
        await asyncio.sleep(SETTLE_S)
        async with self._http(concurrency) as http:
            began = time.perf_counter()
            latencies, job_ids, refused = await submit_only(
                http, self.paced, count, concurrency, tokens
            )
            wall = time.perf_counter() - began
        drained = await watcher.wait_finished(job_ids, timeout_s=60)  # before the next scenario
        await watcher.stop()
        return {
            "users": len(tokens),
            "submissions": count,
            "accepted": len(job_ids),
            "refused": refused,
            "concurrency": concurrency,
            "wall_s": wall,
            "accepted_per_s": len(job_ids) / wall if wall > 0 else 0.0,
            "latency_ms": summary(latencies, 1000),
            "drained_jobs": drained,
        }

    async def kafka(self, paced_rates: list[float]) -> dict[str, Any]:
        """Baseline (b): bare produce + consume, at its max and at the scenarios' rates."""
        bootstrap = self.cfg.ports.bootstrap
        await asyncio.to_thread(ensure_baseline_topic, bootstrap)
        await asyncio.sleep(SETTLE_S)
        top = await kafka_loop(bootstrap, self.cfg.kafka_s)
        paced = []
        for rate in paced_rates:
            await asyncio.sleep(1.0)
            paced.append((await kafka_loop(bootstrap, self.cfg.kafka_paced_s, rate=rate)).as_json())
        return {"max": top.as_json(), "paced": paced}

    async def profile(self, out_dir: Path) -> dict[str, str]:
        """Worker and api under pyinstrument: unthrottled, throttled, and submissions only."""
        outputs = self.stack.restart_profiled(("worker", "api"), out_dir)
        mid = sorted(self.cfg.concurrency)[len(self.cfg.concurrency) // 2]
        top = max(self.cfg.concurrency)
        written: dict[str, str] = {}
        for label, concurrency in (
            ("unthrottled", mid),
            ("throttled", top),
            ("submissions", self.cfg.submit_concurrency),
        ):
            for path in outputs.values():
                path.unlink(missing_ok=True)
            await asyncio.sleep(SETTLE_S)
            async with self._http(concurrency) as http:
                load = asyncio.create_task(self._profiled_load(label, http, concurrency))
                await asyncio.sleep(1.0 if label != "submissions" else 0.2)  # past the ramp
                self._signal_profilers()
                await load
                self._signal_profilers()
            for name, path in outputs.items():
                if await _appeared(path, PROFILE_WAIT_S):  # rendered inside the profiled process
                    target = out_dir / f"{name}-{label}-c{concurrency}.txt"
                    path.replace(target)
                    session = path.with_suffix(".pyisession")
                    if session.exists():
                        session.replace(target.with_suffix(".pyisession"))
                    written[f"{name}-{label}"] = str(target)
        return written

    async def _profiled_load(self, label: str, http: httpx.AsyncClient, concurrency: int) -> None:
        if label == "submissions":
            await submit_only(http, self.paced, self.cfg.submissions, concurrency, self.tokens)
        elif label == "throttled":
            await run_slots(concurrency, self._pipeline(http, self.paced), jobs_per_slot=1)
        else:
            until = time.time() + self.cfg.unthrottled_s
            await run_slots(concurrency, self._pipeline(http, self.unpaced), until=until)

    def _signal_profilers(self) -> None:
        for name in ("worker", "api"):
            pid = self.stack.pid(name)
            if pid is not None:
                os.kill(pid, PROFILE_SIGNAL)
