"""Every ```sql example in docs/analytics.md runs verbatim, as `sluice sql` runs it."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from sluice.settings import get_settings
from sluice.sql_access import run_people_sql
from tests.unit.analytics_jobs import (
    analytics_store,
    origins,
    query_endpoint,
    synthetic_jobs,
    write_through_sink,
)

DOC = Path(__file__).parents[2] / "docs" / "analytics.md"
EXAMPLES = re.findall(r"^```sql\n(.*?)^```", DOC.read_text(), re.DOTALL | re.MULTILINE)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Client, Client]]:
    with analytics_store(str(tmp_path_factory.mktemp("docs") / "ch")) as clients:
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
    monkeypatch.setenv("SLUICE_SINKS_QUERY_PORT", str(endpoint_port))
    monkeypatch.setenv("SLUICE_CLICKHOUSE_URL", "chdb:///opened/by/the/sinks/process")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_the_doc_has_at_least_ten_examples() -> None:
    assert len(EXAMPLES) >= 10


@pytest.mark.parametrize("sql", EXAMPLES, ids=[f"example-{i + 1}" for i in range(len(EXAMPLES))])
def test_each_example_runs_and_answers(embedded: None, sql: str) -> None:
    result = run_people_sql(sql)
    assert result.columns
    assert result.rows, "the synthetic jobs should give every example something to show"
