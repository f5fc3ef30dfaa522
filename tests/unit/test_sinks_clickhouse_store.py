"""The ClickHouse DDL, writer and reader on an embedded chdb in a temporary directory.

chdb runs inside the test process; one directory per process, so every test here
shares the module's store and uses its own job ids.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import uvicorn
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError
from fastapi.testclient import TestClient

from sinks.clickhouse_rows import JobMetricsRow, TokenEventRow
from sinks.clickhouse_sink import ClickHouseWriter
from sinks.migrations import clickhouse_migrations, migrate_clickhouse
from sinks.pipeline import Accepted, Origin
from sinks.query_app import create_query_app
from sluice.clickhouse import (
    ClickHouseQueryError,
    QueryRequest,
    open_clickhouse,
    query_clickhouse,
    run_read_query,
)
from sluice.settings import get_settings

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def chdb_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"chdb://{tmp_path_factory.mktemp('chdb') / 'clickhouse'}"


@pytest.fixture(scope="module")
def writer_client(chdb_url: str) -> Iterator[Client]:
    client = open_clickhouse(chdb_url)
    migrate_clickhouse(client)
    yield client
    client.close()


@pytest.fixture(scope="module")
def reader(writer_client: Client, chdb_url: str) -> Iterator[Client]:
    client = open_clickhouse(chdb_url, read_only=True)
    yield client
    client.close()


def accepted(*rows: TokenEventRow | JobMetricsRow) -> list[Accepted[TokenEventRow | JobMetricsRow]]:
    return [Accepted(row, Origin("t", 0, i, None, None)) for i, row in enumerate(rows)]


def tokens(job_id: str, attempt: int, texts: list[str]) -> list[TokenEventRow]:
    return [
        TokenEventRow(job_id, attempt, seq, text, T0 + timedelta(milliseconds=seq), "user-1")
        for seq, text in enumerate(texts)
    ]


def metrics(job_id: str, attempt: int, status: str) -> JobMetricsRow:
    return JobMetricsRow(
        job_id, attempt, "user-1", "analysis", "normal", "gpt-4o-mini", status,
        10.0, None, 100.0, 5, 3, 8, 3, 30.0, 0.001, "stop", None, T0, T0, T0,
    )  # fmt: skip


def read(reader: Client, sql: str, **params: object) -> list[dict[str, object]]:
    return run_read_query(reader, QueryRequest(sql=sql, params=params)).records()


def test_migrations_apply_once(writer_client: Client) -> None:
    assert migrate_clickhouse(writer_client) == []
    versions = writer_client.query("SELECT version FROM schema_migrations FINAL ORDER BY version")
    assert [r[0] for r in versions.result_rows] == [v for v, _ in clickhouse_migrations()]


async def test_a_replayed_token_changes_nothing(writer_client: Client, reader: Client) -> None:
    writer = ClickHouseWriter(writer_client)
    await writer.write(accepted(*tokens("job-replay", 1, ["a", "b", "c"])))
    await writer.write(accepted(*tokens("job-replay", 1, ["a", "b", "c"])))
    rows = read(
        reader,
        "SELECT seq, text, ts FROM token_events FINAL WHERE job_id = {j:String} ORDER BY seq",
        j="job-replay",
    )
    assert [(r["seq"], r["text"]) for r in rows] == [(0, "a"), (1, "b"), (2, "c")]
    assert rows[0]["ts"] == "2026-03-01T12:00:00+00:00"


async def test_the_highest_attempt_is_the_jobs_metrics_row(
    writer_client: Client, reader: Client
) -> None:
    writer = ClickHouseWriter(writer_client)
    await writer.write(accepted(metrics("job-retried", 2, "completed")))
    await writer.write(accepted(metrics("job-retried", 1, "failed")))  # arrives late
    rows = read(
        reader, "SELECT attempt, status FROM job_metrics FINAL WHERE job_id = 'job-retried'"
    )
    assert rows == [{"attempt": 2, "status": "completed"}]


def test_the_reader_cannot_write_even_past_the_guard(reader: Client) -> None:
    with pytest.raises(DatabaseError, match="readonly"):
        reader.command("INSERT INTO token_events (job_id) VALUES ('x')")


def test_results_are_capped(reader: Client) -> None:
    request = QueryRequest(sql="SELECT number FROM numbers(100)", max_rows=10)
    result = run_read_query(reader, request)
    assert len(result.rows) == 10 and result.truncated


def test_a_bad_query_says_what_clickhouse_said(reader: Client) -> None:
    with pytest.raises(ClickHouseQueryError) as caught:
        run_read_query(reader, QueryRequest(sql="SELECT * FROM no_such_table"))
    assert caught.value.code == "query_failed"
    assert "no_such_table" in caught.value.message
    assert "version" not in caught.value.message


def test_the_query_endpoint(reader: Client) -> None:
    http = TestClient(create_query_app(reader, lambda: {"test sink": {"rows_written": 1}}))
    assert http.get("/healthz").json() == {
        "status": "ok",
        "sinks": {"test sink": {"rows_written": 1}},
    }
    ok = http.post("/query", json={"sql": "SELECT 1 AS one, {x:String} AS x", "params": {"x": "y"}})
    assert ok.status_code == 200
    assert ok.json() == {"columns": ["one", "x"], "rows": [[1, "y"]], "truncated": False}
    refused = http.post("/query", json={"sql": "DROP TABLE job_metrics"})
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "read_only"
    secrets = http.post("/query", json={"sql": "SELECT * FROM system.users"})
    assert secrets.status_code == 400
    assert secrets.json()["error"]["code"] == "forbidden_table"
    settings = http.post("/query", json={"sql": "SELECT 1 SETTINGS readonly = 0"})
    assert settings.json()["error"]["code"] == "settings_change"
    malformed = http.post("/query", json={"query": "SELECT 1"})
    assert malformed.status_code == 400
    assert malformed.json()["error"] == {
        "code": "invalid_request",
        "message": "sql: Field required",
    }
    broken = http.post("/query", content=b"{oops", headers={"content-type": "application/json"})
    assert broken.status_code == 400
    assert broken.json()["error"]["message"] == "the request body is not valid JSON"


@pytest.fixture
def sinks_endpoint(reader: Client, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The query endpoint on a free port, and settings that point the embedded reader at it."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    app = create_query_app(reader, dict)
    server = uvicorn.Server(uvicorn.Config(app, log_level="critical"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    monkeypatch.setenv("SLUICE_SINKS_QUERY_PORT", str(sock.getsockname()[1]))
    monkeypatch.setenv("SLUICE_CLICKHOUSE_URL", "chdb:///not/opened/by/the/caller")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
    server.should_exit = True
    thread.join(timeout=5)
    sock.close()


async def test_embedded_readers_ask_the_sinks_process(
    sinks_endpoint: None, writer_client: Client
) -> None:
    await ClickHouseWriter(writer_client).write(accepted(metrics("job-http", 1, "completed")))
    rows = await query_clickhouse(
        "SELECT job_id, status, finished_at FROM job_metrics FINAL WHERE job_id = {j:String}",
        {"j": "job-http"},
    )
    assert rows == [
        {"job_id": "job-http", "status": "completed", "finished_at": "2026-03-01T12:00:00+00:00"}
    ]
    with pytest.raises(ClickHouseQueryError) as caught:
        await query_clickhouse("DELETE FROM job_metrics WHERE 1")
    assert caught.value.code == "read_only"


async def test_embedded_readers_get_a_clear_error_when_sinks_are_down(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    monkeypatch.setenv("SLUICE_SINKS_QUERY_PORT", str(port))
    monkeypatch.setenv("SLUICE_CLICKHOUSE_URL", "chdb:///not/opened/by/the/caller")
    get_settings.cache_clear()
    try:
        with pytest.raises(ClickHouseQueryError) as caught:
            await query_clickhouse("SELECT 1")
    finally:
        get_settings.cache_clear()
    assert caught.value.code == "analytics_unavailable"
