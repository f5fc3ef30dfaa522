"""The report: aims checked against results, the Markdown tables, the files written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.aims import check_aims
from bench.report import markdown, write_all


def side(tokens_per_s: float, p99_ms: float, completion_p99: float, kb: float) -> dict[str, Any]:
    pcts = {"p50": p99_ms / 2, "p95": p99_ms * 0.9, "p99": p99_ms, "max": p99_ms}
    return {
        "jobs": 4,
        "ok_jobs": 4,
        "delivered_tokens_per_s": tokens_per_s,
        "added_latency_ms": pcts,
        "added_latency_upper_ms": pcts,
        "relay_latency_ms": pcts,
        "ttft_overhead_ms": pcts,
        "completion_s": {"p50": completion_p99 / 2, "p99": completion_p99},
        "completion_vs_ideal": {"p50": 1.0, "p99": 1.05},
        "cpu_s_per_1k_tokens": {"worker": 0.5, "relay": 0.25},
        "rss_mb_peak": {"worker": 90.0},
        "memory_kb_per_active_job": {"worker": kb / 2, "relay": kb / 2, "sinks": 0.0},
        "memory_kb_per_active_job_total": kb,
    }


def results() -> dict[str, Any]:
    return {
        "name": "unit",
        "meta": {
            "started_at": "2026-01-01T00:00:00+00:00",
            "commit": "abc1234",
            "dirty": False,
            "cpus": 2,
            "load_before": "0.1 0.1 0.1",
            "took_s": 1.0,
        },
        "config": {
            "tokens": 100,
            "rate": 20.0,
            "ttft_ms": 150,
            "ideal_completion_s": 5.15,
            "unthrottled_s": 15.0,
            "worker_concurrency": 316,
            "quick": False,
        },
        "throttled": [
            {
                "concurrency": 300,
                "direct": side(5800.0, 5.0, 5.3, 0.0),
                "pipeline": side(5700.0, 40.0, 5.6, 45.0),
            }
        ],
        "unthrottled": [
            {
                "concurrency": 100,
                "direct": side(4000.0, 1.0, 1.0, 0.0),
                "pipeline": side(2000.0, 1.0, 1.0, 0.0),
            }
        ],
        "kafka": {
            "max": {"rate_target": None, "msgs_per_s": 40000.0, "latency_ms": {}, "value_bytes": 9},
            "paced": [
                {
                    "rate_target": 6000.0,
                    "msgs_per_s": 6000.0,
                    "latency_ms": {"p99": 8.0},
                    "value_bytes": 9,
                },
            ],
        },
    }


def test_aims_are_met_or_not_by_the_numbers() -> None:
    aims = {a.target: a for a in check_aims(results())}

    assert aims[">= 0.60x"].met is False  # 2000 / 4000 tokens/s
    assert "0.50x" in aims[">= 0.60x"].reached
    assert aims["< 50 ms"].met is True  # p99 40 ms at 300 streams
    assert aims["<= 1.10x"].met is True  # 5.6 s / 5.3 s
    assert aims["< 50 KB"].met is True


def test_aims_without_measurements_are_not_applicable() -> None:
    empty = {**results(), "throttled": [], "unthrottled": []}

    assert [a.met for a in check_aims(empty)] == [None, None]


def test_the_markdown_shows_each_scenario_against_its_baselines() -> None:
    text = markdown(results())

    assert "| 300 | 4/4 | 5700 | 5800 | 0.98x |" in text
    assert "| 100 | 2000 | 4000 | 0.50x | 0.05x |" in text  # vs direct, vs bare Kafka
    assert "5.0x" in text  # pipeline p99 40 ms over bare Kafka's 8 ms at 6000 msgs/s
    assert "**no**" in text and "commit `abc1234`" in text


def test_write_all_writes_json_markdown_plots_and_latest(tmp_path: Path) -> None:
    paths = write_all(results(), tmp_path)

    names = sorted(p.name for p in paths)
    assert names == [
        "latest.md",
        "unit-latency.png",
        "unit-throughput.png",
        "unit.json",
        "unit.md",
    ]
    assert all(p.stat().st_size > 0 for p in paths)
    saved = json.loads((tmp_path / "unit.json").read_text())
    assert [a["met"] for a in saved["aims"]] == [False, True, True, True]
    assert (tmp_path / "latest.md").read_text().endswith((tmp_path / "unit.md").read_text())
