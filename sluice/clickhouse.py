"""Read-only SQL against ClickHouse, the same for the api, the CLI and tests.

Embedded mode (``chdb://``): only the sinks process may open the chdb directory, so
queries go over HTTP to its ``POST /query``. Server mode (``http(s)://``): queries go
straight to the server. Either way the statement passes the read-only guard, runs
with ``readonly=1`` and returns JSON-safe values, so callers see the same result.
"""

from __future__ import annotations

import asyncio
import math
import re
from datetime import date, datetime, time
from decimal import Decimal
from functools import lru_cache
from typing import Any

import clickhouse_connect
import httpx
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError
from pydantic import BaseModel, Field, ValidationError

from sluice.settings import get_settings

MAX_QUERY_ROWS = 10_000
QUERY_TIMEOUT_S = 30

# Session settings of a reader; readonly comes last, since it locks every setting after it.
_READ_ONLY_SETTINGS: dict[str, Any] = {
    "max_result_rows": MAX_QUERY_ROWS + 1,
    "result_overflow_mode": "break",
    "max_execution_time": QUERY_TIMEOUT_S,
    "readonly": 1,
}
_READ_ONLY_SERVER_ERROR = 164


class QueryRequest(BaseModel):
    sql: str = Field(min_length=1, max_length=100_000)
    params: dict[str, Any] = Field(default_factory=dict)
    max_rows: int = Field(default=MAX_QUERY_ROWS, ge=1, le=MAX_QUERY_ROWS)


class QueryResult(BaseModel):
    columns: list[str]
    rows: list[list[Any]]
    truncated: bool = False

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


