"""From synthetic client traces to a scenario's figures, as the report prints them."""

from __future__ import annotations

import pytest

from bench.analysis import makespan_rate, throttled_scenario, unthrottled_scenario
from bench.load import JobTrace
from bench.procs import StageUsage

TTFT, RATE, TOKENS = 0.1, 10.0, 5
MB = 1 << 20


def paced_trace(
    submitted: float, request_at: float, hop: float, relay: float, tokens: int = TOKENS
) -> JobTrace:
    """A job whose request reached the simulator at `request_at`; each token took `hop` to
    reach the worker and `relay` more to reach the client."""
    seqs = list(range(tokens))
    sent = [request_at + TTFT + i / RATE for i in seqs]
    worker = [t + hop for t in sent]
    received = [t + relay for t in worker]
    return JobTrace(
        submitted_at=submitted,
        job_id=f"job-{submitted}",
        seqs=seqs,
        received=received,
        worker_ts=worker,
        done_at=received[-1] + 0.01,
    )


def usage(cpu: dict[str, float], before: dict[str, int], peak: dict[str, int]) -> StageUsage:
    return StageUsage(wall_s=2.0, cpu_s=cpu, other_cpu_s=1.0, rss_before=before, rss_peak=peak)


def test_a_throttled_scenario_reports_latency_completion_cpu_and_memory() -> None:
    traces = [paced_trace(100.0, 100.05, 0.002, 0.010), paced_trace(100.0, 100.05, 0.002, 0.030)]
    stage = usage(
        cpu={"worker": 0.02, "relay": 0.01},
        before={"worker": 50 * MB, "relay": 40 * MB, "sinks": 60 * MB},
        peak={"worker": 50 * MB + 2 * 30 * 1024, "relay": 40 * MB, "sinks": 60 * MB},
    )
    started = {t.job_id or "": 100.03 for t in traces}  # the worker began 20 ms before arrival

    out = throttled_scenario(
        traces,
        ttft_s=TTFT,
        rate=RATE,
        tokens=TOKENS,
        usage=stage,
        concurrency=2,
        request_began=started,
    )

    assert out["ok_jobs"] == 2 and out["short_jobs"] == 0 and out["tokens"] == 10
    # The schedule's start is estimated from the worker's stamps, so the sim->worker hop's
    # constant part vanishes and the worker->client hop remains.
    assert out["added_latency_ms"]["p50"] == pytest.approx(20.0)
    assert out["added_latency_ms"]["max"] == pytest.approx(30.0)
    # From the worker's start, the request's 20 ms and the hop count too: an upper bound.
    assert out["added_latency_upper_ms"]["max"] == pytest.approx(52.0)
    assert out["relay_latency_ms"]["p50"] == pytest.approx(20.0)
    assert out["ttft_overhead_ms"]["p50"] == pytest.approx(72.0)
    assert out["ideal_completion_s"] == pytest.approx(0.6)
    assert out["cpu_s_per_1k_tokens"]["worker"] == pytest.approx(2.0)
    assert out["memory_kb_per_active_job"] == {"worker": 30.0, "relay": 0.0, "sinks": 0.0}
    assert out["memory_kb_per_active_job_total"] == 30.0
    assert out["other_processes_cores"] == 0.5


def test_direct_traces_are_their_own_first_reader() -> None:
    trace = paced_trace(10.0, 10.0, 0.0, 0.0)
    trace.worker_ts = []
    trace.received = [t + (0.004 if i == 3 else 0.0) for i, t in enumerate(trace.received)]

    out = throttled_scenario(
        [trace], ttft_s=TTFT, rate=RATE, tokens=TOKENS, usage=usage({}, {}, {}), concurrency=1
    )

    assert out["added_latency_ms"]["max"] == pytest.approx(4.0)
    assert out["relay_latency_ms"] is None


def test_failed_and_short_jobs_are_counted_not_hidden() -> None:
    short = paced_trace(1.0, 1.0, 0.0, 0.0, tokens=3)
    failed = JobTrace(submitted_at=1.0, error="submit answered 503")

    out = throttled_scenario(
        [short, failed],
        ttft_s=TTFT,
        rate=RATE,
        tokens=TOKENS,
        usage=usage({}, {}, {}),
        concurrency=2,
    )

    assert out["jobs"] == 2 and out["ok_jobs"] == 1 and out["short_jobs"] == 1
    assert out["errors"] == {"submit answered 503": 1}


def test_the_unthrottled_rate_spans_first_submission_to_last_token() -> None:
    a = JobTrace(submitted_at=10.0, seqs=[0, 1], received=[10.5, 11.0], done_at=11.0)
    b = JobTrace(submitted_at=10.5, seqs=[0, 1], received=[11.5, 12.0], done_at=12.0)

    assert makespan_rate([a, b]) == (2.0, 2.0)
    out = unthrottled_scenario([a, b], usage=usage({}, {}, {}), concurrency=2)
    assert out["delivered_tokens_per_s"] == 2.0 and out["tokens"] == 4
    assert makespan_rate([JobTrace(submitted_at=1.0)]) == (0.0, 0.0)
