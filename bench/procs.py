"""The stack's processes by stage: CPU time and resident memory, sampled with psutil."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from sluice.stack.postgres import postgres_layout, server_pid
from sluice.stack.procs import Supervisor

# Stage name -> the supervisor's name of its process.
SUPERVISED = {
    "simulator": "fake-llm",
    "worker": "worker",
    "broker": "kafka",
    "relay": "api",
    "sinks": "sinks",
}
STAGES = (*SUPERVISED, "postgres", "client")


def stage_pids(home: Path) -> dict[str, int]:
    """The main pid of each stage that runs; `client` is this process."""
    supervisor = Supervisor(home)
    pids = {stage: supervisor.pid(name) for stage, name in SUPERVISED.items()}
    pids["postgres"] = server_pid(postgres_layout(home.resolve()))
    pids["client"] = os.getpid()
    return {stage: pid for stage, pid in pids.items() if pid is not None}


def _family(pid: int) -> Iterator[psutil.Process]:
    """The process and its children (Postgres serves each connection from a child)."""
    with contextlib.suppress(psutil.Error):
        parent = psutil.Process(pid)
        yield parent
        yield from parent.children(recursive=True)


def cpu_seconds(pid: int) -> float:
    total = 0.0
    for proc in _family(pid):
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


def rss_bytes(pid: int) -> int:
    total = 0
    for proc in _family(pid):
        with contextlib.suppress(psutil.Error):
            total += proc.memory_info().rss
    return total


def machine_busy_s() -> float:
    """CPU seconds the whole machine has spent not idle, summed over its cores."""
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


@dataclass
class StageUsage:
    """CPU seconds used and resident memory seen, per stage, over one scenario.

    `other_cpu_s` is what every other process of the machine used meanwhile (other
    developers' stacks, builds): the noise under this scenario's numbers.
    """

    wall_s: float = 0.0
    cpu_s: dict[str, float] = field(default_factory=dict)
    other_cpu_s: float = 0.0
    rss_before: dict[str, int] = field(default_factory=dict)
    rss_peak: dict[str, int] = field(default_factory=dict)


class UsageMeter:
    """Measures a scenario: CPU deltas from start to stop, RSS sampled in between."""

    def __init__(self, home: Path, interval_s: float = 0.25) -> None:
        self._pids = stage_pids(home)
        self._interval = interval_s
        self._cpu_start: dict[str, float] = {}
        self._busy_start = 0.0
        self._began = 0.0
        self._usage = StageUsage()
        self._task: asyncio.Task[None] | None = None

    @property
    def pids(self) -> dict[str, int]:
        return dict(self._pids)

    def start(self) -> None:
        self._began = time.monotonic()
        self._busy_start = machine_busy_s()
        self._cpu_start = {s: cpu_seconds(p) for s, p in self._pids.items()}
        rss = {s: rss_bytes(p) for s, p in self._pids.items()}
        self._usage = StageUsage(rss_before=dict(rss), rss_peak=dict(rss))
        self._task = asyncio.create_task(self._sample())

    async def stop(self) -> StageUsage:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._sample_once()
        self._usage.cpu_s = {
            s: cpu_seconds(p) - self._cpu_start.get(s, 0.0) for s, p in self._pids.items()
        }
        busy = machine_busy_s() - self._busy_start
        self._usage.other_cpu_s = max(0.0, busy - sum(self._usage.cpu_s.values()))
        self._usage.wall_s = time.monotonic() - self._began
        return self._usage

    async def _sample(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            self._sample_once()

    def _sample_once(self) -> None:
        for stage, pid in self._pids.items():
            rss = rss_bytes(pid)
            self._usage.rss_peak[stage] = max(self._usage.rss_peak.get(stage, 0), rss)
