"""The `sluice replay` command: a job's stream again, or a sink rebuilt from the log."""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime

import typer

from sluice.jobids import is_job_id
from sluice.joblog import read_job_log
from sluice.replay import ReplayError, chosen_attempt, replay
from sluice.settings import get_settings


def parse_speed(value: str) -> float | None:
    if value == "max":
        return None
    try:
        speed = float(value)
    except ValueError:
        raise typer.BadParameter(
            "speed is a number (1 = real time, 10 = ten times) or max"
        ) from None
    if speed <= 0:
        raise typer.BadParameter("speed must be positive")
    return speed


def replay_command(
    job_id: str = typer.Argument(..., help="the job to replay"),
    speed: str = typer.Option("1", help="1 = original timing, 10 = ten times faster, max"),
    attempt: int | None = typer.Option(None, help="default: the attempt whose result stands"),
    json_output: bool = typer.Option(False, "--json", help="one JSON object per token"),
) -> None:
    """Replay a job's token stream from the tokens topic, with its original timing."""
    if not is_job_id(job_id):
        raise typer.BadParameter(f"{job_id!r} is not a job id", param_hint="JOB_ID")
    pace = parse_speed(speed)
    log = read_job_log(get_settings().kafka_bootstrap, job_id)
    try:
        chosen = chosen_attempt(log, attempt)
    except ReplayError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    took = replay(log.tokens_of(chosen), pace, json_output, out=sys.stdout)
    typer.echo(
        f"replayed attempt {chosen}: {len(log.tokens_of(chosen))} tokens in {took:.2f}s", err=True
    )


def parse_offsets(specs: list[str]) -> dict[tuple[str, int], int] | None:
    if not specs:
        return None
    offsets: dict[tuple[str, int], int] = {}
    for spec in specs:
        parts = spec.rsplit(":", 2)
        if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
            raise typer.BadParameter(f"{spec!r} is not TOPIC:PARTITION:OFFSET")
        topic = parts[0]
        offsets[(topic, int(parts[1]))] = int(parts[2])
    return offsets


def rebuild_command(
    target: str, since: datetime | None, from_offset: list[str], clickhouse_url: str | None
) -> None:
    """Rebuild the ClickHouse or Postgres tables from the log, then report what it wrote."""
    from sinks.rebuild import StartPoint, rebuild

    if target not in ("clickhouse", "postgres"):
        raise typer.BadParameter("--to-sink is clickhouse or postgres")
    settings = get_settings()
    start = StartPoint(since=since, offsets=parse_offsets(from_offset))
    try:
        report = asyncio.run(
            rebuild(
                target,  # type: ignore[arg-type]
                settings.kafka_bootstrap,
                start,
                clickhouse_url=clickhouse_url or settings.resolved_clickhouse_url,
                database_url=settings.resolved_database_url,
            )
        )
    except Exception as exc:  # a clear line for the operator, not a trace
        hint = ""
        if "chdb" in (clickhouse_url or settings.resolved_clickhouse_url):
            hint = " (an embedded ClickHouse opens in one process only: stop `sluice sinks` "
            hint += "or pass --clickhouse-url with another directory)"
        typer.echo(f"rebuild failed: {type(exc).__name__}: {exc}{hint}", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"rebuilt {target}: read {report.messages} messages, wrote {report.rows} rows, "
        f"skipped {report.skipped} undecodable"
    )
