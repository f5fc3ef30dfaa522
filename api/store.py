"""Reads of the jobs table that the Postgres sink keeps."""

from __future__ import annotations

from typing import Any

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool


class JobStore:
    def __init__(self, database_url: str) -> None:
        self._pool = AsyncConnectionPool(
            database_url, min_size=1, max_size=10, open=False, kwargs={"row_factory": dict_row}
        )

    async def open(self) -> None:
        await self._pool.open(wait=False)

    async def close(self) -> None:
        await self._pool.close()

    async def get_job(self, job_id: str) -> dict[str, Any] | None:
        async with self._pool.connection() as conn:
            cur = await conn.execute("SELECT * FROM jobs WHERE job_id = %s", (job_id,))
            row: dict[str, Any] | None = await cur.fetchone()  # type: ignore[assignment]
            return row
