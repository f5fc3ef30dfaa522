"""Schema migrations for the sinks' stores: Postgres with yoyo, ClickHouse with a small runner.

ClickHouse is migrated by ``sluice sinks`` at start-up, inside the process that owns the
store: an embedded chdb directory can be opened by one process only, so ``migrate_all``
(``sluice migrate``) touches ClickHouse only when it is a server.
"""

from __future__ import annotations

import logging
import re
from contextlib import closing
from pathlib import Path

from clickhouse_connect.driver.client import Client
from yoyo import get_backend, read_migrations

from sinks.postgres_urls import yoyo_url
from sluice.clickhouse import open_clickhouse
from sluice.settings import get_settings

log = logging.getLogger(__name__)

POSTGRES_DIR = Path(__file__).parent / "postgres"
CLICKHOUSE_DIR = Path(__file__).parent / "clickhouse"

# Hand-written: no well-kept migration library drives both chdb and a server through
# clickhouse-connect.
_SCHEMA_MIGRATIONS = """
CREATE TABLE IF NOT EXISTS schema_migrations
(
    version     String,
    applied_at  DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY version
"""
_VERSION = re.compile(r"^(\d+)_[\w-]+\.sql$")


def migrate_postgres(url: str) -> list[str]:
    """Apply pending Postgres migrations; return the ids applied."""
    backend = get_backend(yoyo_url(url))
    try:
        migrations = read_migrations(str(POSTGRES_DIR))
        with backend.lock():
            pending = backend.to_apply(migrations)
            backend.apply_migrations(pending)
        applied = [m.id for m in pending]
    finally:
        backend.connection.close()
    if applied:
        log.info("postgres migrations applied: %s", ", ".join(applied))
    return applied


def clickhouse_migrations() -> list[tuple[str, Path]]:
    """The versioned ClickHouse migration files, oldest first."""
    found = [(m.group(1), p) for p in CLICKHOUSE_DIR.iterdir() if (m := _VERSION.match(p.name))]
    return sorted(found)


def migrate_clickhouse(client: Client) -> list[str]:
    """Apply pending ClickHouse migrations; return the versions applied.

    ClickHouse DDL is not transactional, so every statement is idempotent
    (IF NOT EXISTS): a run interrupted before its version is recorded is safe to repeat.
    """
    client.command(_SCHEMA_MIGRATIONS)
    done = {row[0] for row in client.query("SELECT version FROM schema_migrations").result_rows}
    applied = []
    for version, path in clickhouse_migrations():
        if version in done:
            continue
        for statement in sql_statements(path.read_text()):
            client.command(statement)
        client.insert("schema_migrations", [[version]], column_names=["version"])
        applied.append(version)
    if applied:
        log.info("clickhouse migrations applied: %s", ", ".join(applied))
    return applied


def sql_statements(script: str) -> list[str]:
    """Split a migration file on semicolons; our DDL holds none inside literals."""
    without_comments = re.sub(r"--[^\n]*", "", script)
    return [s.strip() for s in without_comments.split(";") if s.strip()]


def migrate_all() -> None:
    """Postgres always; ClickHouse only when it is a server (see the module docstring)."""
    settings = get_settings()
    migrate_postgres(settings.resolved_database_url)
    if settings.clickhouse_is_embedded:
        log.info("embedded ClickHouse is migrated by `sluice sinks` when it starts")
        return
    with closing(open_clickhouse(settings.resolved_clickhouse_url)) as client:
        migrate_clickhouse(client)
