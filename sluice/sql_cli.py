"""`sluice sql "SELECT ..."`: read-only SQL against the analytics store, as a table, CSV or JSON.

The ClickHouse client is imported when the command runs, so `sluice --help` stays fast.
"""

from __future__ import annotations

import csv
import io
import json
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from sluice.clickhouse import QueryResult

# sluice.clickhouse.MAX_QUERY_ROWS, the most any reader returns (a test keeps them equal).
MAX_ROWS = 10_000


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


def sql(
    query: str = typer.Argument(..., help="one SELECT, WITH, SHOW, DESCRIBE or EXPLAIN"),
    output: OutputFormat = typer.Option(OutputFormat.table, "--format", "-f"),
    max_rows: int = typer.Option(
        MAX_ROWS, "--max-rows", min=1, max=MAX_ROWS, help="rows to print at most"
    ),
) -> None:
    """Ask the analytics tables a question in SQL (read-only; see docs/analytics.md)."""
    from sluice.clickhouse import ClickHouseQueryError
    from sluice.sql_access import run_people_sql

    try:
        result = run_people_sql(query, max_rows=max_rows)
    except ClickHouseQueryError as exc:
        typer.echo(f"error [{exc.code}]: {exc.message}", err=True)
        raise typer.Exit(1) from None
    typer.echo(render(result, output), nl=False)
    if result.truncated:
        typer.echo(f"(only the first {len(result.rows)} rows are shown)", err=True)


def render(result: QueryResult, output: OutputFormat) -> str:
    if output is OutputFormat.json:
        return json.dumps(result.records(), ensure_ascii=False) + "\n"
    if output is OutputFormat.csv:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(result.columns)
        writer.writerows([[_cell(v) for v in row] for row in result.rows])
        return buffer.getvalue()
    from rich.console import Console
    from rich.table import Table

    table = Table(*result.columns, show_lines=False)
    for row in result.rows:
        table.add_row(*(_cell(v) for v in row))
    buffer = io.StringIO()
    console = Console(file=buffer, width=200, color_system=None)
    console.print(table)
    console.print(f"{len(result.rows)} row{'' if len(result.rows) == 1 else 's'}")
    return buffer.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)
