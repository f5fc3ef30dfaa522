"""The `sluice replay` command."""

from __future__ import annotations

import sys

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
