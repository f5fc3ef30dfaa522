"""`sluice test-streaming`: the old `artisan openai:test-streaming`, end to end against the api.

Submits one job, shows a live progress bar (tokens / max_tokens) and, with --monitor, the
tokens as they stream; then checks what was stored: the Postgres result (completed, the same
text as streamed, parsed for typed jobs) and the ClickHouse rows (the job's metrics row,
one token row per streamed token). Exit 0: every check passed; 1: a check failed;
2: the test could not run (the api or a database is not reachable, the token was refused).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import typer
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from schemas.jobs import JobType
from schemas.topics import Priority
from sluice.settings import Settings, get_settings

PASSED, FAILED, COULD_NOT_RUN = 0, 1, 2
TEST_USER = "test-streaming"
TERMINAL = {"streaming.completed", "analysis.failed", "job.cancelled"}
SAMPLE_PROMPTS = {
    JobType.security_analysis: (
        "Analyze this smart contract for security issues:\n"
        "contract Vault { mapping(address => uint) balances;\n"
        "  function withdraw() public { uint b = balances[msg.sender];\n"
        '    (bool ok,) = msg.sender.call{value: b}(""); require(ok); balances[msg.sender] = 0; } }'
    ),
    JobType.gas_analysis: "Suggest gas optimizations for a loop that sums a storage array.",
    JobType.sentiment_analysis: "Sentiment of: 'The upgrade went smoothly and fees dropped.'",
    JobType.analysis: "Explain what a Kafka consumer group is, briefly.",
}


class CouldNotRun(Exception):
    """The environment, not the system under test: say what is missing and exit 2."""


@dataclass
class Check:
    name: str
    ok: bool | None  # None: not applicable
    detail: str


@dataclass
class Run:
    job_id: str = ""
    max_tokens: int = 0
    texts: list[str] = field(default_factory=list)
    end: dict[str, Any] | None = None
    checks: list[Check] = field(default_factory=list)


def local_token(settings: Settings) -> str:
    """A fresh token for the local `test-streaming` user, minted in the database."""
    import psycopg

    from sluice import accounts

    try:
        with psycopg.connect(settings.resolved_database_url, autocommit=True) as conn:
            accounts.ensure_user(conn, TEST_USER)
            return accounts.create_token(conn, TEST_USER, name="sluice test-streaming").token
    except psycopg.OperationalError:
        raise CouldNotRun(
            "Postgres is not reachable to mint a token; pass --token or start the stack"
        ) from None


async def _submit(http: httpx.AsyncClient, body: dict[str, Any], run: Run) -> None:
    try:
        resp = await http.post("/api/openai-streaming/start", json=body)
    except httpx.HTTPError as exc:
        raise CouldNotRun(f"the api is not reachable at {http.base_url} ({exc})") from None
    if resp.status_code != 202:
        raise CouldNotRun(f"the api did not accept the job: {resp.status_code} {resp.text[:300]}")
    data = resp.json()["data"]
    run.job_id, run.max_tokens = data["job_id"], int(data["max_tokens"])


def _view(progress: Progress, run: Run, monitor: bool) -> Group:
    if not monitor:
        return Group(progress)
    tail = "".join(run.texts)[-1200:]
    return Group(progress, Text(tail, style="cyan"))


async def _watch(settings: Settings, token: str, run: Run, monitor: bool, limit_s: float) -> None:
    import websockets

    url = settings.api_url.replace("http", "ws", 1) + f"/api/openai-streaming/{run.job_id}/ws"
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("tokens"),
        TimeElapsedColumn(),
    )
    task = progress.add_task("queued", total=run.max_tokens)
    headers = {"Authorization": f"Bearer {token}"}
    with Live(_view(progress, run, monitor), refresh_per_second=10, transient=False) as live:
        try:
            async with (
                asyncio.timeout(limit_s),
                websockets.connect(url, additional_headers=headers) as ws,
            ):
                async for raw in ws:
                    message = json.loads(raw)
                    event, data = message["event"], message["data"]
                    if event == "token.streamed":
                        if data.get("seq") == 0:
                            run.texts = []  # a new attempt supersedes the old one's tokens
                        run.texts.append(data["token"])
                        progress.update(task, description="streaming", completed=len(run.texts))
                    elif event in ("job.started", "job.retrying"):
                        progress.update(task, description=event.removeprefix("job."))
                    elif event in TERMINAL:
                        run.end = message
                        progress.update(task, description=data.get("status", event))
                        live.update(_view(progress, run, monitor))
                        return
                    live.update(_view(progress, run, monitor))
        except TimeoutError:
            return
        except (OSError, websockets.WebSocketException) as exc:
            raise CouldNotRun(f"the job's WebSocket failed: {exc}") from None


async def _poll(http: httpx.AsyncClient, path: str, ready: Any, limit_s: float) -> dict[str, Any]:
    """GET until `ready(data)`; the sinks write a moment after the stream ends."""
    deadline = time.monotonic() + limit_s
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        resp = await http.get(path)
        body = resp.json()
        if resp.status_code == 200 and ready(body["data"]):
            data: dict[str, Any] = body["data"]
            return data
        await asyncio.sleep(0.25)
    return body.get("data") or {}


def _stored_checks(run: Run, result: dict[str, Any], metrics: dict[str, Any], typed: bool) -> None:
    streamed = "".join(run.texts)
    quality = result.get("quality_metrics") or {}
    row = metrics.get("job_metrics")
    add = run.checks.append
    add(Check("stored status", result.get("status") == "completed", str(result.get("status"))))
    same = result.get("response") == streamed
    add(Check("stored response = streamed text", same, f"{len(streamed)} characters"))
    if typed:
        add(
            Check(
                "response parses", bool(quality.get("parse_ok")), quality.get("parse_error") or "ok"
            )
        )
    else:
        add(Check("response parses", None, "free text: nothing to parse"))
    if row:
        ttft = row.get("ttft_ms")
        figures = f"ttft {ttft:.0f} ms, " if ttft is not None else ""
        tps, cost = row.get("tokens_per_second") or 0, row.get("estimated_cost_usd") or 0
        figures += f"{tps:.1f} tokens/s, ${cost:.6f}"
        add(Check("clickhouse job row", True, f"present: {figures}"))
    else:
        add(Check("clickhouse job row", False, "missing"))
    rows = int(metrics.get("token_rows") or 0)
    add(
        Check(
            "clickhouse token rows",
            rows == len(run.texts),
            f"{rows} rows, {len(run.texts)} streamed",
        )
    )


async def run_test(
    job_type: JobType,
    priority: Priority,
    monitor: bool,
    token: str | None,
    prompt: str | None,
    max_tokens: int | None,
    limit_s: float,
) -> tuple[int, Run]:
    settings = get_settings()
    run = Run()
    token = token or local_token(settings)
    body: dict[str, Any] = {
        "prompt": prompt or SAMPLE_PROMPTS[job_type],
        "job_type": job_type.value,
        "priority": priority.value,
    }
    if max_tokens:
        body["config"] = {"max_tokens": max_tokens}
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=settings.api_url, timeout=30, headers=headers) as http:
        await _submit(http, body, run)
        run.checks.append(Check("job accepted", True, f"{run.job_id} on jobs.{priority.value}"))
        await _watch(settings, token, run, monitor, limit_s)
        ended = run.end["event"] if run.end else f"no end within {limit_s:.0f} s"
        run.checks.append(Check("stream ended completed", ended == "streaming.completed", ended))
        run.checks.append(Check("tokens streamed", bool(run.texts), f"{len(run.texts)} tokens"))
        if run.end is None:
            return FAILED, run
        jobs = f"/api/openai-streaming/{run.job_id}"
        result = await _poll(http, f"{jobs}/results", lambda d: True, 60)
        metrics = await _poll(
            http,
            f"{jobs}/metrics",
            lambda d: d["job_metrics"] is not None and d["token_rows"] >= len(run.texts),
            60,
        )
    _stored_checks(run, result, metrics, typed=job_type is not JobType.analysis)
    failed = [c for c in run.checks if c.ok is False]
    return (FAILED if failed else PASSED), run


def summary_table(run: Run) -> Table:
    table = Table(title=f"test-streaming {run.job_id}", title_justify="left")
    table.add_column("", width=1)
    table.add_column("check", style="bold")
    table.add_column("detail")
    for c in run.checks:
        mark = "[green]✓[/]" if c.ok else "[dim]-[/]" if c.ok is None else "[red]✗[/]"
        table.add_row(mark, c.name, c.detail)
    return table


def test_streaming(
    job_type: JobType = typer.Option(JobType.security_analysis, "--type", help="the job type"),
    priority: Priority = typer.Option(Priority.normal, help="the priority topic"),
    monitor: bool = typer.Option(False, "--monitor", help="show the tokens as they stream"),
    token: str | None = typer.Option(
        None, envvar="SLUICE_API_TOKEN", help="default: a fresh token for a local test user"
    ),
    prompt: str | None = typer.Option(None, help="default: a sample for the job type"),
    max_tokens: int | None = typer.Option(None, help="default: the job type's"),
    timeout: float = typer.Option(300.0, help="seconds to wait for the stream to end"),
) -> None:
    """Submit a job, watch it stream, check what was stored. Exit 0 pass, 1 fail, 2 not run."""
    console = Console()
    try:
        code, run = asyncio.run(
            run_test(job_type, priority, monitor, token, prompt, max_tokens, timeout)
        )
    except CouldNotRun as exc:
        console.print(f"[yellow]could not run the test: {exc}")
        raise typer.Exit(COULD_NOT_RUN) from None
    console.print()
    console.print(summary_table(run))
    console.print("[green]PASS" if code == PASSED else "[red]FAIL")
    raise typer.Exit(code)
