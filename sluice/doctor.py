"""`sluice doctor`: is every prerequisite there? One row per check, and what to do when not.

Checks Kafka and every topic against its spec, Postgres and its migrations, ClickHouse,
the LLM (a real one-token streaming request), the worker and the api's /readyz. Exit 1
when anything fails. Heavy clients are imported inside the checks so `sluice --help` stays quick.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import typer
from rich.console import Console
from rich.table import Table

from sluice.settings import Settings, get_settings

LLM_TIMEOUT_S = 20.0
HTTP_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Finding:
    check: str
    ok: bool
    detail: str
    fix: str = ""


def _kafka(s: Settings) -> list[Finding]:
    from producers.topics import (
        TopicAdminError,
        configured_topic_specs,
        describe_topics,
        topic_drift,
    )
    from sluice.readiness import kafka_problem

    problem = kafka_problem(s.kafka_bootstrap)
    if problem is not None:
        fix = (
            "start the local stack (`sluice stack up`), or set SLUICE_KAFKA_BOOTSTRAP "
            "to a broker that answers"
        )
        return [
            Finding("kafka", False, f"{s.kafka_bootstrap}: {problem}", fix),
            Finding("kafka topics", False, "not checked: Kafka is not reachable", fix),
        ]
    findings = [Finding("kafka", True, f"{s.kafka_bootstrap} answers")]
    specs = configured_topic_specs(s)
    try:
        states = describe_topics(s.kafka_bootstrap, [spec.name for spec in specs])
    except TopicAdminError as exc:
        return [*findings, Finding("kafka topics", False, str(exc), "check the broker's logs")]
    for spec in specs:
        name = f"topic {spec.name}"
        if spec.name not in states:
            findings.append(Finding(name, False, "missing", "run `sluice init` to create it"))
            continue
        drift = topic_drift(spec, states[spec.name])
        if drift:
            fix = (
                "alter it to match (kafka-configs.sh / kafka-topics.sh --alter), "
                "or delete it and run `sluice init`"
            )
            findings.append(Finding(name, False, "; ".join(drift), fix))
        else:
            findings.append(
                Finding(name, True, f"{spec.partitions} partitions, config as specified")
            )
    return findings


def _postgres(s: Settings) -> list[Finding]:
    from sluice.stack.postgres import database_reachable, describe_url

    where = describe_url(s.resolved_database_url)
    problem = database_reachable(s.resolved_database_url)
    if problem is not None:
        fix = "start the local stack (`sluice stack up`), or set DATABASE_URL to a reachable server"
        return [
            Finding("postgres", False, f"{where}: {problem}", fix),
            Finding("postgres migrations", False, "not checked: Postgres is not reachable", fix),
        ]
    return [Finding("postgres", True, f"{where} answers"), _migrations(s)]


def _migrations(s: Settings) -> Finding:
    from yoyo import get_backend, read_migrations

    from sinks.migrations import POSTGRES_DIR
    from sinks.postgres_urls import yoyo_url

    backend = get_backend(yoyo_url(s.resolved_database_url))
    try:
        pending = [m.id for m in backend.to_apply(read_migrations(str(POSTGRES_DIR)))]
    finally:
        backend.connection.close()
    if pending:
        return Finding(
            "postgres migrations",
            False,
            f"{len(pending)} not applied: {', '.join(pending)}",
            "run `sluice init` (or start `sluice sinks`, which migrates)",
        )
    return Finding("postgres migrations", True, "all applied")


def _clickhouse(s: Settings) -> list[Finding]:
    from sluice.readiness import clickhouse_problem

    problem = asyncio.run(clickhouse_problem(s))
    if s.clickhouse_is_embedded:
        what = "embedded (chdb, opened by the sinks process)"
        fix = "start the sinks (`sluice stack up --with-app` or `sluice sinks`)"
    else:
        what = "server"
        fix = "check that the server runs and SLUICE_CLICKHOUSE_URL points at it"
    if problem is not None:
        return [Finding("clickhouse", False, problem, fix)]
    return [Finding("clickhouse", True, f"{what} answers")]


def _llm(s: Settings) -> list[Finding]:
    """A real streaming request for one token with the official client."""
    import openai

    from schemas.jobs import DEFAULT_MODEL

    base = s.resolved_openai_base_url or "https://api.openai.com/v1"
    who = "the simulator" if s.uses_simulator else base
    fix = (
        "start the simulator (`sluice stack up`)"
        if s.uses_simulator
        else "check OPENAI_API_KEY and OPENAI_BASE_URL, and that the model is served"
    )
    client = openai.OpenAI(
        api_key=s.resolved_openai_api_key, base_url=base, timeout=LLM_TIMEOUT_S, max_retries=0
    )
    began = time.monotonic()
    try:
        stream = client.chat.completions.create(
            model=DEFAULT_MODEL,
            messages=[{"role": "user", "content": "Say OK."}],
            max_tokens=1,
            stream=True,
        )
        chunks = [c for c in stream]
    except openai.APIStatusError as exc:
        return [Finding("llm", False, f"{who} answered {exc.status_code}", fix)]
    except openai.APIError as exc:
        return [Finding("llm", False, f"{who}: {type(exc).__name__}", fix)]
    finally:
        client.close()
    if not chunks:
        return [Finding("llm", False, f"{who} streamed no chunk", fix)]
    took = (time.monotonic() - began) * 1000
    return [Finding("llm", True, f"{who} streamed {len(chunks)} chunks in {took:.0f} ms")]


def _http_ready(name: str, url: str, fix: str) -> Finding:
    try:
        resp = httpx.get(url, timeout=HTTP_TIMEOUT_S)
    except httpx.HTTPError as exc:
        return Finding(name, False, f"{url}: {type(exc).__name__}", fix)
    if resp.status_code == 200:
        return Finding(name, True, f"{url} ready")
    if resp.status_code == 404:
        return Finding(name, False, f"{url}: no such page", "restart it: it runs older code")
    try:
        message = resp.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = f"answered {resp.status_code}"
    return Finding(name, False, f"{url}: {message}", "fix the failing dependency above, then retry")


def _services(s: Settings) -> list[Finding]:
    return [
        _http_ready(
            "worker",
            f"http://127.0.0.1:{s.worker_web_port}/readyz",
            "start a worker (`sluice stack up --with-app` or `sluice worker`)",
        ),
        _http_ready(
            "api",
            f"{s.api_url}/readyz",
            "start the api (`sluice stack up --with-app` or `sluice api`)",
        ),
    ]


CHECKS: tuple[Callable[[Settings], list[Finding]], ...] = (
    _kafka,
    _postgres,
    _clickhouse,
    _llm,
    _services,
)


def run_checks(s: Settings) -> list[Finding]:
    findings: list[Finding] = []
    for check in CHECKS:
        try:
            findings.extend(check(s))
        except Exception as exc:  # a check that breaks is a failed check, not a crash
            name = check.__name__.strip("_")
            findings.append(Finding(name, False, f"the check itself failed: {exc!r}"))
    return findings


def findings_table(findings: list[Finding]) -> Table:
    table = Table(title="sluice doctor", title_justify="left")
    table.add_column("", width=1)
    table.add_column("check", style="bold")
    table.add_column("result")
    table.add_column("what to do")
    for f in findings:
        mark = "[green]✓[/]" if f.ok else "[red]✗[/]"
        table.add_row(mark, f.check, f.detail, f.fix)
    return table


def doctor() -> None:
    """Check Kafka and its topics, Postgres, ClickHouse, the LLM, worker, api; say what to fix."""
    findings = run_checks(get_settings())
    console = Console()
    console.print(findings_table(findings))
    failed = [f for f in findings if not f.ok]
    if failed:
        console.print(f"[red]{len(failed)} of {len(findings)} checks failed")
        raise typer.Exit(1)
    console.print(f"[green]all {len(findings)} checks passed")
