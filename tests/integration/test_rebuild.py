"""A sink rebuilt from the log equals the live one: ClickHouse into a fresh directory,
Postgres over the live table (idempotent upserts change nothing)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from sluice.clickhouse import query_clickhouse_sync
from sluice.settings import get_settings
from tests.integration.conftest import finished_job_feed, mint_token, user_name

METRICS = (
    "SELECT job_id, attempt, status, completion_tokens, token_count, estimated_cost_usd "
    "FROM job_metrics FINAL WHERE job_id IN {ids:Array(String)} ORDER BY job_id"
)
TOKENS = (
    "SELECT job_id, count() AS n, groupArray(text) AS texts FROM "
    "(SELECT job_id, seq, text FROM token_events FINAL "
    " WHERE job_id IN {ids:Array(String)} ORDER BY job_id, seq) GROUP BY job_id ORDER BY job_id"
)

READ_REBUILT = """
import json, sys
import clickhouse_connect
client = clickhouse_connect.get_client(dsn=sys.argv[1])
ids = json.loads(sys.argv[2])
out = {}
for name, sql in json.loads(sys.argv[3]).items():
    result = client.query(sql, parameters={"ids": ids})
    out[name] = [dict(zip(result.column_names, row)) for row in result.result_rows]
print(json.dumps(out, default=str))
"""


def sluice(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sluice.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ.copy(),
    )


def normalised(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: str(v) if not isinstance(v, list) else v for k, v in r.items()} for r in rows]


def test_clickhouse_rebuilt_from_the_log_equals_the_live_tables(tmp_path: Path) -> None:
    token = mint_token(user_name("rebuild"))
    since = (datetime.now(UTC) - timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%S")
    ids = sorted(finished_job_feed(token, f"Rebuild check {i}.")[0] for i in range(3))
    live_metrics = []
    for _ in range(60):  # the live sink writes in batches: wait for all three
        live_metrics = query_clickhouse_sync(METRICS, {"ids": ids})
        if len(live_metrics) == 3:
            break
        subprocess.run(["sleep", "0.5"], check=True)
    live_tokens = query_clickhouse_sync(TOKENS, {"ids": ids})

    target = f"chdb://{tmp_path / 'rebuilt'}"
    done = sluice("replay", "--to-sink", "clickhouse", "--clickhouse-url", target, "--since", since)
    assert done.returncode == 0, done.stderr
    assert "rebuilt clickhouse" in done.stdout
    read = subprocess.run(
        [
            sys.executable,
            "-c",
            READ_REBUILT,
            target,
            json.dumps(ids),
            json.dumps({"metrics": METRICS, "tokens": TOKENS}),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    rebuilt = json.loads(read.stdout)
    assert len(live_metrics) == 3
    assert normalised(rebuilt["metrics"]) == normalised(live_metrics), done.stdout
    assert normalised(rebuilt["tokens"]) == normalised(live_tokens)


def test_postgres_rebuilt_over_the_live_table_changes_nothing() -> None:
    token = mint_token(user_name("rebuild-pg"))
    job_id, _ = finished_job_feed(token, "Rebuild Postgres.")
    url = get_settings().resolved_database_url

    def row() -> dict[str, Any] | None:
        with psycopg.connect(url, row_factory=dict_row) as conn:
            return conn.execute("SELECT * FROM jobs WHERE job_id = %s", (job_id,)).fetchone()

    for _ in range(60):
        before = row()
        if before is not None and before["status"] == "completed":
            break
        subprocess.run(["sleep", "0.5"], check=True)
    done = sluice("replay", "--to-sink", "postgres", "--since", "2020-01-01T00:00:00")
    assert done.returncode == 0, done.stderr
    assert row() == before
