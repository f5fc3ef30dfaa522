"""ClickHouse for the stack: embedded chdb needs only its directory; a server must answer /ping."""

from __future__ import annotations

from pathlib import Path

import httpx

from sluice.stack.probes import http_ok

CHDB_SCHEME = "chdb://"


def chdb_directory(clickhouse_url: str) -> Path | None:
    """The data directory of an embedded ``chdb://<dir>`` URL; None for a server URL."""
    if not clickhouse_url.startswith(CHDB_SCHEME):
        return None
    return Path(clickhouse_url.removeprefix(CHDB_SCHEME))


def ping_url(clickhouse_url: str) -> str:
    """The server's /ping endpoint, from its base URL (credentials and database dropped)."""
    url = httpx.URL(clickhouse_url)
    return str(url.copy_with(username=None, password=None, path="/ping", query=None))


def public_address(clickhouse_url: str) -> str:
    """scheme://host:port of a server URL, safe to print."""
    url = httpx.URL(clickhouse_url)
    port = f":{url.port}" if url.port else ""
    return f"{url.scheme}://{url.host}{port}"


def server_ready(clickhouse_url: str) -> bool:
    return http_ok(ping_url(clickhouse_url))
