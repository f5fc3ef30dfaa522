"""A run's results as JSON, a Markdown report and two PNG plots."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bench.aims import check_aims
from bench.procs import STAGES
from bench.stats import ratio

Row = Sequence[str]


def fmt(value: Any, pattern: str = "{:.1f}") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, int | float):
        return pattern.format(value)
    return str(value)


def table(header: Row, rows: Sequence[Row]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _pcts(summary: dict[str, Any] | None, keys: tuple[str, ...] = ("p50", "p95", "p99")) -> str:
    if not summary:
        return "n/a"
    return " / ".join(fmt(summary.get(k)) for k in keys)


def _kafka_p99_at(results: dict[str, Any], rate: float) -> float | None:
    for paced in results.get("kafka", {}).get("paced", []):
        if paced["rate_target"] == rate:
            value: float | None = paced["latency_ms"]["p99"]
            return value
    return None


def _throttled_tables(results: dict[str, Any]) -> list[str]:
    rate = results["config"]["rate"]
    speed, latency = [], []
    for t in results.get("throttled", []):
        c, p, d = t["concurrency"], t["pipeline"], t["direct"]
        speed.append(
            [
                str(c),
                f"{p['ok_jobs']}/{p['jobs']}",
                fmt(p["delivered_tokens_per_s"], "{:.0f}"),
                fmt(d["delivered_tokens_per_s"], "{:.0f}"),
                fmt(ratio(p["delivered_tokens_per_s"], d["delivered_tokens_per_s"]), "{:.2f}x"),
                _pcts(p["completion_s"], ("p50", "p99")),
                _pcts(d["completion_s"], ("p50", "p99")),
                fmt(ratio(p["completion_s"]["p99"], d["completion_s"]["p99"]), "{:.2f}x"),
                fmt(p["completion_vs_ideal"]["p99"], "{:.2f}x"),
            ]
        )
        kafka_p99 = _kafka_p99_at(results, c * rate)
        latency.append(
            [
                str(c),
                _pcts(p["added_latency_ms"]),
                fmt(p["added_latency_upper_ms"]["p99"]),
                _pcts(p["relay_latency_ms"]),
                _pcts(d["added_latency_ms"]),
                fmt(kafka_p99),
                fmt(ratio(p["added_latency_ms"]["p99"], kafka_p99), "{:.1f}x"),
                _pcts(p["ttft_overhead_ms"], ("p50", "p99")),
                _pcts(p.get("accept_ms"), ("p50", "p99")),
                _pcts(p.get("submit_to_worker_start_ms"), ("p50", "p99")),
                _pcts(d["ttft_overhead_ms"], ("p50", "p99")),
            ]
        )
    return [
        table(
            [
                "streams",
                "ok jobs",
                "pipeline tok/s",
                "direct tok/s",
                "ratio",
                "completion p50 / p99 s, pipeline",
                "direct",
                "p99 ratio",
                "p99 vs ideal",
            ],
            speed,
        ),
        table(
            [
                "streams",
                "added latency p50 / p95 / p99 ms, pipeline",
                "upper bound p99",
                "worker→client hop p50 / p95 / p99",
                "direct p50 / p95 / p99",
                "bare Kafka p99 at same rate",
                "pipeline p99 / Kafka p99",
                "TTFT overhead p50 / p99 ms, pipeline",
                "of which: 202 received",
                "worker started",
                "TTFT overhead, direct",
            ],
            latency,
        ),
    ]


def _unthrottled_table(results: dict[str, Any]) -> str:
    kafka_max = results.get("kafka", {}).get("max", {}).get("msgs_per_s")
    rows = []
    for u in results.get("unthrottled", []):
        p, d = u["pipeline"], u["direct"]
        rows.append(
            [
                str(u["concurrency"]),
                fmt(p["delivered_tokens_per_s"], "{:.0f}"),
                fmt(d["delivered_tokens_per_s"], "{:.0f}"),
                fmt(ratio(p["delivered_tokens_per_s"], d["delivered_tokens_per_s"]), "{:.2f}x"),
                fmt(ratio(p["delivered_tokens_per_s"], kafka_max), "{:.2f}x"),
                _pcts(p["relay_latency_ms"], ("p50", "p99")),
                f"{p['ok_jobs']}/{p['jobs']}",
            ]
        )
    header = [
        "streams",
        "pipeline tok/s",
        "direct tok/s",
        "vs direct",
        "vs bare Kafka max",
        "worker→client hop p50 / p99 ms",
        "ok jobs",
    ]
    return table(header, rows)


def _stage_table(results: dict[str, Any], key: str, pattern: str) -> str:
    rows = []
    for section in ("throttled", "unthrottled"):
        for s in results.get(section, []):
            for kind in ("pipeline", "direct"):
                values = s[kind][key]
                label = f"{section} {s['concurrency']} {kind}"
                rows.append([label, *(fmt(values.get(stage), pattern) for stage in STAGES)])
    return table(["scenario", *STAGES], rows)


def _memory_table(results: dict[str, Any]) -> str:
    rows = []
    for t in results.get("throttled", []):
        per_job = t["pipeline"]["memory_kb_per_active_job"]
        rows.append(
            [
                str(t["concurrency"]),
                *(fmt(per_job.get(s), "{:.0f}") for s in ("worker", "relay", "sinks")),
                fmt(t["pipeline"]["memory_kb_per_active_job_total"], "{:.0f}"),
            ]
        )
    return table(["active jobs", "worker KB/job", "relay KB/job", "sinks KB/job", "total"], rows)


def _kafka_table(results: dict[str, Any]) -> str:
    kafka = results.get("kafka", {})
    runs = [kafka["max"], *kafka.get("paced", [])] if kafka else []
    rows = [
        [
            "max" if k["rate_target"] is None else fmt(k["rate_target"], "{:.0f}"),
            fmt(k["msgs_per_s"], "{:.0f}"),
            _pcts(k["latency_ms"]),
            str(k["value_bytes"]),
        ]
        for k in runs
    ]
    return table(["target msgs/s", "consumed msgs/s", "latency p50 / p95 / p99 ms", "bytes"], rows)


def _submissions_table(sub: dict[str, Any]) -> str:
    rows = [
        [
            str(s["users"]),
            str(s["concurrency"]),
            f"{s['accepted']}/{s['submissions']}",
            fmt(s["accepted_per_s"], "{:.0f}"),
            _pcts(s["latency_ms"]),
            str(s["drained_jobs"]),
        ]
        for s in sub.values()
    ]
    header = ["users", "clients", "accepted", "submissions/s", "latency p50 / p95 / p99 ms", "ran"]
    return table(header, rows)


def _publish_line(publish: dict[str, Any] | None) -> str:
    if not publish:
        return "n/a"
    cpu, rate = publish["cpu_us_per_token"], publish["tokens_per_s"]
    return (
        f"FaustPublisher.publish_token {fmt(cpu['publisher'])} µs "
        f"({fmt(rate['publisher'], '{:.0f}')} tokens/s) against Faust's Topic.send "
        f"{fmt(cpu['topic_send'])} µs ({fmt(rate['topic_send'], '{:.0f}')} tokens/s): "
        f"{fmt(ratio(cpu['publisher'], cpu['topic_send']), '{:.2f}x')} the CPU."
    )


def markdown(results: dict[str, Any]) -> str:
    cfg, meta = results["config"], results["meta"]
    aims = check_aims(results)
    sub = results.get("submissions")
    lines = [
        f"# sluice benchmark `{results['name']}`",
        "",
        f"Run {meta['started_at']} on commit `{meta['commit']}`"
        f"{' (working tree had other changes)' if meta['dirty'] else ''}"
        f"{'; ' + meta['note'] if meta.get('note') else ''}; {meta['cpus']} CPUs, "
        f"load average before {meta['load_before']}; took {meta['took_s']:.0f} s. "
        f"Jobs of M={cfg['tokens']} tokens; throttled scenarios at R={cfg['rate']:g} tokens/s "
        f"with TTFT {cfg['ttft_ms']} ms (ideal completion {cfg['ideal_completion_s']:.2f} s); "
        f"unthrottled scenarios run {cfg['unthrottled_s']:g} s closed loops with TTFT 0. "
        f"Worker concurrency {cfg['worker_concurrency']}."
        f"{' Quick mode.' if cfg['quick'] else ''} How each number is measured: bench/README.md.",
        "",
        "## Aims",
        "",
        table(
            ["aim", "target", "reached", "met"],
            [
                [a.what, a.target, a.reached, {True: "yes", False: "**no**", None: "n/a"}[a.met]]
                for a in aims
            ],
        ),
        "",
        f"![latency]({results['name']}-latency.png) "
        f"![throughput]({results['name']}-throughput.png)",
        "",
        "## Throttled: N streams at R tokens/s, direct (baseline a) vs pipeline",
        "",
        *(part + "\n" for part in _throttled_tables(results)),
        "## Unthrottled: sustained delivered rate",
        "",
        _unthrottled_table(results),
        "",
        "## Bare Kafka produce + consume (baseline b)",
        "",
        _kafka_table(results),
        "",
        "## HTTP submissions (one-token jobs, as fast as accepted)",
        "",
        _submissions_table(sub) if sub else "n/a",
        "",
        "## The worker's publish path alone (CPU per token, best of 3 x 20,000)",
        "",
        _publish_line(results.get("publish")),
        "",
        "## CPU seconds per 1,000 delivered tokens, per stage",
        "",
        _stage_table(results, "cpu_s_per_1k_tokens", "{:.3f}"),
        "",
        "## Resident memory, peak MB per stage",
        "",
        _stage_table(results, "rss_mb_peak", "{:.0f}"),
        "",
        "## Memory per active job (peak RSS growth over the idle RSS before the scenario)",
        "",
        _memory_table(results),
        "",
    ]
    if results.get("profiles"):
        lines += ["## Profiles", ""]
        lines += [f"- [{k}]({v})" for k, v in sorted(results["profiles"].items())]
        lines.append("")
    return "\n".join(lines)


Pick = Callable[[dict[str, Any]], Any]


def _path(*keys: str) -> Pick:
    """Reads section[k1][k2]... ; None where a level is missing."""

    def pick(section: dict[str, Any]) -> Any:
        value: Any = section
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        return value

    return pick


def _plotted(ax: Any) -> bool:
    return any(len(line.get_xdata()) for line in ax.get_lines())


def _series(sections: list[dict[str, Any]], pick: Pick) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for s in sections:
        value = pick(s)
        if value is not None:
            xs.append(s["concurrency"])
            ys.append(float(value))
    return xs, ys


def plot_latency(results: dict[str, Any], path: Path) -> None:
    throttled = results.get("throttled", [])
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for q, style in (("p50", "o-"), ("p95", "s-"), ("p99", "^-")):
        xs, ys = _series(throttled, _path("pipeline", "added_latency_ms", q))
        ax.plot(xs, ys, style, label=f"pipeline {q}")
    xs, ys = _series(throttled, _path("pipeline", "added_latency_upper_ms", "p99"))
    ax.plot(xs, ys, "^:", label="pipeline p99, upper bound")
    xs, ys = _series(throttled, _path("direct", "added_latency_ms", "p99"))
    ax.plot(xs, ys, "x--", label="direct p99")
    rate = results["config"]["rate"]
    xs, ys = _series(throttled, lambda t: _kafka_p99_at(results, t["concurrency"] * rate))
    ax.plot(xs, ys, "d--", label="bare Kafka p99, same msgs/s")
    if _plotted(ax):
        ax.set_xscale("log")
        ax.set_yscale("symlog", linthresh=1.0)
        ax.set_ylim(bottom=0)
    ax.set_xlabel("concurrent streams")
    ax.set_ylabel("added latency per token (ms)")
    ax.set_title(f"Added latency per token at {rate:g} tokens/s per stream")
    ax.grid(True, which="both", alpha=0.3)
    if _plotted(ax):
        ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_throughput(results: dict[str, Any], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for section, label in (("throttled", "throttled"), ("unthrottled", "unthrottled")):
        for kind, style in (("pipeline", "o-"), ("direct", "x--")):
            xs, ys = _series(results.get(section, []), _path(kind, "delivered_tokens_per_s"))
            ax.plot(xs, ys, style, label=f"{label}, {kind}")
    kafka_max = results.get("kafka", {}).get("max", {}).get("msgs_per_s")
    if kafka_max and _plotted(ax):
        ax.axhline(kafka_max, linestyle=":", color="grey", label="bare Kafka max (msgs/s)")
    if _plotted(ax):
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.set_xlabel("concurrent streams")
    ax.set_ylabel("delivered tokens/s at the clients")
    ax.set_title("Delivered tokens/s")
    ax.grid(True, which="both", alpha=0.3)
    if _plotted(ax):
        ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_all(results: dict[str, Any], out_dir: Path) -> list[Path]:
    """<name>.json, <name>.md, two PNGs, and latest.md; the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    name = results["name"]
    results = {**results, "aims": [a.as_json() for a in check_aims(results)]}
    paths = [out_dir / f"{name}.json", out_dir / f"{name}.md"]
    paths[0].write_text(json.dumps(results, indent=2, sort_keys=False) + "\n")
    text = markdown(results)
    paths[1].write_text(text)
    plot_latency(results, out_dir / f"{name}-latency.png")
    plot_throughput(results, out_dir / f"{name}-throughput.png")
    latest = out_dir / "latest.md"
    latest.write_text(f"<!-- copy of {name}.md, the latest run -->\n{text}")
    return [*paths, out_dir / f"{name}-latency.png", out_dir / f"{name}-throughput.png", latest]


def main() -> None:
    """`python -m bench.report results/<name>.json`: render a run's Markdown and plots again."""
    import sys

    path = Path(sys.argv[1])
    results = json.loads(path.read_text())
    results.pop("aims", None)  # recomputed from the figures
    for written in write_all(results, path.parent):
        print(f"wrote {written}")


if __name__ == "__main__":
    main()
