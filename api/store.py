"""The api's reads and writes in Postgres: jobs (kept by the sink), tokens, admissions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool


def make_pool(database_url: str, max_size: int = 20) -> AsyncConnectionPool:
    return AsyncConnectionPool(
        database_url,
        min_size=1,
        max_size=max_size,
        open=False,
        timeout=5.0,  # fail fast with a 503 rather than hold requests while Postgres is down
        # After a Postgres restart the pooled connections are dead: test each on checkout.
        check=AsyncConnectionPool.check_connection,
        kwargs={"row_factory": dict_row, "connect_timeout": 3},
    )


class JobStore:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def get_job(self, job_id: str) -> dict[str, Any] | None:
        async with self._pool.connection() as conn:
            cur = await conn.execute("SELECT * FROM jobs WHERE job_id = %s", (job_id,))
            row: dict[str, Any] | None = await cur.fetchone()  # type: ignore[assignment]
            return row

    async def list_jobs(
        self,
        user_id: str | None,
        filters: dict[str, Any],
        before: tuple[datetime, str] | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        """A page of jobs, newest first; `before` is the (submitted_at, job_id) cursor."""
        where: list[str] = ["submitted_at IS NOT NULL"]
        params: list[Any] = []
        if user_id is not None:
            where.append("user_id = %s")
            params.append(user_id)
        for column in ("status", "job_type", "priority"):
            if filters.get(column) is not None:
                where.append(f"{column} = %s")
                params.append(filters[column])
        if filters.get("since") is not None:
            where.append("submitted_at >= %s")
            params.append(filters["since"])
        if before is not None:
            where.append("(submitted_at, job_id) < (%s, %s)")
            params.extend(before)
        query = (
            "SELECT * FROM jobs WHERE "
            + " AND ".join(where)
            + " ORDER BY submitted_at DESC, job_id DESC LIMIT %s"
        )
        async with self._pool.connection() as conn:
            cur = await conn.execute(query, (*params, limit))
            rows: list[dict[str, Any]] = await cur.fetchall()  # type: ignore[assignment]
            return rows

    async def queue_position(self, priority: str, submitted_at: datetime, job_id: str) -> int:
        """1 for the next job to start: queued jobs of higher priority, or older at the same."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(_QUEUE_AHEAD, (priority, priority, submitted_at, job_id))
            row: dict[str, Any] | None = await cur.fetchone()  # type: ignore[assignment]
        return 1 + int(row["ahead"] if row else 0)

    async def recent_mean_duration_s(self, default_s: float = 5.0) -> float:
        async with self._pool.connection() as conn:
            cur = await conn.execute(_RECENT_DURATION)
            row: dict[str, Any] | None = await cur.fetchone()  # type: ignore[assignment]
        mean_ms = row["mean_ms"] if row else None
        return default_s if mean_ms is None else float(mean_ms) / 1000


_PRIORITY_RANK = "array_position(ARRAY['urgent','high','normal','low'], {})"
_QUEUE_AHEAD = f"""
SELECT count(*) AS ahead FROM jobs
WHERE status = 'queued' AND (
  {_PRIORITY_RANK.format("priority")} < {_PRIORITY_RANK.format("%s")}
  OR (priority = %s AND (submitted_at, job_id) < (%s, %s)))
"""
_RECENT_DURATION = """
SELECT avg(processing_time_ms) AS mean_ms FROM (
  SELECT processing_time_ms FROM jobs WHERE status = 'completed'
  ORDER BY completed_at DESC LIMIT 50) recent
"""


class TokenStore:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def find(self, token_id: str) -> dict[str, Any] | None:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT t.token_id, t.user_id, t.secret_hash, t.scopes, t.revoked_at, "
                "t.last_used_at < now() - interval '1 minute' OR t.last_used_at IS NULL "
                "AS stale FROM api_tokens t WHERE t.token_id = %s",
                (token_id,),
            )
            row: dict[str, Any] | None = await cur.fetchone()  # type: ignore[assignment]
            if row is not None and row["stale"]:
                # At most one write a minute per token, not one per request.
                await conn.execute(
                    "UPDATE api_tokens SET last_used_at = now() WHERE token_id = %s", (token_id,)
                )
        return row
