"""The jobs upsert on a real Postgres: events in any order, replays and retries.

Needs a Postgres server (SLUICE_TEST_DATABASE_URL, else the configured one), so it is
marked integration; each run works in a schema of its own and drops it afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from psycopg.rows import dict_row

from schemas.events import (
    ErrorInfo,
    JobCompleted,
    JobEvent,
    JobFailed,
    JobQueued,
    JobStarted,
    Timings,
    Usage,
)
from schemas.jobs import JobConfig, JobStatus, JobType
from schemas.topics import Priority
from sinks.job_rows import JobRow, job_row, supersedes
from sinks.migrations import POSTGRES_DIR
from sinks.pipeline import Accepted, Origin
from sinks.postgres_sink import PostgresJobWriter
from sinks.postgres_urls import psycopg_url
from sluice.settings import get_settings

pytestmark = pytest.mark.integration

T0 = 1_780_000_000.0


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    base = psycopg_url(
        os.environ.get("SLUICE_TEST_DATABASE_URL") or get_settings().resolved_database_url
    )
    schema = f"sinks_test_{uuid.uuid4().hex[:8]}"
    try:
        admin = psycopg.connect(base, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.fail(f"no Postgres at {base}: {exc}; start the stack with `make up`")
    with admin:
        admin.execute(f"CREATE SCHEMA {schema}")
        admin.execute(f"SET search_path TO {schema}")
        admin.execute((POSTGRES_DIR / "0001_jobs.sql").read_text())
    separator = "&" if "?" in base else "?"
    yield f"{base}{separator}options={quote(f'-csearch_path={schema}')}"
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
async def writer(pg_url: str) -> AsyncIterator[PostgresJobWriter]:
    w = PostgresJobWriter(pg_url)
    yield w
    await w.close()


async def apply(writer: PostgresJobWriter, *rows: JobRow) -> list[Any]:
    return await writer.write(
        [Accepted(r, Origin("job-events", 0, i, None, b"{}")) for i, r in enumerate(rows)]
    )


async def stored(pg_url: str, job_id: str) -> dict[str, Any]:
    async with await psycopg.AsyncConnection.connect(pg_url, row_factory=dict_row) as conn:
        cur = await conn.execute("SELECT * FROM jobs WHERE job_id = %s", (job_id,))
        row = await cur.fetchone()
    assert row is not None
    return row


def context(job_id: str) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "user_id": "u",
        "job_type": JobType.analysis,
        "priority": Priority.low,
    }


def queued(job_id: str) -> JobEvent:
    return JobQueued(**context(job_id), prompt="p", config=JobConfig(), submitted_at=T0)


def started(job_id: str, attempt: int) -> JobEvent:
    return JobStarted(
        **context(job_id), attempt=attempt, model="m", worker="w", started_at=T0 + attempt
    )


def finished(job_id: str, attempt: int, *, failed: bool = False) -> JobEvent:
    fields: dict[str, Any] = {
        **context(job_id),
        "attempt": attempt,
        "model": "m",
        "token_count": 2,
        "response": f"answer {attempt}",
        "usage": Usage(prompt_tokens=1, completion_tokens=2, total_tokens=3),
        "timings": Timings(queue_wait_ms=5, ttft_ms=6, duration_ms=7),
        "tokens_per_second": 1.0,
        "estimated_cost_usd": 0.5,
        "started_at": T0 + attempt,
        "finished_at": T0 + attempt + 0.5,
    }
    if failed:
        return JobFailed(**fields, error=ErrorInfo(code="llm_error", message="boom"))
    return JobCompleted(**fields)


def new_id() -> str:
    return f"job-{uuid.uuid4().hex[:12]}"


async def test_events_in_any_order_end_in_the_same_row(
    writer: PostgresJobWriter, pg_url: str
) -> None:
    in_order, reversed_order = new_id(), new_id()
    await apply(writer, *(job_row(e(in_order)) for e in _lifecycle()))
    for make in reversed(_lifecycle()):
        await apply(writer, job_row(make(reversed_order)))
    a, b = await stored(pg_url, in_order), await stored(pg_url, reversed_order)
    for row in (a, b):
        assert (row["status"], row["attempt"], row["response"]) == ("completed", 1, "answer 1")
        assert row["prompt"] == "p" and row["submitted_at"] is not None
        assert row["token_usage"] == {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
        assert row["streaming_stats"]["estimated_cost_usd"] == 0.5


def _lifecycle() -> list[Any]:
    return [queued, lambda j: started(j, 1), lambda j: finished(j, 1)]


async def test_a_replay_changes_nothing(writer: PostgresJobWriter, pg_url: str) -> None:
    job_id = new_id()
    events = [job_row(queued(job_id)), job_row(started(job_id, 1)), job_row(finished(job_id, 1))]
    await apply(writer, *events)
    before = await stored(pg_url, job_id)
    await apply(writer, *events)
    assert await stored(pg_url, job_id) == before


async def test_a_retry_supersedes_the_failed_attempt_and_stale_events_are_ignored(
    writer: PostgresJobWriter, pg_url: str
) -> None:
    job_id = new_id()
    await apply(writer, job_row(queued(job_id)), job_row(finished(job_id, 1, failed=True)))
    assert (await stored(pg_url, job_id))["error_code"] == "llm_error"
    await apply(writer, job_row(started(job_id, 2)))
    row = await stored(pg_url, job_id)
    assert (row["status"], row["attempt"], row["error_code"], row["response"]) == (
        "running",
        2,
        None,
        None,
    )
    await apply(writer, job_row(finished(job_id, 1, failed=True)), job_row(started(job_id, 1)))
    assert (await stored(pg_url, job_id))["attempt"] == 2
    await apply(writer, job_row(finished(job_id, 2)))
    row = await stored(pg_url, job_id)
    assert (row["status"], row["attempt"], row["response"]) == ("completed", 2, "answer 2")


S = JobStatus
CASES = [(a, s) for a in (None, 1, 2) for s in (S.queued, S.running, S.completed, S.failed)]


@pytest.mark.parametrize("current", CASES)
async def test_the_sql_agrees_with_supersedes(
    writer: PostgresJobWriter, pg_url: str, current: tuple[int | None, JobStatus]
) -> None:
    for incoming in CASES:
        job_id = new_id()
        await apply(writer, JobRow(job_id, current[1], "first", attempt=current[0]))
        await apply(writer, JobRow(job_id, incoming[1], "second", attempt=incoming[0]))
        row = await stored(pg_url, job_id)
        expected = "second" if supersedes(incoming, current) else "first"
        assert row["last_event_id"] == expected, (incoming, current)


async def test_an_event_postgres_refuses_is_returned_and_the_rest_is_stored(
    writer: PostgresJobWriter, pg_url: str
) -> None:
    good, bad = new_id(), new_id()
    refused = await apply(
        writer,
        JobRow(good, S.queued, "e1", prompt="fine"),
        JobRow(bad, S.queued, "e2", prompt="nul \x00 inside"),
    )
    assert [r.origin.offset for r in refused] == [1]
    assert "postgres refused" in refused[0].reason
    assert (await stored(pg_url, good))["prompt"] == "fine"
