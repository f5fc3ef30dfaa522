"""From client traces and process usage to the numbers of one scenario."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from bench.load import JobTrace
from bench.procs import StageUsage
from bench.stats import (
    estimate_schedule_start,
    per_job_kb,
    per_thousand,
    summary,
    token_delays,
)

# Processes that hold per-job state; the broker's JVM heap and Postgres do not grow per job.
PER_JOB_STAGES = ("worker", "relay", "sinks")


def _errors(traces: Sequence[JobTrace]) -> dict[str, int]:
    return dict(Counter(t.error for t in traces if t.error is not None).most_common(5))


def token_count(traces: Sequence[JobTrace]) -> int:
    return sum(len(t.received) for t in traces)


def tight_delays(trace: JobTrace, ttft_s: float, rate: float) -> list[float]:
    """Send-to-receipt delays, the schedule's start estimated at the stream's first reader.

    The first reader is the worker (its TokenStreamed.ts) in the pipeline, the client
    itself when streaming directly.
    """
    observed = trace.worker_ts or trace.received
    start = estimate_schedule_start(trace.seqs, observed, ttft_s, rate)
    if start is None:
        return []
    return token_delays(trace.seqs, trace.received, start, ttft_s, rate)


def bounded_delays(
    trace: JobTrace, request_began: float | None, ttft_s: float, rate: float
) -> list[float]:
    """Delays with the schedule started when the request was made: an upper bound."""
    if request_began is None:
        return []
    return token_delays(trace.seqs, trace.received, request_began, ttft_s, rate)


def _start_numbers(
    ok: Sequence[JobTrace], request_began: Mapping[str, float] | None
) -> dict[str, Any]:
    """Where a pipeline job's start goes: the 202, then the wait for a worker to start it."""
    if request_began is None:
        return {}
    accepted = [t.accepted_at - t.submitted_at for t in ok if t.accepted_at is not None]
    starts = [(request_began.get(t.job_id or ""), t.submitted_at) for t in ok]
    waits = [began - submitted for began, submitted in starts if began is not None]
    return {"accept_ms": summary(accepted, 1000), "submit_to_worker_start_ms": summary(waits, 1000)}


def latency_numbers(
    traces: Sequence[JobTrace],
    ttft_s: float,
    rate: float,
    request_began: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """Added latency per token (tight estimate and upper bound), TTFT overhead, relay hop."""
    ok = [t for t in traces if t.ok and t.received]
    tight: list[float] = []
    upper: list[float] = []
    relay: list[float] = []
    for t in ok:
        tight += tight_delays(t, ttft_s, rate)
        began = t.submitted_at if request_began is None else request_began.get(t.job_id or "")
        upper += bounded_delays(t, began, ttft_s, rate)
        relay += [r - w for r, w in zip(t.received, t.worker_ts, strict=False)]
    return {
        **_start_numbers(ok, request_began),
        "added_latency_ms": summary(tight, 1000),
        "added_latency_upper_ms": summary(upper, 1000),
        "relay_latency_ms": summary(relay, 1000) if relay else None,
        "ttft_overhead_ms": summary([t.received[0] - t.submitted_at - ttft_s for t in ok], 1000),
    }


def usage_numbers(usage: StageUsage, tokens: int, active_jobs: int) -> dict[str, Any]:
    """CPU per 1,000 tokens and resident memory, per stage; memory per active job."""
    per_job = {
        s: per_job_kb(usage.rss_before[s], usage.rss_peak[s], active_jobs)
        for s in PER_JOB_STAGES
        if s in usage.rss_before and s in usage.rss_peak
    }
    known = [v for v in per_job.values() if v is not None]
    return {
        "cpu_s": usage.cpu_s,
        "other_processes_cores": usage.other_cpu_s / usage.wall_s if usage.wall_s > 0 else None,
        "cpu_s_per_1k_tokens": {s: per_thousand(c, tokens) for s, c in usage.cpu_s.items()},
        "rss_mb_peak": {s: v / 2**20 for s, v in usage.rss_peak.items()},
        "memory_kb_per_active_job": per_job,
        "memory_kb_per_active_job_total": sum(known) if known else None,
    }


def throttled_scenario(
    traces: Sequence[JobTrace],
    *,
    ttft_s: float,
    rate: float,
    tokens: int,
    usage: StageUsage,
    concurrency: int,
    request_began: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """N streams at R tokens/s: delivered rate, latency, completion against the ideal."""
    ok = [t for t in traces if t.ok]
    total = token_count(traces)
    first = min((t.submitted_at for t in traces), default=0.0)
    last = max((t.done_at or t.submitted_at for t in traces), default=0.0)
    ideal = ttft_s + tokens / rate
    completions = [t.done_at - t.submitted_at for t in ok if t.done_at is not None]
    return {
        "jobs": len(traces),
        "ok_jobs": len(ok),
        "errors": _errors(traces),
        "short_jobs": sum(1 for t in ok if len(t.received) != tokens),
        "tokens": total,
        "wall_s": last - first,
        "delivered_tokens_per_s": total / (last - first) if last > first else 0.0,
        **latency_numbers(traces, ttft_s, rate, request_began),
        "ideal_completion_s": ideal,
        "completion_s": summary(completions),
        "completion_vs_ideal": summary([c / ideal for c in completions]),
        **usage_numbers(usage, total, concurrency),
    }


def makespan_rate(traces: Sequence[JobTrace]) -> tuple[float, float]:
    """Tokens delivered per second from the first submission to the last token; the span."""
    received = [r for t in traces for r in t.received]
    if not received:
        return 0.0, 0.0
    span = max(received) - min(t.submitted_at for t in traces)
    return (len(received) / span if span > 0 else 0.0), span


def unthrottled_scenario(
    traces: Sequence[JobTrace], *, usage: StageUsage, concurrency: int
) -> dict[str, Any]:
    """Closed loop with the simulator unthrottled: the delivered rate it sustains.

    The rate is every delivered token over the span from the first submission to the
    last token, start-up and drain included, the same way for both paths.
    """
    ok = [t for t in traces if t.ok]
    completions = [t.done_at - t.submitted_at for t in ok if t.done_at is not None]
    relay = [r - w for t in ok for r, w in zip(t.received, t.worker_ts, strict=False)]
    rate, span = makespan_rate(traces)
    tokens = token_count(traces)
    return {
        "jobs": len(traces),
        "ok_jobs": len(ok),
        "errors": _errors(traces),
        "tokens": tokens,
        "span_s": span,
        "delivered_tokens_per_s": rate,
        "completion_s": summary(completions),
        "relay_latency_ms": summary(relay, 1000) if relay else None,
        **usage_numbers(usage, tokens, concurrency),
    }
