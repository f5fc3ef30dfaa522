"""Only reading SQL reaches ClickHouse, errors are clean, values are JSON."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from sluice.clickhouse import ClickHouseQueryError, _query_failed, json_safe, read_only_statement


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1",
        "select count() from job_metrics FINAL",
        "  WITH t AS (SELECT 1) SELECT * FROM t;",
        "(SELECT 1) UNION ALL (SELECT 2)",
        "SHOW TABLES",
        "DESCRIBE token_events",
        "EXPLAIN SELECT 1",
        "-- the slowest jobs\nSELECT job_id FROM job_metrics ORDER BY duration_ms DESC",
        "SELECT 'file(''/etc/passwd'')', 'INTO OUTFILE', 'a;b'",
        "SELECT profile, URLHash('x') FROM t WHERE job_id = {job_id:String}",
    ],
)
def test_reading_statements_pass(sql: str) -> None:
    assert read_only_statement(sql) == sql.strip().rstrip(";").strip()


@pytest.mark.parametrize(
    ("sql", "why"),
    [
        ("INSERT INTO jobs VALUES (1)", "only SELECT"),
        ("DROP TABLE token_events", "only SELECT"),
        ("ALTER TABLE job_metrics DELETE WHERE 1", "only SELECT"),
        ("SYSTEM FLUSH LOGS", "only SELECT"),
        ("/* SELECT */ TRUNCATE job_metrics", "only SELECT"),
        ("", "only SELECT"),
        ("SELECT 1; DROP TABLE jobs", "one statement"),
        ("SELECT 1 INTO OUTFILE '/tmp/x'", "INTO OUTFILE"),
        ("SELECT file('/etc/passwd')", "file()"),
        ("SELECT * FROM `file`('/etc/passwd', LineAsString)", "file()"),
        ("SELECT * FROM \"url\"('http://x', CSV)", "url()"),
        ("SELECT * FROM s3 /* hidden */ ('http://x')", "s3()"),
        ("SELECT * FROM remote('h', db.t)", "remote()"),
        ("SELECT $$ ' $$, file('/etc/hostname'), $$ ' $$", "file()"),
        ("SELECT * FROM icebergS3('x')", "icebergS3()"),
        ("SELECT * FROM python('df')", "python()"),
    ],
)
def test_anything_else_is_refused_as_read_only(sql: str, why: str) -> None:
    with pytest.raises(ClickHouseQueryError, match=re.escape(why)) as caught:
        read_only_statement(sql)
    assert caught.value.code == "read_only"


def test_server_errors_keep_clickhouses_reason_and_drop_urls_and_versions() -> None:
    exc = DatabaseError(
        "HTTPDriver for http://ch.internal:8123 received ClickHouse error code 60\n"
        " Code: 60. DB::Exception: Unknown table expression identifier 'nope'. "
        "(UNKNOWN_TABLE) (version 25.3.1.1 (official build))",
        code=60,
    )
    failure = _query_failed(exc)
    assert failure.code == "query_failed"
    assert failure.message == "Unknown table expression identifier 'nope'. (UNKNOWN_TABLE)"


def test_a_write_the_server_refused_is_reported_as_read_only() -> None:
    exc = DatabaseError("Code: 164. DB::Exception: Cannot execute query in readonly mode", code=164)
    assert _query_failed(exc).code == "read_only"


def test_an_error_without_a_server_reason_says_nothing_internal() -> None:
    failure = _query_failed(OperationalError("Error HTTPConnectionPool(host='10.0.0.5')"))
    assert "10.0.0.5" not in failure.message


def test_values_become_json() -> None:
    row = [
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        Decimal("1.25"),
        UUID(int=1),
        float("nan"),
        b"\xffa",
        {"k": (1, 2)},
        None,
    ]
    safe = json_safe(row)
    assert safe == [
        "2026-01-02T03:04:05+00:00",
        1.25,
        "00000000-0000-0000-0000-000000000001",
        None,
        "\ufffda",
        {"k": [1, 2]},
        None,
    ]
    json.dumps(safe, allow_nan=False)
