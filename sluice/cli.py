"""The `sluice` command. Each subcommand imports its stage lazily so `--help` stays fast."""

from __future__ import annotations

from datetime import datetime

import typer

from sluice.accounts_cli import tokens_app, users_app
from sluice.dlq_cli import dlq_app
from sluice.doctor import doctor
from sluice.sql_cli import sql
from sluice.stack.cli import stack_app
from sluice.test_streaming import test_streaming

app = typer.Typer(no_args_is_help=True, help="LLM jobs as a stream on Apache Kafka.")
app.add_typer(stack_app, name="stack", help="The local stack: Kafka, Postgres, ClickHouse, LLM.")
app.add_typer(users_app, name="users", help="Users of the api.")
app.add_typer(tokens_app, name="tokens", help="API tokens: create, list, revoke.")
app.add_typer(dlq_app, name="dlq", help="The dead-letter queue: list letters, requeue a job.")
app.command("doctor")(doctor)
app.command("test-streaming")(test_streaming)
app.command("sql")(sql)


@app.command("fake-llm")
def fake_llm(
    host: str = "127.0.0.1",
    port: int | None = typer.Option(None, help="default: SLUICE_FAKE_LLM_PORT"),
    tokens_per_second: float | None = typer.Option(None, help="0 = unthrottled"),
    ttft_ms: int | None = typer.Option(None, help="time to first token"),
) -> None:
    """Serve the OpenAI-compatible LLM simulator."""
    from sluice.fakellm.server import serve
    from sluice.settings import get_settings

    s = get_settings()
    serve(
        host=host,
        port=port if port is not None else s.fake_llm_port,
        tokens_per_second=(
            tokens_per_second if tokens_per_second is not None else s.fake_llm_tokens_per_second
        ),
        ttft_ms=ttft_ms if ttft_ms is not None else s.fake_llm_ttft_ms,
    )


@app.command("replay")
def replay(
    job_id: str | None = typer.Argument(None, help="the job to replay (not with --to-sink)"),
    speed: str = typer.Option("1", help="1 = original timing, 10 = ten times faster, max"),
    attempt: int | None = typer.Option(None, help="default: the attempt whose result stands"),
    json_output: bool = typer.Option(False, "--json", help="one JSON object per token"),
    to_sink: str | None = typer.Option(
        None, help="rebuild a sink's tables from the log instead: clickhouse or postgres"
    ),
    since: datetime | None = typer.Option(None, help="with --to-sink: read from this time"),
    from_offset: list[str] = typer.Option(
        [], help="with --to-sink: TOPIC:PARTITION:OFFSET to read from (repeatable)"
    ),
    clickhouse_url: str | None = typer.Option(
        None, help="with --to-sink clickhouse: write here instead (e.g. chdb:///tmp/rebuilt)"
    ),
) -> None:
    """Replay a job's token stream with its original timing, or rebuild a sink from the log."""
    from sluice.replay_cli import rebuild_command, replay_command

    if to_sink is not None:
        rebuild_command(to_sink, since, from_offset, clickhouse_url)
    elif job_id is None:
        raise typer.BadParameter("give a JOB_ID to replay, or --to-sink to rebuild a sink")
    else:
        replay_command(job_id, speed, attempt, json_output)


@app.command()
def api() -> None:
    """Run the HTTP/WebSocket api."""
    from api.main import run

    run()


@app.command()
def worker() -> None:
    """Run a worker: consumes the priority topics and streams from the LLM."""
    from processors.main import run

    run()


@app.command()
def sinks() -> None:
    """Run the Postgres and ClickHouse sinks."""
    from sinks.main import run

    run()


@app.command()
def init() -> None:
    """Create the Kafka topics and apply migrations on the configured Kafka and databases."""
    from producers.topics import ensure_topics
    from schemas.topics import topic_specs
    from sinks.migrations import migrate_all
    from sluice.settings import get_settings

    s = get_settings()
    specs = topic_specs(
        tokens_partitions=s.tokens_partitions,
        jobs_partitions=s.jobs_partitions,
        tokens_retention_ms=s.tokens_retention_ms,
    )
    created = ensure_topics(s.kafka_bootstrap, specs)
    typer.echo(f"topics created: {', '.join(created) or 'none (all existed)'}")
    migrate_all()
    typer.echo("migrations applied")


@app.command()
def demo(
    json_output: bool = typer.Option(False, "--json", help="end with one JSON line"),
    prompt: str = "Explain what a Kafka consumer group is, briefly.",
    token: str | None = typer.Option(
        None, envvar="SLUICE_API_TOKEN", help="default: a fresh token for the local demo user"
    ),
) -> None:
    """Submit a job over HTTP, print its tokens live, then its stored result and metrics."""
    from sluice.demo import run_demo

    raise typer.Exit(run_demo(prompt=prompt, json_output=json_output, token=token))


if __name__ == "__main__":
    app()
