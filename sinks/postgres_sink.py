"""``job-events`` → the Postgres ``jobs`` table: one idempotent upsert per event, one
transaction per poll, offsets committed after the transaction."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.types.json import Jsonb

from schemas.events import decode_job_event
from sinks.batching import FlushPolicy
from sinks.dead_letters import DeadLetterQueue
from sinks.decoding import decode
from sinks.job_rows import STATUS_RANK, JobRow, job_row
from sinks.pipeline import Accepted, Origin, Rejected
from sinks.postgres_urls import psycopg_url
from sinks.runner import SinkRunner

log = logging.getLogger(__name__)

JOB_COLUMNS = ("user_id", "job_type", "priority", "prompt", "config", "metadata", "submitted_at")
ATTEMPT_COLUMNS = (
    "status",
    "attempt",
    "response",
    "parsed_response",
    "token_usage",
    "processing_time_ms",
    "streaming_stats",
    "error_message",
    "error_code",
    "started_at",
    "completed_at",
    "last_event_id",
)
JSON_COLUMNS = frozenset(
    {"config", "metadata", "parsed_response", "token_usage", "streaming_stats"}
)
_ALL_COLUMNS = ("job_id", *JOB_COLUMNS, *ATTEMPT_COLUMNS)


def _rank(status: str) -> str:
    ranks = " ".join(f"WHEN '{s.value}' THEN {rank}" for s, rank in STATUS_RANK.items())
    return f"CASE {status} {ranks} ELSE 0 END"


# job_rows.supersedes, in SQL, evaluated against the row as it was before this statement.
_SUPERSEDES = (
    f"(COALESCE(EXCLUDED.attempt, 0), {_rank('EXCLUDED.status')})"
    f" > (COALESCE(j.attempt, 0), {_rank('j.status')})"
)
_FILLS_JOB = "(j.submitted_at IS NULL AND EXCLUDED.submitted_at IS NOT NULL)"

UPSERT_JOB = f"""
INSERT INTO jobs AS j ({", ".join(_ALL_COLUMNS)}, updated_at)
VALUES ({", ".join(f"%({c})s" for c in _ALL_COLUMNS)}, now())
ON CONFLICT (job_id) DO UPDATE SET
    {", ".join(f"{c} = COALESCE(j.{c}, EXCLUDED.{c})" for c in JOB_COLUMNS)},
    {", ".join(f"{c} = CASE WHEN {_SUPERSEDES} THEN EXCLUDED.{c} ELSE j.{c} END" for c in ATTEMPT_COLUMNS)},
    updated_at = now()
WHERE {_SUPERSEDES} OR {_FILLS_JOB}
"""  # noqa: E501


def job_params(row: JobRow) -> dict[str, Any]:
    params = asdict(row)
    for column in JSON_COLUMNS:
        if params[column] is not None:
            params[column] = Jsonb(params[column])
    params["status"] = row.status.value
    return params


def job_event_row(origin: Origin) -> JobRow:
    """Decode and validate one ``job-events`` message."""
    return job_row(decode(origin, decode_job_event))


class PostgresJobWriter:
    """Upserts a batch in one transaction over one connection, reconnecting after failures."""

    def __init__(self, url: str, connect_timeout_s: int = 10) -> None:
        self._url = psycopg_url(url)
        self._connect_timeout_s = connect_timeout_s
        self._conn: psycopg.AsyncConnection[Any] | None = None

    async def write(self, rows: Sequence[Accepted[JobRow]]) -> list[Rejected]:
        conn = await self._connection()
        try:
            try:
                async with conn.transaction(), conn.cursor() as cur:
                    await cur.executemany(UPSERT_JOB, [job_params(a.row) for a in rows])
                return []
            except psycopg.DataError:
                return await self._write_each(conn, rows)
        except psycopg.OperationalError:
            await self.close()
            raise

    async def _write_each(
        self, conn: psycopg.AsyncConnection[Any], rows: Sequence[Accepted[JobRow]]
    ) -> list[Rejected]:
        """Find the events Postgres refuses (a savepoint each) and keep the rest."""
        refused = []
        async with conn.transaction():
            for accepted in rows:
                try:
                    async with conn.transaction():
                        await conn.execute(UPSERT_JOB, job_params(accepted.row))
                except psycopg.DataError as exc:
                    reason = f"postgres refused the event: {exc.diag.message_primary}"
                    refused.append(Rejected(accepted.origin, reason))
        return refused

    def is_transient(self, exc: BaseException) -> bool:
        return isinstance(
            exc,
            psycopg.OperationalError | pg_errors.SerializationFailure | pg_errors.DeadlockDetected,
        )

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = await psycopg.AsyncConnection.connect(
                self._url, autocommit=True, connect_timeout=self._connect_timeout_s
            )
        return self._conn

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None


def postgres_sink(
    consumer: Any, writer: PostgresJobWriter, dead_letters: DeadLetterQueue, max_rows: int = 500
) -> SinkRunner[JobRow]:
    """Writes after every poll: Postgres takes a transaction per batch of any size well."""
    policy = FlushPolicy(max_rows=max_rows, max_wait_s=0.0)
    return SinkRunner("postgres sink", consumer, job_event_row, writer, policy, dead_letters)