class ClickHouseQueryError(Exception):
    """A query that was refused or failed, with a stable code and a message safe to show."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}


# --- the read-only guard -------------------------------------------------------------

_ALLOWED_FIRST_WORDS = frozenset({"SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN"})
# Functions that reach files, the network or the host: readonly=1 does not stop all of
# them (the scalar file() reads any local file in chdb), so they are refused by name.
_EXTERNAL_FUNCTIONS = (
    "file|fileCluster|filesystem|url|urlCluster|s3|s3Cluster|gcs|oss|cosn|hdfs|hdfsCluster"
    "|remote|remoteSecure|cluster|clusterAllReplicas|mysql|postgresql|sqlite|mongodb|redis"
    "|jdbc|odbc|executable|python|arrowstream|bigquery|ytsaurus|eval|input"
    "|prometheusQuery|prometheusQueryRange"
    "|azureBlobStorage\\w*|deltaLake\\w*|iceberg\\w*|hudi\\w*|paimon\\w*"
)
_EXTERNAL_CALL = re.compile(rf"\b({_EXTERNAL_FUNCTIONS})\s*\(", re.IGNORECASE)
_INTO_OUTFILE = re.compile(r"\bINTO\s+OUTFILE\b", re.IGNORECASE)
_FIRST_WORD = re.compile(r"[\s(]*([A-Za-z]+)")
_LEXEMES = re.compile(
    r"""(?P<string>'(?:[^'\\]|\\.)*'|\$(?P<tag>\w*)\$.*?\$(?P=tag)\$)
      | (?P<quoted>`(?:[^`\\]|\\.)*`|"(?:[^"\\]|\\.)*")
      | (?P<comment>--[^\n]*|\#[^\n]*|/\*.*?(?:\*/|\Z))""",
    re.VERBOSE | re.DOTALL,
)


def _code_only(sql: str) -> str:
    """Blank out literals and comments and unquote identifiers, so only code is checked."""

    def replace(m: re.Match[str]) -> str:
        if m.group("string") is not None:
            return "''"
        if m.group("quoted") is not None:
            return f" {m.group('quoted')[1:-1]} "
        return " "

    return _LEXEMES.sub(replace, sql)


def read_only_statement(sql: str) -> str:
    """Return ``sql`` without trailing semicolons if it only reads; else raise ``read_only``."""
    statement = sql.strip().rstrip(";").strip()
    code = _code_only(statement)
    first = _FIRST_WORD.match(code)
    if first is None or first.group(1).upper() not in _ALLOWED_FIRST_WORDS:
        raise ClickHouseQueryError("read_only", "only SELECT, WITH, SHOW and DESCRIBE are allowed")
    if ";" in code:
        raise ClickHouseQueryError("read_only", "one statement per query")
    if _INTO_OUTFILE.search(code):
        raise ClickHouseQueryError("read_only", "INTO OUTFILE is not allowed")
    if called := _EXTERNAL_CALL.search(code):
        raise ClickHouseQueryError("read_only", f"{called.group(1)}() is not allowed")
    return statement


# --- running a query -----------------------------------------------------------------


def open_clickhouse(url: str, *, read_only: bool = False) -> Client:
    """A clickhouse-connect client for ``chdb://<dir>`` or ``http(s)://host:8123``."""
    transport: dict[str, Any] = (
        {} if url.startswith("chdb:") else {"autogenerate_session_id": False}
    )
    settings = dict(_READ_ONLY_SETTINGS) if read_only else {}
    return clickhouse_connect.get_client(dsn=url, settings=settings, tz_mode="aware", **transport)


def run_read_query(client: Client, request: QueryRequest) -> QueryResult:
    """Run one read-only query on a reader from ``open_clickhouse(url, read_only=True)``."""
    statement = read_only_statement(request.sql)
    try:
        result = client.query(statement, parameters=request.params or None)
    except DatabaseError as exc:
        raise _query_failed(exc) from None
    except (KeyError, ValueError, TypeError) as exc:
        raise ClickHouseQueryError("invalid_params", f"query parameters: {exc}") from None
    rows = result.result_rows
    return QueryResult(
        columns=list(result.column_names),
        rows=[[json_safe(v) for v in row] for row in rows[: request.max_rows]],
        truncated=len(rows) > request.max_rows,
    )


_SERVER_DETAIL = re.compile(r"(?:Code: \d+\. )?DB::Exception: (?P<detail>.*)", re.DOTALL)
_VERSION_TRAILER = re.compile(r"\s*\(version [^()]*(?:\([^()]*\))?[^()]*\)")


def _query_failed(exc: DatabaseError) -> ClickHouseQueryError:
    """ClickHouse's own explanation, without driver URLs, versions or traces."""
    if exc.code == _READ_ONLY_SERVER_ERROR:
        return ClickHouseQueryError("read_only", "the query tried to change data or settings")
    found = _SERVER_DETAIL.search(str(exc))
    if found is None:
        return ClickHouseQueryError("query_failed", "ClickHouse could not run the query")
    detail = found.group("detail")
    while (nested := _SERVER_DETAIL.match(detail)) is not None:
        detail = nested.group("detail")
    detail = _VERSION_TRAILER.sub("", detail).strip()
    return ClickHouseQueryError(
        "query_failed", detail.splitlines()[0][:500] if detail else "failed"
    )


def json_safe(value: Any) -> Any:
    """A ClickHouse value as JSON: datetimes as ISO 8601, non-finite floats as null."""
    match value:
        case None | bool() | int() | str():
            return value
        case float():
            return value if math.isfinite(value) else None
        case datetime() | date() | time():
            return value.isoformat()
        case Decimal():
            return float(value)
        case bytes():
            return value.decode("utf-8", "replace")
        case dict():
            return {str(k): json_safe(v) for k, v in value.items()}
        case list() | tuple() | set() | frozenset():
            return [json_safe(v) for v in value]
        case _:
            return str(value)


# --- the callers' entry points -------------------------------------------------------


def _request(sql: str, params: dict[str, Any] | None) -> QueryRequest:
    try:
        return QueryRequest(sql=sql, params=params or {})
    except ValidationError as exc:
        raise ClickHouseQueryError("invalid_request", str(exc.errors()[0]["msg"])) from None


@lru_cache(maxsize=4)
def _server_reader(url: str) -> Client:
    return open_clickhouse(url, read_only=True)


def _sinks_query_url() -> str:
    return f"http://127.0.0.1:{get_settings().sinks_query_port}/query"


def _unavailable() -> ClickHouseQueryError:
    return ClickHouseQueryError(
        "analytics_unavailable", "the analytics store is not reachable; is `sluice sinks` running?"
    )


def _result_from(response: httpx.Response) -> QueryResult:
    if response.status_code == 200:
        return QueryResult.model_validate_json(response.content)
    try:
        error = response.json()["error"]
        failure = ClickHouseQueryError(str(error["code"]), str(error["message"]))
    except (ValueError, KeyError, TypeError):
        failure = _unavailable()
    raise failure


async def query_clickhouse(sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Rows of a read-only query as dicts; raises ``ClickHouseQueryError`` with a stable code."""
    request = _request(sql, params)
    settings = get_settings()
    if not settings.clickhouse_is_embedded:
        reader = _server_reader(settings.resolved_clickhouse_url)
        return (await asyncio.to_thread(run_read_query, reader, request)).records()
    try:
        async with httpx.AsyncClient(timeout=QUERY_TIMEOUT_S + 5) as http:
            response = await http.post(_sinks_query_url(), json=request.model_dump(mode="json"))
    except httpx.HTTPError:
        raise _unavailable() from None
    return _result_from(response).records()


def query_clickhouse_sync(sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """``query_clickhouse`` for synchronous callers (CLI, tests)."""
    request = _request(sql, params)
    settings = get_settings()
    if not settings.clickhouse_is_embedded:
        return run_read_query(_server_reader(settings.resolved_clickhouse_url), request).records()
    try:
        response = httpx.post(
            _sinks_query_url(), json=request.model_dump(mode="json"), timeout=QUERY_TIMEOUT_S + 5
        )
    except httpx.HTTPError:
        raise _unavailable() from None
    return _result_from(response).records()
