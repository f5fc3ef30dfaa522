"""The sinks' HTTP face: health, and read-only SQL for whoever cannot open the chdb directory."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from clickhouse_connect.driver.client import Client
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from sluice.clickhouse import ClickHouseQueryError, QueryRequest, QueryResult, run_read_query
from sluice.sql_access import people_statement

log = logging.getLogger(__name__)


def create_query_app(reader: Client, health: Callable[[], dict[str, Any]]) -> FastAPI:
    """``reader`` must come from ``open_clickhouse(url, read_only=True)``."""
    app = FastAPI(title="sluice sinks", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(ClickHouseQueryError)
    async def refused(_: Request, exc: ClickHouseQueryError) -> JSONResponse:
        return JSONResponse(status_code=400, content=exc.body())

    @app.exception_handler(RequestValidationError)
    async def malformed(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
        if first.get("type") == "json_invalid":
            message = "the request body is not valid JSON"
        elif where:
            message = f"{where}: {first.get('msg', 'invalid')}"
        else:
            message = "the request body must be an object with sql and params"
        return JSONResponse(
            status_code=400, content=ClickHouseQueryError("invalid_request", message).body()
        )

    @app.exception_handler(Exception)
    async def failed(_: Request, exc: Exception) -> JSONResponse:
        log.exception("query endpoint failed")
        body = ClickHouseQueryError("internal_error", "the query could not be answered").body()
        return JSONResponse(status_code=500, content=body)

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "sinks": health()}

    @app.post("/query")
    async def query(request: QueryRequest) -> QueryResult:
        # The same rules as `sluice sql`: no secrets from system tables, no settings changes.
        people_statement(request.sql)
        return await asyncio.to_thread(run_read_query, reader, request)

    return app
