"""Ad-hoc SQL from people: ``sluice sql`` and the admin-only ``POST /api/analytics/sql``.

On top of the shared read-only guard (``read_only_statement``: one reading statement, no
files, URLs or remote tables) and the reader's session (``readonly=1``, a time limit, a row
cap), people's SQL may not:

- change settings: a ``SETTINGS`` clause would lift the time limit or the row cap, and
  ``readonly=1`` refuses it anyway, only less clearly;
- read the ``system`` database, except tables that describe the schema or generate rows:
  the rest hold users, grants, quotas, settings, named collections (credentials), other
  people's query texts (query_log, processes) and server internals;
- ``SHOW`` access entities (users, grants, roles, quotas, profiles, policies) or settings.
"""

from __future__ import annotations

import re
from functools import lru_cache

import httpx
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from sluice.clickhouse import (
    MAX_QUERY_ROWS,
    QUERY_TIMEOUT_S,
    ClickHouseQueryError,
    QueryRequest,
    QueryResult,
    _code_only,
    open_clickhouse,
    read_only_statement,
    run_read_query,
)
from sluice.settings import get_settings

# Tables of the system database that hold no secret: schema, functions, generators.
READABLE_SYSTEM_TABLES = frozenset(
    {
        "one",
        "numbers",
        "numbers_mt",
        "zeros",
        "zeros_mt",
        "databases",
        "tables",
        "columns",
        "parts",
        "data_type_families",
        "functions",
        "table_functions",
        "time_zones",
    }
)
_SYSTEM_TABLE = re.compile(r"\bsystem\s*\.\s*([A-Za-z_]\w*)", re.IGNORECASE)
# Table functions that read a database named by a string: merge('system', '^users$').
_INDIRECT_TABLE_CALL = re.compile(r"\b(merge|loop|dictionary|mergeTreeIndex)\s*\(", re.IGNORECASE)
_SETTINGS_CLAUSE = re.compile(r"\bSETTINGS\b", re.IGNORECASE)
_SHOW = re.compile(r"^[\s(]*SHOW\s+(?P<rest>.*)", re.IGNORECASE | re.DOTALL)
_SHOWABLE = re.compile(
    r"^(?:(?:FULL|EXTENDED|TEMPORARY)\s+)*"
    r"(?:TABLES|DATABASES|COLUMNS|FIELDS|DICTIONARIES|FUNCTIONS|ENGINES|INDEX|INDEXES|INDICES|KEYS"
    r"|CREATE\s+(?:(?:TEMPORARY\s+)?TABLE|VIEW|DICTIONARY|DATABASE)\b)",
    re.IGNORECASE,
)


def people_statement(sql: str) -> str:
    """``sql`` ready to run for a person, or ``ClickHouseQueryError`` saying why not.

    Codes: ``read_only`` (anything but one reading statement), ``settings_change``,
    ``forbidden_table``.
    """
    statement = read_only_statement(sql)
    code = _code_only(statement)
    if (show := _SHOW.match(code)) and not _SHOWABLE.match(show.group("rest")):
        raise ClickHouseQueryError(
            "forbidden_table", "SHOW is allowed for tables, columns and databases only"
        )
    for found in _SYSTEM_TABLE.finditer(code):
        if found.group(1).lower() not in READABLE_SYSTEM_TABLES:
            raise ClickHouseQueryError(
                "forbidden_table",
                f"system.{found.group(1)} is not readable here; readable system tables: "
                + ", ".join(sorted(READABLE_SYSTEM_TABLES)),
            )
    if called := _INDIRECT_TABLE_CALL.search(code):
        raise ClickHouseQueryError("forbidden_table", f"{called.group(1)}() is not allowed")
    if _SETTINGS_CLAUSE.search(code):
        raise ClickHouseQueryError(
            "settings_change", "queries may not change settings (no SETTINGS clause)"
        )
    return statement


def run_people_sql(sql: str, max_rows: int = MAX_QUERY_ROWS) -> QueryResult:
    """Run a person's read-only query wherever ClickHouse is; blocking (call it in a thread).

    At most ``max_rows`` rows come back, with ``truncated`` set if there were more.
    """
    request = QueryRequest(sql=people_statement(sql), max_rows=max_rows)
    settings = get_settings()
    if not settings.clickhouse_is_embedded:
        try:
            return run_read_query(_server_reader(settings.resolved_clickhouse_url), request)
        except ClickHouseError as exc:  # a result type the driver cannot read, a lost server
            raise ClickHouseQueryError("query_failed", _driver_reason(exc)) from None
    return _ask_sinks(request, settings.sinks_query_port)


@lru_cache(maxsize=4)
def _server_reader(url: str) -> Client:
    return open_clickhouse(url, read_only=True)


def _driver_reason(exc: ClickHouseError) -> str:
    first = str(exc).splitlines()[0] if str(exc) else ""
    return first[:300] or "ClickHouse could not run the query"


def _ask_sinks(request: QueryRequest, port: int) -> QueryResult:
    """Embedded mode: the sinks process owns the chdb directory and answers on ``/query``."""
    try:
        response = httpx.post(
            f"http://127.0.0.1:{port}/query",
            json=request.model_dump(mode="json"),
            timeout=QUERY_TIMEOUT_S + 5,
        )
    except httpx.HTTPError:
        raise ClickHouseQueryError(
            "analytics_unavailable",
            "the analytics store is not reachable; is `sluice sinks` running?",
        ) from None
    if response.status_code == 200:
        return QueryResult.model_validate_json(response.content)
    try:
        error = response.json()["error"]
        failure = ClickHouseQueryError(str(error["code"]), str(error["message"]))
    except (ValueError, KeyError, TypeError):
        failure = ClickHouseQueryError("analytics_unavailable", "the analytics store failed")
    raise failure
