"""`sluice stack up|down|status`: the local stack from one command, idempotent."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape

from sluice.stack.errors import StackError

if TYPE_CHECKING:
    from sluice.settings import Settings
    from sluice.stack.procs import Supervisor
    from sluice.stack.services import Brought, Service

# The stack's modules pull in Kafka and Postgres clients: imported inside the commands
# so that `sluice --help` and the other subcommands stay quick.

stack_app = typer.Typer(no_args_is_help=True)
console = Console(highlight=False, soft_wrap=True)
errors = Console(stderr=True, highlight=False, soft_wrap=True)

OK = "[green]✓[/]"
WARN = "[yellow]![/]"
FAIL = "[red]✗[/]"
IDLE = "[dim]·[/]"
SINKS = "sinks"


def _say(mark: str, name: str, text: str) -> None:
    console.print(f"{mark} {name:<11} {text}")


def _fail(name: str, error: StackError) -> None:
    _say(FAIL, name, "failed")
    errors.print(escape(str(error)))


@contextmanager
def _exit_on_stack_error() -> Iterator[None]:
    """A StackError outside a service step (unreadable settings, say): say it, exit 1."""
    try:
        yield
    except StackError as e:
        errors.print(f"{FAIL} {escape(str(e))}")
        raise typer.Exit(1) from e


def _describe(service: Service, brought: Brought) -> str:
    from sluice.stack.services import Outcome

    where = escape(service.address)
    notes = f" [dim]({escape(', '.join(brought.notes))})[/]" if brought.notes else ""
    if brought.outcome is Outcome.started:
        return f"started, ready in {brought.ready_s or 0:.1f} s  {where}{notes}"
    if brought.outcome is Outcome.running:
        return f"already running (pid {service.pid()})  {where}{notes}"
    return f"{brought.outcome.value}  {where}{notes}"


def _bring_up(service: Service) -> None:
    with console.status(f"{service.name}: starting…"):
        try:
            brought = service.up()
        except StackError as e:
            _fail(service.name, e)
            raise typer.Exit(1) from e
    _say(OK, service.name, _describe(service, brought))


def _create_topics(s: Settings) -> None:
    from sluice.stack import provision

    try:
        report = provision.create_topics(s)
    except StackError as e:
        _fail("topics", e)
        raise typer.Exit(1) from e
    if report.created:
        _say(OK, "topics", f"created {len(report.created)}: {escape(', '.join(report.created))}")
    else:
        _say(OK, "topics", f"all {report.total} present")


def _migrate(s: Settings, supervisor: Supervisor) -> None:
    from sluice.stack import provision

    if s.clickhouse_is_embedded and supervisor.is_running(SINKS):
        # The running sinks process holds the embedded ClickHouse; a second opener would fail.
        _say(IDLE, "migrations", "skipped: sinks is running and holds the embedded ClickHouse")
        return
    with console.status("migrations: applying…"):
        try:
            report = provision.run_migrations(s)
        except StackError as e:
            _fail("migrations", e)
            raise typer.Exit(1) from e
    if report.skipped:
        _say(WARN, "migrations", f"skipped: {escape(report.skipped)}")
    else:
        _say(OK, "migrations", f"applied in {report.took_s:.1f} s")


@stack_app.command()
def up(
    with_app: bool = typer.Option(False, "--with-app", help="also start api, worker and sinks"),
) -> None:
    """Start Kafka, Postgres, ClickHouse and the LLM simulator; create topics; migrate."""
    from sluice.settings import get_settings
    from sluice.stack.procs import Supervisor
    from sluice.stack.services import app_services, data_services, llm_services

    s = get_settings()
    supervisor = Supervisor(s.home)
    began = time.monotonic()
    with _exit_on_stack_error(), supervisor.lock():
        for service in data_services(s, supervisor):
            _bring_up(service)
        _create_topics(s)
        _migrate(s, supervisor)
        for service in llm_services(s, supervisor):
            _bring_up(service)
        if with_app:
            for service in app_services(s, supervisor):
                _bring_up(service)
    took = time.monotonic() - began
    if with_app:
        console.print(f"stack up in {took:.1f} s; api at [bold]{escape(s.api_url)}[/]")
    else:
        console.print(
            f"stack up in {took:.1f} s; api not started (--with-app starts it at {s.api_url})"
        )


@stack_app.command()
def down() -> None:
    """Stop what the stack started: app processes, simulator, Kafka, Postgres."""
    from sluice.settings import get_settings
    from sluice.stack.procs import Supervisor
    from sluice.stack.services import shutdown_order

    s = get_settings()
    supervisor = Supervisor(s.home)
    failed = False
    with _exit_on_stack_error(), supervisor.lock():
        for service in shutdown_order(s, supervisor):
            with console.status(f"{service.name}: stopping…"):
                try:
                    stopped = service.down()
                except StackError as e:
                    _fail(service.name, e)
                    failed = True  # keep going: stop as much as possible
                    continue
            if stopped:
                _say(OK, service.name, "stopped")
            else:
                _say(IDLE, service.name, "[dim]not running[/]")
    if failed:
        raise typer.Exit(1)


def _topics_line(s: Settings) -> str:
    from producers.topics import (
        TopicAdminError,
        configured_topic_specs,
        describe_topics,
        topic_drift,
    )

    specs = configured_topic_specs(s)
    try:
        states = describe_topics(s.kafka_bootstrap, [spec.name for spec in specs], timeout=5.0)
    except TopicAdminError as e:
        return f"topics: {escape(str(e))}"
    drift = [
        f"{spec.name}: {'; '.join(topic_drift(spec, states[spec.name]))}"
        for spec in specs
        if spec.name in states and topic_drift(spec, states[spec.name])
    ]
    line = f"topics: {len(states)}/{len(specs)} present"
    return line + "".join(f"\n  [yellow]{escape(d)}[/]" for d in drift)


@stack_app.command()
def status() -> None:
    """Show each service: running, pid, port, ready. Exits 1 if one crashed or is not ready."""
    from rich.table import Table

    from sluice.settings import get_settings
    from sluice.stack.procs import Supervisor
    from sluice.stack.services import app_services, data_services, llm_services

    s = get_settings()
    supervisor = Supervisor(s.home)
    table = Table(box=None, pad_edge=False)
    for column in ("service", "running", "pid", "port", "ready", "address"):
        table.add_column(column)
    unhealthy = False
    kafka_ready = False
    with _exit_on_stack_error():
        services = [*data_services(s, supervisor), *llm_services(s, supervisor)]
        services += app_services(s, supervisor)
    for service in services:
        state = service.state()
        pid = service.pid()
        ready: bool | None = None if state in ("stopped", "exited") else service.is_ready()
        unhealthy |= ready is False or state == "exited"
        kafka_ready |= service.name == "kafka" and ready is True
        table.add_row(
            service.name,
            {"running": "[green]yes[/]", "stopped": "[dim]no[/]", "exited": "[red]exited[/]"}.get(
                state, state
            ),
            str(pid) if pid else "-",
            str(service.port) if service.port else "-",
            {True: "[green]yes[/]", False: "[red]no[/]", None: "-"}[ready],
            escape(service.address),
        )
    console.print(table)
    if kafka_ready:
        console.print(_topics_line(s))
    console.print(f"logs: {escape(str(supervisor.logs_dir))}")
    if unhealthy:
        raise typer.Exit(1)
