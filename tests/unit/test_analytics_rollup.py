"""The analytics tables on embedded chdb: every figure of synthetic jobs, replays, retries.

Jobs go through the real sink code path (decode → rows → batched insert) into a temporary
chdb directory; the figures are read through the `jobs` and `token_gaps` views.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from processors.job_types import chat_messages
from sluice.clickhouse import QueryRequest, run_read_query
from sluice.pricing import estimate_cost_usd
from sluice.tokens import count_chat_prompt_tokens
from tests.unit.analytics_jobs import (
    CANCELLED_COMPLETION_TOKENS,
    SyntheticJob,
    analytics_store,
    origins,
    synthetic_jobs,
    write_through_sink,
)

JOBS = synthetic_jobs()
BY_NAME = {job.name: job for job in JOBS}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Client, Client]]:
    with analytics_store(str(tmp_path_factory.mktemp("analytics") / "ch")) as clients:
        yield clients


@pytest.fixture(scope="module")
async def loaded(store: tuple[Client, Client]) -> Client:
    writer, reader = store
    for job in JOBS:
        await write_through_sink(writer, origins(job))
    return reader


def read(reader: Client, sql: str, **params: Any) -> list[dict[str, Any]]:
    return run_read_query(reader, QueryRequest(sql=sql, params=params)).records()


def quantile(values: list[float], level: float) -> float:
    """Linear interpolation between closest ranks (numpy's default): the figure's definition."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * level
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def job_row(reader: Client, job: SyntheticJob) -> dict[str, Any]:
    rows = read(reader, "SELECT * FROM jobs WHERE job_id = {j:String}", j=job.job_id)
    assert len(rows) == 1
    return rows[0]


@pytest.mark.parametrize("job", JOBS, ids=lambda j: j.name)
async def test_each_job_has_its_exact_figures(loaded: Client, job: SyntheticJob) -> None:
    row = job_row(loaded, job)
    usage = job.final_usage()
    assert row["status"] == job.status
    assert row["attempt"] == job.attempt
    assert (row["user_id"], row["model"]) == (job.user_id, job.model)
    assert (row["job_type"], row["priority"]) == (job.job_type.value, job.priority.value)
    assert row["queue_wait_ms"] == job.queue_wait_ms
    assert row["ttft_ms"] == job.ttft_ms
    assert row["duration_ms"] == pytest.approx(job.duration_ms)
    assert row["tokens_per_second"] == pytest.approx(job.tokens_per_second)
    assert row["token_gaps_ms"] == job.gaps_ms
    assert row["streamed_tokens"] == len(job.pieces)
    assert (row["prompt_tokens"], row["completion_tokens"]) == (
        usage.prompt_tokens,
        usage.completion_tokens,
    )
    assert row["usage_source"] == ("reported" if job.usage else "counted")
    assert row["estimated_cost_usd"] == pytest.approx(job.cost_usd, abs=1e-12)
    assert row["error_code"] == job.error_code


async def test_a_cancelled_stream_is_billed_for_what_it_counted(loaded: Client) -> None:
    job = BY_NAME["b-4o-cancelled"]
    prompt = count_chat_prompt_tokens("gpt-4o", chat_messages(job.job_type, job.prompt))
    row = job_row(loaded, job)
    assert row["status"] == "cancelled" and row["usage_source"] == "counted"
    assert row["completion_tokens"] == CANCELLED_COMPLETION_TOKENS
    assert row["prompt_tokens"] == prompt > 0
    # gpt-4o: $2.50 per million input tokens, $10.00 per million output tokens.
    expected = (prompt * 2.50 + CANCELLED_COMPLETION_TOKENS * 10.00) / 1_000_000
    assert row["estimated_cost_usd"] == pytest.approx(expected, abs=1e-12)
    assert expected == pytest.approx(estimate_cost_usd("gpt-4o", prompt, 7), abs=1e-12)


async def test_superseded_attempts_never_mix_into_the_figures(loaded: Client) -> None:
    for name in ("a-mini-failed", "a-mini-retried"):
        job = BY_NAME[name]
        gaps = read(
            loaded,
            "SELECT attempt, count() AS n FROM token_gaps WHERE job_id = {j:String} "
            "GROUP BY attempt",
            j=job.job_id,
        )
        assert gaps == [{"attempt": job.attempt, "n": len(job.gaps_ms)}]


async def test_totals_across_all_jobs(loaded: Client) -> None:
    ids = [job.job_id for job in JOBS]
    [totals] = read(
        loaded,
        """SELECT count() AS jobs,
                  countIf(status = 'completed') AS completed,
                  countIf(status = 'failed') AS failed,
                  countIf(status = 'cancelled') AS cancelled,
                  sum(attempt) AS attempts,
                  sum(estimated_cost_usd) AS cost,
                  sumIf(estimated_cost_usd, usage_source = 'counted') AS counted_cost,
                  quantilesExactInclusive(0.5, 0.95, 0.99)(queue_wait_ms) AS queue_wait,
                  quantilesExactInclusive(0.5, 0.95, 0.99)(ttft_ms) AS ttft,
                  quantilesExactInclusiveArray(0.5, 0.95, 0.99)(token_gaps_ms) AS gaps,
                  groupArrayIf(error_code, status = 'failed') AS errors
           FROM jobs WHERE has({ids:Array(String)}, job_id)""",
        ids=ids,
    )
    assert (totals["jobs"], totals["completed"], totals["failed"], totals["cancelled"]) == (
        5,
        3,
        1,
        1,
    )
    assert totals["attempts"] == 1 + 3 + 1 + 1 + 2
    assert totals["cost"] == pytest.approx(sum(j.cost_usd for j in JOBS), abs=1e-12)
    counted = [j.cost_usd for j in JOBS if j.usage is None]
    assert totals["counted_cost"] == pytest.approx(sum(counted), abs=1e-12)
    levels = (0.5, 0.95, 0.99)
    waits = [float(j.queue_wait_ms) for j in JOBS]
    assert totals["queue_wait"] == pytest.approx([quantile(waits, q) for q in levels])
    ttfts = [float(j.ttft_ms) for j in JOBS]
    assert totals["ttft"] == pytest.approx([quantile(ttfts, q) for q in levels])
    gaps = [float(g) for j in JOBS for g in j.gaps_ms]
    assert totals["gaps"] == pytest.approx([quantile(gaps, q) for q in levels])
    assert totals["errors"] == ["stream_broken"]


async def test_replayed_events_change_no_figure(
    store: tuple[Client, Client], loaded: Client
) -> None:
    writer, _ = store
    before = read(loaded, "SELECT * FROM jobs ORDER BY job_id")
    # A sink that restarted re-reads everything after its last commit, in other batches.
    everything = [origin for job in JOBS for origin in origins(job)]
    await write_through_sink(writer, everything[::-1])
    for job in JOBS:
        await write_through_sink(writer, origins(job)[-2:])
    assert read(loaded, "SELECT * FROM jobs ORDER BY job_id") == before
    writer.command("OPTIMIZE TABLE job_rollup FINAL")
    assert read(loaded, "SELECT * FROM jobs ORDER BY job_id") == before


async def test_a_late_lower_attempt_does_not_replace_the_last(
    store: tuple[Client, Client], loaded: Client
) -> None:
    writer, _ = store
    job = BY_NAME["a-mini-retried"]
    first_try = replace(job, attempt=1, status="failed", error_code="server_error")
    await write_through_sink(writer, origins(first_try)[-1:])
    row = job_row(loaded, job)
    assert (row["attempt"], row["status"], row["token_gaps_ms"]) == (2, "completed", job.gaps_ms)


async def test_a_job_still_running_is_not_in_the_figures(
    store: tuple[Client, Client], loaded: Client
) -> None:
    writer, _ = store
    running = replace(BY_NAME["b-4o-completed"], job_id="still-running")
    await write_through_sink(writer, origins(running)[:-1])  # tokens, no terminal event yet
    assert read(loaded, "SELECT job_id FROM jobs WHERE job_id = 'still-running'") == []
