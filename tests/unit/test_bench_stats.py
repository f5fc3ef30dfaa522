"""The benchmark's arithmetic: percentiles, the simulator's schedule, per-token figures."""

from __future__ import annotations

import pytest

from bench.stats import (
    estimate_schedule_start,
    per_job_kb,
    per_thousand,
    percentile,
    rate_in_window,
    ratio,
    scheduled_offset,
    summary,
    token_delays,
)


def test_percentiles_interpolate_between_ranks() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) is None


def test_summary_scales_seconds_to_milliseconds() -> None:
    s = summary([0.001, 0.002, 0.003], scale=1000)
    assert s["p50"] == pytest.approx(2.0)
    assert s["max"] == pytest.approx(3.0)
    assert summary([])["p99"] is None


def test_the_simulator_sends_token_i_at_ttft_plus_i_over_r() -> None:
    assert scheduled_offset(0, ttft_s=0.15, rate=20) == pytest.approx(0.15)
    assert scheduled_offset(10, ttft_s=0.15, rate=20) == pytest.approx(0.65)
    assert scheduled_offset(10, ttft_s=0.0, rate=0) == 0.0  # unthrottled: all at once


def test_schedule_start_is_the_tightest_upper_bound_from_observations() -> None:
    start, ttft, rate = 1000.0, 0.15, 20.0
    delays = [0.004, 0.001, 0.030, 0.002]  # what each token took to be seen
    seen = [start + scheduled_offset(i, ttft, rate) + d for i, d in enumerate(delays)]
    estimate = estimate_schedule_start(range(4), seen, ttft, rate)
    assert estimate == pytest.approx(start + 0.001)  # late by the smallest delay only
    assert estimate_schedule_start([], [], ttft, rate) is None


def test_token_delays_are_receipt_minus_scheduled_send() -> None:
    delays = token_delays([0, 2], [10.2, 10.35], start=10.0, ttft_s=0.1, rate=10.0)
    assert delays == pytest.approx([0.1, 0.05])


def test_ratios_and_rates_refuse_to_divide_by_nothing() -> None:
    assert ratio(3.0, 4.0) == 0.75
    assert ratio(None, 4.0) is None
    assert ratio(3.0, 0.0) is None
    assert rate_in_window([0.5, 1.0, 1.5, 2.5], 1.0, 2.0) == 2.0  # 1.0 and 1.5
    assert rate_in_window([1.0], 2.0, 2.0) == 0.0


def test_cpu_per_thousand_tokens_and_memory_per_job() -> None:
    assert per_thousand(0.5, 2000) == pytest.approx(0.25)
    assert per_thousand(0.5, 0) is None
    assert per_job_kb(rss_before=10 << 20, rss_peak=(10 << 20) + 100 * 1024 * 40, jobs=100) == 40
    assert per_job_kb(rss_before=10 << 20, rss_peak=9 << 20, jobs=10) == 0  # shrinking is 0
    assert per_job_kb(1, 2, 0) is None
