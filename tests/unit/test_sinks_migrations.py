"""Migration files and the URLs that reach them."""

from __future__ import annotations

import pytest
from yoyo import read_migrations

from sinks.migrations import POSTGRES_DIR, clickhouse_migrations, sql_statements
from sinks.postgres_urls import psycopg_url, yoyo_url


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:p@db:5432/sluice?sslmode=require",
        "postgres://u:p@db:5432/sluice?sslmode=require",
        "postgresql+psycopg://u:p@db:5432/sluice?sslmode=require",
    ],
)
def test_one_url_for_yoyo_and_for_libpq(url: str) -> None:
    assert yoyo_url(url) == "postgresql+psycopg://u:p@db:5432/sluice?sslmode=require"
    assert psycopg_url(url) == "postgresql://u:p@db:5432/sluice?sslmode=require"


def test_other_schemes_are_refused() -> None:
    with pytest.raises(ValueError, match="mysql"):
        yoyo_url("mysql://u@db/x")


def test_yoyo_reads_the_postgres_migrations_with_their_rollbacks() -> None:
    migrations = read_migrations(str(POSTGRES_DIR))
    assert [m.id for m in migrations] == ["0001_jobs", "0002_accounts"]


def test_clickhouse_migrations_are_versioned_and_ordered() -> None:
    versions = [v for v, _ in clickhouse_migrations()]
    assert versions == sorted(versions) and versions[:2] == ["0001", "0002"]
    for _, path in clickhouse_migrations():
        statements = sql_statements(path.read_text())
        assert statements and all("IF NOT EXISTS" in s for s in statements)


def test_statements_are_split_without_comments() -> None:
    script = "-- a; comment\nCREATE TABLE a (x Int8) ENGINE = Memory;\n\nSELECT 1;\n"
    assert sql_statements(script) == ["CREATE TABLE a (x Int8) ENGINE = Memory", "SELECT 1"]
