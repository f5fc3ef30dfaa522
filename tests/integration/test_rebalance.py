"""Scale out and back in under load: a second worker joins the consumer group, then
leaves; every job completes, and none completes twice."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from schemas.events import JobCompleted
from sluice.joblog import read_job_log
from sluice.settings import get_settings
from tests.integration.conftest import bearer, free_port, mint_token, submit, user_name, wait_for

API = "/api/openai-streaming"
PACED = {"metadata": {"sluice_tokens_per_second": 20}, "config": {"max_tokens": 40}}


def second_worker(home: Path) -> subprocess.Popen[bytes]:
    """Another worker in the same consumer group, with its own web port and data dir."""
    env = {
        **os.environ,
        "SLUICE_HOME": str(home),
        "SLUICE_WORKER_WEB_PORT": str(free_port()),
        "SLUICE_POSTGRES_PORT": str(get_settings().postgres_port),
    }
    log = (home / "worker-2.log").open("w")
    return subprocess.Popen(
        [sys.executable, "-m", "sluice.cli", "worker"], env=env, stdout=log, stderr=log
    )


async def joined(log: Path, limit_s: float = 90) -> None:
    """Until the second worker has partitions of the priority topics."""
    deadline = time.monotonic() + limit_s
    while True:
        if "Setting newly assigned partitions" in await asyncio.to_thread(log.read_text):
            return
        assert time.monotonic() < deadline, "the second worker never got partitions"
        await asyncio.sleep(0.5)


async def test_a_worker_joining_and_leaving_loses_no_job_and_runs_none_twice(
    api_url: str, tmp_path: Path
) -> None:
    token = mint_token(user_name("rebalance"))
    async with httpx.AsyncClient(base_url=api_url, timeout=30, headers=bearer(token)) as c:
        jobs = [await submit(c, f"Rebalance job {i}.", **PACED) for i in range(8)]
        worker = second_worker(tmp_path)
        try:
            jobs += [await submit(c, f"Rebalance job {i}.", **PACED) for i in range(8, 16)]
            await joined(tmp_path / "worker-2.log")
            jobs += [await submit(c, f"Rebalance job {i}.", **PACED) for i in range(16, 24)]
            await asyncio.sleep(1.5)  # mid-stream when it leaves
        finally:
            worker.send_signal(signal.SIGTERM)  # leaves: finishes or hands back its jobs
            worker.wait(timeout=60)
        for job_id in jobs:
            result = await wait_for(
                c,
                f"{API}/{job_id}/results",
                lambda d: d["status"] in ("completed", "failed", "cancelled"),
                limit_s=120,
            )
            assert result["status"] == "completed", (job_id, result)
    bootstrap = get_settings().kafka_bootstrap
    for job_id in jobs:
        completions = [
            e for e in read_job_log(bootstrap, job_id).events if isinstance(e, JobCompleted)
        ]
        assert len(completions) == 1, f"job {job_id} completed {len(completions)} times"
    second = (tmp_path / "worker-2.log").read_text()
    assert "job " in second and " ended at attempt" in second, "the second worker ran no job"
