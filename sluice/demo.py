"""`sluice demo`: one job end to end, the way a user of the api sees it."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import httpx
import websockets
from rich.console import Console
from rich.table import Table

from sluice import accounts
from sluice.settings import Settings, get_settings

SINK_WAIT_S = 60.0


async def _poll(client: httpx.AsyncClient, path: str, ready: Any) -> dict[str, Any]:
    """GET `path` until `ready(body)` holds: sinks write a moment after the stream ends."""
    deadline = time.monotonic() + SINK_WAIT_S
    while True:
        resp = await client.get(path)
        body: dict[str, Any] = resp.json()
        data: dict[str, Any] = body.get("data") or {}
        if resp.status_code == 200 and ready(data):
            return data
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} not ready after {SINK_WAIT_S:.0f}s: {body}")
        await asyncio.sleep(0.25)


async def _watch_tokens(
    ws_url: str, auth: dict[str, str], out: Console
) -> tuple[list[str], dict[str, Any]]:
    texts: list[str] = []
    async with websockets.connect(ws_url, additional_headers=auth) as ws:
        async for raw in ws:
            message = json.loads(raw)
            if message["event"] == "token.streamed":
                texts.append(message["data"]["token"])
                out.file.write(message["data"]["token"])
                out.file.flush()
            elif message["event"] in ("streaming.completed", "analysis.failed", "job.cancelled"):
                out.file.write("\n")
                return texts, message
    raise RuntimeError("the feed closed before the job ended")


def _table(title: str, data: dict[str, Any]) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    for key, value in data.items():
        shown = json.dumps(value) if isinstance(value, dict | list) else str(value)
        table.add_row(key, shown if len(shown) < 200 else shown[:197] + "...")
    return table


def demo_token(settings: Settings) -> str:
    """A token for the local demo user, minted straight in the local database."""
    import psycopg

    with psycopg.connect(settings.resolved_database_url, autocommit=True) as conn:
        accounts.ensure_user(conn, "demo")
        return accounts.create_token(conn, "demo", name="sluice demo").token


async def _demo(prompt: str, json_output: bool, token: str | None) -> int:
    settings = get_settings()
    token = token or demo_token(settings)
    auth = {"Authorization": f"Bearer {token}"}
    # Tokens go to stdout as they arrive; the tables go to stderr in --json mode so the
    # last stdout line is the JSON summary.
    out = Console(file=sys.stdout)
    info = Console(file=sys.stderr if json_output else sys.stdout)
    async with httpx.AsyncClient(base_url=settings.api_url, timeout=30, headers=auth) as client:
        resp = await client.post(
            "/api/openai-streaming/start",
            json={"prompt": prompt, "job_type": "analysis", "priority": "high"},
        )
        if resp.status_code != 202:
            info.print(f"[red]submit failed: {resp.status_code} {resp.text}")
            return 1
        job_id = resp.json()["data"]["job_id"]
        info.print(f"[bold]job {job_id}[/] accepted; tokens as they stream:")
        ws_url = settings.api_url.replace("http", "ws", 1) + f"/api/openai-streaming/{job_id}/ws"
        texts, end = await _watch_tokens(ws_url, auth, out)
        info.print(f"[bold]{end['event']}[/] after {len(texts)} tokens")
        result = await _poll(client, f"/api/openai-streaming/{job_id}/results", lambda d: True)
        info.print(_table("Postgres: stored result", result))
        metrics = await _poll(
            client,
            f"/api/openai-streaming/{job_id}/metrics",
            lambda d: d["job_metrics"] is not None and d["token_rows"] >= len(texts),
        )
        info.print(_table("ClickHouse: job_metrics", metrics["job_metrics"]))
    summary = {
        "job_id": job_id,
        "ws_tokens": len(texts),
        "ws_text": "".join(texts),
        "result_status": result["status"],
        "result_response": result["response"],
        "clickhouse_job_rows": 1 if metrics["job_metrics"] else 0,
        "clickhouse_token_rows": metrics["token_rows"],
    }
    if json_output:
        print(json.dumps(summary))
    consistent = (
        summary["ws_text"] == summary["result_response"]
        and summary["ws_tokens"] == summary["clickhouse_token_rows"]
    )
    return 0 if result["status"] == "completed" and consistent else 1


def run_demo(prompt: str, json_output: bool, token: str | None = None) -> int:
    return asyncio.run(_demo(prompt, json_output, token))
