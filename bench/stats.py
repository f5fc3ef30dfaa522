"""Pure arithmetic of the benchmark: percentiles, the simulator's schedule, ratios.

No I/O here, so every number the report prints can be unit-tested.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

PERCENTILES = (50, 95, 99)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) with linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary(values: Sequence[float], scale: float = 1.0) -> dict[str, float | None]:
    """p50, p95, p99 and max of `values`, each multiplied by `scale` (1000: s -> ms)."""
    out: dict[str, float | None] = {}
    for q in PERCENTILES:
        p = percentile(values, q)
        out[f"p{q}"] = None if p is None else p * scale
    out["max"] = max(values) * scale if values else None
    return out


def scheduled_offset(seq: int, ttft_s: float, rate: float) -> float:
    """Seconds after the request arrived at which the simulator sends content token `seq`.

    The simulator paces on an absolute schedule: TTFT, then one token every 1/R.
    """
    return ttft_s if rate <= 0 else ttft_s + seq / rate


def estimate_schedule_start(
    seqs: Sequence[int], observed: Sequence[float], ttft_s: float, rate: float
) -> float | None:
    """When the simulator's schedule for one stream began, from when its tokens were seen.

    No token can be seen before it is sent, so each observation bounds the start from
    above: start <= observed_i - offset(i). The tightest bound is the estimate; it is
    late by the smallest delay any token of the stream had (sub-millisecond on one host).
    """
    if not observed:
        return None
    return min(t - scheduled_offset(s, ttft_s, rate) for s, t in zip(seqs, observed, strict=True))


def token_delays(
    seqs: Sequence[int], received: Sequence[float], start: float, ttft_s: float, rate: float
) -> list[float]:
    """Seconds from each token's scheduled send time to its receipt."""
    return [
        t - (start + scheduled_offset(s, ttft_s, rate)) for s, t in zip(seqs, received, strict=True)
    ]


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


def rate_in_window(times: Iterable[float], start: float, end: float) -> float:
    """Events per second among `times` that fall within [start, end)."""
    if end <= start:
        return 0.0
    return sum(1 for t in times if start <= t < end) / (end - start)


def per_thousand(cpu_s: float, tokens: int) -> float | None:
    """CPU seconds per 1,000 tokens."""
    return None if tokens <= 0 else cpu_s * 1000 / tokens


def per_job_kb(rss_before: int, rss_peak: int, jobs: int) -> float | None:
    """Resident memory added per active job, in KB (negative growth counts as 0)."""
    if jobs <= 0:
        return None
    return max(0, rss_peak - rss_before) / jobs / 1024
