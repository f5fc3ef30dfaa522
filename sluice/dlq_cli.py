"""`sluice dlq list | requeue JOB_ID`: what is on the dead-letter queue, and running a job again."""

from __future__ import annotations

from datetime import UTC, datetime

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

dlq_app = typer.Typer(no_args_is_help=True)
console = Console(highlight=False, soft_wrap=True)
errors = Console(stderr=True, highlight=False, soft_wrap=True)


def _when(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


@dlq_app.command("list")
def list_letters(
    limit: int = typer.Option(50, min=1, help="the newest this many letters"),
    json_output: bool = typer.Option(False, "--json", help="one JSON object per line"),
) -> None:
    """The dead letters, newest last: job, when, where from, last error, why."""
    from producers.dlq import DeadLetterError, read_dead_letters
    from sluice.settings import get_settings

    try:
        stored = read_dead_letters(get_settings().kafka_bootstrap)
    except DeadLetterError as exc:
        errors.print(f"[red]✗[/] {escape(str(exc))}")
        raise typer.Exit(1) from None
    readable = [s for s in stored if s.letter is not None]
    readable.sort(key=lambda s: s.letter.dead_lettered_at if s.letter else 0.0)
    shown = readable[-limit:]
    if json_output:
        for s in shown:
            assert s.letter is not None
            typer.echo(s.letter.model_dump_json())
        return
    table = Table(box=None, pad_edge=False)
    for column in ("job_id", "when (UTC)", "from", "attempt", "error", "reason"):
        table.add_column(column, overflow="fold")
    for s in shown:
        letter = s.letter
        assert letter is not None
        table.add_row(
            letter.job_id or "-",
            _when(letter.dead_lettered_at),
            f"{letter.source_topic}[{letter.partition}]@{letter.offset}",
            str(letter.attempt or "-"),
            letter.error_code or "-",
            escape(letter.reason),
        )
    console.print(table)
    unreadable = len(stored) - len(readable)
    console.print(
        f"{len(shown)} of {len(readable)} letters"
        + (f"; {unreadable} unreadable" if unreadable else "")
    )


@dlq_app.command()
def requeue(job_id: str) -> None:
    """Run a dead-lettered job again: a new attempt, with a fresh set of tries."""
    from producers.dlq import DeadLetterError
    from producers.dlq import requeue as requeue_job
    from sluice.settings import get_settings

    try:
        job = requeue_job(get_settings().kafka_bootstrap, job_id)
    except DeadLetterError as exc:
        errors.print(f"[red]✗[/] {escape(str(exc))}")
        raise typer.Exit(1) from None
    console.print(
        f"[green]✓[/] requeued {job.job_id} on jobs.{job.priority.value} as attempt {job.attempt}"
    )
