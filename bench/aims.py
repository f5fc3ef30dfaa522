"""The issue's aims, checked against one run's results."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.stats import ratio


@dataclass(frozen=True)
class Aim:
    what: str
    target: str
    reached: str
    met: bool | None  # None: the run did not measure it

    def as_json(self) -> dict[str, Any]:
        return {"what": self.what, "target": self.target, "reached": self.reached, "met": self.met}


def _num(value: float | None, fmt: str = "{:.2f}") -> str:
    return "n/a" if value is None else fmt.format(value)


def throughput_aim(unthrottled: list[dict[str, Any]]) -> Aim:
    """Highest sustained pipeline rate against the highest direct rate of the same run."""
    best_pipeline = max(
        (u["pipeline"]["delivered_tokens_per_s"] for u in unthrottled), default=None
    )
    best_direct = max((u["direct"]["delivered_tokens_per_s"] for u in unthrottled), default=None)
    r = ratio(best_pipeline, best_direct)
    reached = (
        f"{_num(r)}x ({_num(best_pipeline, '{:.0f}')} vs {_num(best_direct, '{:.0f}')} tokens/s)"
    )
    return Aim(
        "unthrottled delivered tokens/s, pipeline vs direct (best of each)",
        ">= 0.60x",
        reached,
        None if r is None else r >= 0.6,
    )


def _largest(throttled: list[dict[str, Any]]) -> dict[str, Any] | None:
    return max(throttled, key=lambda t: t["concurrency"], default=None)


def latency_aims(throttled: list[dict[str, Any]], rate: float) -> list[Aim]:
    top = _largest(throttled)
    if top is None:
        return []
    c = top["concurrency"]
    pipe, direct = top["pipeline"], top["direct"]
    p99 = pipe["added_latency_ms"]["p99"]
    upper = pipe["added_latency_upper_ms"]["p99"]
    completion = ratio(pipe["completion_s"]["p99"], direct["completion_s"]["p99"])
    return [
        Aim(
            f"p99 added latency per token, {c} streams at {rate:g} tokens/s",
            "< 50 ms",
            f"{_num(p99, '{:.1f}')} ms (upper bound {_num(upper, '{:.1f}')} ms)",
            None if p99 is None else p99 < 50,
        ),
        Aim(
            f"job completion p99 vs direct, {c} streams at {rate:g} tokens/s",
            "<= 1.10x",
            f"{_num(completion)}x ({_num(pipe['completion_s']['p99'])} s vs "
            f"{_num(direct['completion_s']['p99'])} s)",
            None if completion is None else completion <= 1.10,
        ),
    ]


def memory_aim(throttled: list[dict[str, Any]]) -> Aim:
    top = _largest(throttled)
    kb = None if top is None else top["pipeline"]["memory_kb_per_active_job_total"]
    c = "n/a" if top is None else top["concurrency"]
    return Aim(
        f"memory per active job (worker + relay + sinks, at {c} jobs)",
        "< 50 KB",
        f"{_num(kb, '{:.0f}')} KB",
        None if kb is None else kb < 50,
    )


def check_aims(results: dict[str, Any]) -> list[Aim]:
    throttled = results.get("throttled", [])
    return [
        throughput_aim(results.get("unthrottled", [])),
        *latency_aims(throttled, results["config"]["rate"]),
        memory_aim(throttled),
    ]
