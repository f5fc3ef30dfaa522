"""`python -m bench.run`: start a private stack, run every scenario, write the results.

python -m bench.run                       # full run, about 8 minutes
python -m bench.run --quick               # smaller, about 2 minutes
python -m bench.run --concurrency 10,100,300 --tokens 100 --rate 20
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
import uvloop

from bench.config import RESULTS_DIR, BenchConfig, StackPorts, quick_overrides
from bench.publish import publish_path
from bench.report import write_all
from bench.scenarios import Scenarios, say
from bench.stack import BenchStack, BenchStackError

cli = typer.Typer(add_completion=False, help=__doc__)


PROJECT = Path(__file__).resolve().parent.parent


def _git(*args: str) -> str:
    argv = ["git", "-C", str(PROJECT), *args]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    return done.stdout.rstrip("\n")  # porcelain lines start with a meaningful space


def _meta(note: str) -> dict[str, Any]:
    status = _git("status", "--porcelain", "--untracked-files=no").splitlines()
    changed = [line[3:] for line in status if not line[3:].startswith("bench/")]
    return {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": _git("rev-parse", "--short", "HEAD") or "unknown",
        "dirty": bool(changed),
        "changed_files": changed,
        "code": str(Path.cwd()),
        "note": note,
        "cpus": os.cpu_count(),
        "load_before": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def _config_json(cfg: BenchConfig) -> dict[str, Any]:
    out = dataclasses.asdict(cfg)
    out["home"] = str(cfg.home)
    out["results_dir"] = str(cfg.results_dir)
    out["ports"] = cfg.ports.env()
    out["worker_concurrency"] = cfg.worker_concurrency
    out["ideal_completion_s"] = cfg.ideal_completion_s
    return out


SCENARIOS = ("throttled", "submissions", "unthrottled", "kafka", "publish", "profile")


async def run_scenarios(cfg: BenchConfig, stack: BenchStack) -> dict[str, Any]:
    users = max(*cfg.concurrency, cfg.submit_concurrency)
    bench = Scenarios(cfg, stack, await asyncio.to_thread(stack.api_tokens, users))
    results: dict[str, Any] = {"throttled": [], "unthrottled": []}
    say("warming up")
    errors = await bench.warm_up()
    if errors:
        raise BenchStackError(f"warm-up jobs failed: {sorted(set(errors))[:3]}")
    for c in cfg.concurrency if "throttled" in cfg.scenarios else ():
        say(f"throttled: {c} streams x {cfg.tokens} tokens at {cfg.rate:g} tokens/s")
        results["throttled"].append(await bench.throttled(c))
        _say_throttled(results["throttled"][-1])
    if "submissions" in cfg.scenarios:
        say(f"HTTP submissions: {cfg.submissions} from {cfg.submit_concurrency} clients")
        results["submissions"] = await bench.submissions()
        for kind, sub in results["submissions"].items():
            say(f"  {kind}: {sub['accepted_per_s']:.0f} submissions/s")
    for c in cfg.concurrency if "unthrottled" in cfg.scenarios else ():
        say(f"unthrottled: {c} streams, closed loop for {cfg.unthrottled_s:g} s")
        results["unthrottled"].append(await bench.unthrottled(c))
        u = results["unthrottled"][-1]
        say(
            f"  pipeline {u['pipeline']['delivered_tokens_per_s']:.0f} tokens/s, "
            f"direct {u['direct']['delivered_tokens_per_s']:.0f} tokens/s"
        )
    if "kafka" in cfg.scenarios:
        say("bare Kafka produce + consume")
        results["kafka"] = await bench.kafka([c * cfg.rate for c in cfg.concurrency])
        say(f"  max {results['kafka']['max']['msgs_per_s']:.0f} msgs/s")
    if "publish" in cfg.scenarios:
        say("the worker's publish path alone")
        results["publish"] = await publish_path()
        cpu = results["publish"]["cpu_us_per_token"]
        say(f"  publisher {cpu['publisher']:.0f} us/token, Topic.send {cpu['topic_send']:.0f}")
    if cfg.profile and "profile" in cfg.scenarios:
        say("profiling worker and api under load (pyinstrument)")
        written = await bench.profile(cfg.results_dir / "profiles" / cfg.name)
        results["profiles"] = {
            k: str(Path(v).relative_to(cfg.results_dir)) for k, v in written.items()
        }
    return results


def _say_throttled(t: dict[str, Any]) -> None:
    for kind in ("direct", "pipeline"):
        s = t[kind]
        say(
            f"  {kind:<8} {s['ok_jobs']}/{s['jobs']} jobs, "
            f"{s['delivered_tokens_per_s']:.0f} tokens/s, "
            f"added latency p99 {s['added_latency_ms']['p99'] or 0:.1f} ms, "
            f"completion p99 {s['completion_s']['p99'] or 0:.2f} s"
        )


def run(cfg: BenchConfig, note: str = "") -> int:
    stack = BenchStack(cfg)
    meta = _meta(note)
    began = time.monotonic()
    say(f"bench stack: home {cfg.home}, Kafka {cfg.ports.bootstrap}, api {cfg.ports.api_url}")
    try:
        stack.up()
        results = uvloop.run(run_scenarios(cfg, stack))
    except BenchStackError as exc:
        say(f"bench failed: {exc}")
        return 1
    finally:
        if not cfg.keep_stack:
            say("stopping the bench stack")
            try:
                stack.down()
            except BenchStackError as exc:
                say(f"could not stop the bench stack: {exc}")
    meta["took_s"] = time.monotonic() - began
    results = {"name": cfg.name, "meta": meta, "config": _config_json(cfg), **results}
    for path in write_all(results, cfg.results_dir):
        say(f"wrote {path}")
    return 0


@cli.command()
def main(
    quick: bool = typer.Option(False, "--quick", help="smaller scenarios, about 2 minutes"),
    concurrency: str | None = typer.Option(None, help="concurrent streams, e.g. 10,100,300"),
    tokens: int | None = typer.Option(None, help="M: tokens per job"),
    rate: float | None = typer.Option(None, help="R: tokens/s per stream when throttled"),
    ttft_ms: int | None = typer.Option(None, help="the simulator's TTFT when throttled"),
    name: str | None = typer.Option(None, help="results name; default: a timestamp"),
    home: Path = typer.Option(Path(".sluice/bench"), help="the bench stack's SLUICE_HOME"),
    port_offset: int = typer.Option(10_000, help="added to every default port of the stack"),
    profile: bool | None = typer.Option(None, help="profile worker and api (default: not quick)"),
    keep_stack: bool = typer.Option(False, help="leave the bench stack running afterwards"),
    results_dir: Path = typer.Option(RESULTS_DIR, help="where results are written"),
    only: str | None = typer.Option(None, help=f"a subset of {','.join(SCENARIOS)}"),
    env: list[str] = typer.Option([], help="KEY=VALUE for the stack's processes (repeatable)"),
    note: str = typer.Option("", help="recorded with the results, e.g. what the code holds"),
) -> None:
    """Run the benchmark on a private stack and write bench/results/<name>.{json,md,png}."""
    overrides: dict[str, Any] = quick_overrides() if quick else {}
    if concurrency:
        overrides["concurrency"] = tuple(int(c) for c in concurrency.split(","))
    for key, value in (("tokens", tokens), ("rate", rate), ("ttft_ms", ttft_ms)):
        if value is not None:
            overrides[key] = value
    if profile is not None:
        overrides["profile"] = profile
    if only:
        overrides["scenarios"] = tuple(s for s in only.split(",") if s)
        unknown = set(overrides["scenarios"]) - set(SCENARIOS)
        if unknown:
            raise typer.BadParameter(f"unknown scenarios {sorted(unknown)}", param_hint="--only")
    if env:
        overrides["extra_env"] = dict(item.split("=", 1) for item in env)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    cfg = BenchConfig(
        name=name or (f"quick-{stamp}" if quick else stamp),
        home=home,
        ports=StackPorts(port_offset),
        keep_stack=keep_stack,
        results_dir=results_dir,
        **overrides,
    )
    raise typer.Exit(run(cfg, note))


if __name__ == "__main__":
    cli()
