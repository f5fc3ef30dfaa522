"""People's SQL: only reads, no settings changes, no system tables holding secrets; `sluice sql`."""

from __future__ import annotations

import csv
import io
import json
import re
import socket
from collections.abc import AsyncIterator, Iterator

import pytest
from clickhouse_connect.driver.client import Client
from typer.testing import CliRunner

from sluice import sql_cli
from sluice.cli import app
from sluice.clickhouse import MAX_QUERY_ROWS, ClickHouseQueryError
from sluice.settings import get_settings
from sluice.sql_access import people_statement
from tests.unit.analytics_jobs import (
    analytics_store,
    origins,
    query_endpoint,
    synthetic_jobs,
    write_through_sink,
)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT model, count() FROM jobs GROUP BY model",
        "WITH x AS (SELECT 1) SELECT * FROM x",
        "SELECT name FROM system.tables WHERE database = currentDatabase()",
        "SELECT * FROM system.columns WHERE table = 'jobs'",
        "SELECT number FROM system.numbers LIMIT 3",
        "SHOW TABLES",
        "SHOW TABLES FROM system",
        "SHOW CREATE TABLE job_metrics",
        "SHOW COLUMNS FROM jobs",
        "DESCRIBE TABLE jobs",
        "EXPLAIN SELECT 1",
        "SELECT 'system.users', 'SETTINGS' AS word",
    ],
)
def test_questions_pass(sql: str) -> None:
    assert people_statement(sql) == sql


@pytest.mark.parametrize(
    ("sql", "code", "why"),
    [
        ("INSERT INTO job_metrics (job_id) VALUES ('x')", "read_only", "only SELECT"),
        ("ALTER TABLE jobs DELETE WHERE 1", "read_only", "only SELECT"),
        ("DROP TABLE job_rollup", "read_only", "only SELECT"),
        ("SET max_execution_time = 0", "read_only", "only SELECT"),
        ("SELECT 1; DROP TABLE jobs", "read_only", "one statement"),
        ("SELECT * FROM system.users", "forbidden_table", "system.users"),
        ("SELECT * FROM `system`.`grants`", "forbidden_table", "system.grants"),
        ('SELECT * FROM "system" . "settings" WHERE changed', "forbidden_table", "system.settings"),
        ("SELECT query FROM system.query_log", "forbidden_table", "system.query_log"),
        ("SELECT * FROM system.named_collections", "forbidden_table", "system.named_collections"),
        ("SELECT * FROM system.processes", "forbidden_table", "system.processes"),
        ("DESCRIBE system.quotas", "forbidden_table", "system.quotas"),
        ("SELECT * FROM merge('system', '^users$')", "forbidden_table", "merge()"),
        ("SHOW GRANTS", "forbidden_table", "SHOW is allowed"),
        ("SHOW USERS", "forbidden_table", "SHOW is allowed"),
        ("SHOW CREATE USER default", "forbidden_table", "SHOW is allowed"),
        ("SHOW SETTINGS LIKE '%max%'", "forbidden_table", "SHOW is allowed"),
        ("SHOW ACCESS", "forbidden_table", "SHOW is allowed"),
        ("SELECT 1 SETTINGS max_execution_time = 0", "settings_change", "SETTINGS"),
        ("SELECT 1 SETTINGS readonly = 0", "settings_change", "SETTINGS"),
    ],
)
def test_anything_else_is_refused_with_a_stable_code(sql: str, code: str, why: str) -> None:
    with pytest.raises(ClickHouseQueryError, match=re.escape(why)) as caught:
        people_statement(sql)
    assert caught.value.code == code


def test_the_cli_prints_at_most_what_any_reader_returns() -> None:
    assert sql_cli.MAX_ROWS == MAX_QUERY_ROWS


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Client, Client]]:
    with analytics_store(str(tmp_path_factory.mktemp("sql") / "ch")) as clients:
        yield clients


@pytest.fixture(scope="module")
async def endpoint_port(store: tuple[Client, Client]) -> AsyncIterator[int]:
    writer, reader = store
    for job in synthetic_jobs():
        await write_through_sink(writer, origins(job))
    with query_endpoint(reader) as port:
        yield port


@pytest.fixture
def embedded(endpoint_port: int, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Settings of a process that reaches the chdb store through the sinks' endpoint."""
    monkeypatch.setenv("SLUICE_SINKS_QUERY_PORT", str(endpoint_port))
    monkeypatch.setenv("SLUICE_CLICKHOUSE_URL", "chdb:///opened/by/the/sinks/process")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


SQL = "SELECT model, count() AS jobs FROM jobs GROUP BY model ORDER BY model"


def test_sql_prints_a_table(embedded: None) -> None:
    result = CliRunner().invoke(app, ["sql", SQL])
    assert result.exit_code == 0, result.output
    assert re.search(r"gpt-4o\s.*\s2\s", result.output)
    assert re.search(r"gpt-4o-mini\s.*\s3\s", result.output)
    assert "2 rows" in result.output


def test_sql_prints_csv_and_json(embedded: None) -> None:
    as_csv = CliRunner().invoke(app, ["sql", SQL, "--format", "csv"])
    assert list(csv.reader(io.StringIO(as_csv.output))) == [
        ["model", "jobs"],
        ["gpt-4o", "2"],
        ["gpt-4o-mini", "3"],
    ]
    as_json = CliRunner().invoke(app, ["sql", SQL, "-f", "json"])
    assert json.loads(as_json.output) == [
        {"model": "gpt-4o", "jobs": 2},
        {"model": "gpt-4o-mini", "jobs": 3},
    ]


def test_sql_says_when_rows_were_left_out(embedded: None) -> None:
    result = CliRunner().invoke(
        app, ["sql", "SELECT number FROM system.numbers LIMIT 50", "--max-rows", "5", "-f", "csv"]
    )
    assert result.exit_code == 0
    assert result.stdout.splitlines() == ["number", "0", "1", "2", "3", "4"]
    assert "only the first 5 rows" in result.stderr


@pytest.mark.parametrize(
    ("sql", "code"),
    [
        ("DELETE FROM job_metrics WHERE 1", "read_only"),
        ("SELECT * FROM system.users", "forbidden_table"),
        ("SELECT 1 SETTINGS max_result_rows = 0", "settings_change"),
        ("SELECT nope FROM jobs", "query_failed"),
        ("SELECT * FROM no_such_table", "query_failed"),
    ],
)
def test_sql_refusals_and_bad_sql_exit_1_with_the_code(embedded: None, sql: str, code: str) -> None:
    result = CliRunner().invoke(app, ["sql", sql])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error [{code}]: ")
    assert "Traceback" not in result.output


def test_the_reader_refuses_writes_even_past_the_guard(store: tuple[Client, Client]) -> None:
    _, reader = store
    with pytest.raises(Exception, match="readonly"):
        reader.command("INSERT INTO job_metrics (job_id) VALUES ('x')")
    with pytest.raises(Exception, match="readonly"):
        reader.query("SELECT 1 SETTINGS max_execution_time = 1000")


def test_sql_without_the_sinks_process_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    monkeypatch.setenv("SLUICE_SINKS_QUERY_PORT", str(port))
    monkeypatch.setenv("SLUICE_CLICKHOUSE_URL", "chdb:///opened/by/the/sinks/process")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["sql", "SELECT 1"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1
    assert "analytics_unavailable" in result.stderr
