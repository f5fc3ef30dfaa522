"""The dashboard's Postgres reads: jobs by status, active jobs, recent failures, throughput.

Each query is served by the ``(status, updated_at)`` index of ``jobs``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

ACTIVE_STATUSES = ("queued", "running", "retrying")
FINISHED_STATUSES = ("completed", "failed", "cancelled")


def make_ops_pool(database_url: str) -> AsyncConnectionPool:
    """A small pool of its own, so admin reads never take connections from user requests."""
    return AsyncConnectionPool(
        database_url,
        min_size=1,
        max_size=4,
        open=False,
        timeout=5.0,
        check=AsyncConnectionPool.check_connection,  # dead after a Postgres restart
        kwargs={"row_factory": dict_row, "connect_timeout": 3},
    )


async def _rows(pool: AsyncConnectionPool, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
    async with pool.connection() as conn:
        cur = await conn.execute(sql, params)
        return await cur.fetchall()


async def jobs_by_status(pool: AsyncConnectionPool) -> dict[str, int]:
    rows = await _rows(pool, "SELECT status, count(*) AS n FROM jobs GROUP BY status")
    return {row["status"]: int(row["n"]) for row in rows}


async def finished_last_minute(pool: AsyncConnectionPool) -> int:
    rows = await _rows(
        pool,
        "SELECT count(*) AS n FROM jobs WHERE status = ANY(%s) "
        "AND updated_at > now() - interval '1 minute'",
        (list(FINISHED_STATUSES),),
    )
    return int(rows[0]["n"])


def _job_summary(row: dict[str, Any]) -> dict[str, Any]:
    config = row.get("config") or {}
    stats = row.get("streaming_stats") or {}
    return {
        "job_id": row["job_id"],
        "user_id": row["user_id"],
        "status": row["status"],
        "job_type": row["job_type"],
        "priority": row["priority"],
        "model": config.get("model"),
        "max_tokens": config.get("max_tokens"),
        "attempt": row["attempt"],
        "submitted_at": _iso(row["submitted_at"]),
        "updated_at": _iso(row["updated_at"]),
        "error_code": row["error_code"],
        "error_message": row["error_message"],
        "token_count": stats.get("token_count"),
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


_SUMMARY_COLUMNS = (
    "job_id, user_id, status, job_type, priority, config, attempt, submitted_at, updated_at, "
    "error_code, error_message, streaming_stats"
)


async def active_jobs(
    pool: AsyncConnectionPool, window_s: int, limit: int = 25
) -> list[dict[str, Any]]:
    """Jobs queued, running or retrying that changed within ``window_s``, newest first."""
    rows = await _rows(
        pool,
        f"SELECT {_SUMMARY_COLUMNS} FROM jobs WHERE status = ANY(%s) "
        "AND updated_at > now() - make_interval(secs => %s) "
        "ORDER BY updated_at DESC LIMIT %s",
        (list(ACTIVE_STATUSES), window_s, limit),
    )
    return [_job_summary(r) for r in rows]


async def recent_failures(pool: AsyncConnectionPool, limit: int = 20) -> list[dict[str, Any]]:
    rows = await _rows(
        pool,
        f"SELECT {_SUMMARY_COLUMNS} FROM jobs WHERE status = 'failed' "
        "ORDER BY updated_at DESC LIMIT %s",
        (limit,),
    )
    return [_job_summary(r) for r in rows]


async def job_status(pool: AsyncConnectionPool, job_id: str) -> str | None:
    rows = await _rows(pool, "SELECT status FROM jobs WHERE job_id = %s", (job_id,))
    return str(rows[0]["status"]) if rows else None
