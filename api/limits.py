"""Per-user limits on submissions per minute and on jobs in flight.

Checked and recorded in one Postgres transaction under a per-user advisory lock, so
they hold across any number of api replicas. The job is produced to Kafka inside that
transaction: if Kafka refuses it, the admission is rolled back and nothing counts.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from psycopg_pool import AsyncConnectionPool

from schemas.jobs import TERMINAL_STATUSES


@dataclass(frozen=True)
class UserLimits:
    submissions_per_minute: int
    max_active_jobs: int
    active_window_s: int


class LimitExceeded(Exception):
    def __init__(self, limit: str, allowed: int, retry_after_s: int) -> None:
        super().__init__(f"{limit} limit of {allowed} reached")
        self.limit = limit
        self.allowed = allowed
        self.retry_after_s = retry_after_s


_USAGE = """
SELECT
  count(*) FILTER (WHERE a.admitted_at > now() - interval '1 minute') AS last_minute,
  extract(epoch FROM now() - min(a.admitted_at)
          FILTER (WHERE a.admitted_at > now() - interval '1 minute')) AS oldest_age_s,
  count(*) FILTER (WHERE j.status IS NULL OR NOT (j.status = ANY(%(terminal)s))) AS active
FROM job_admissions a LEFT JOIN jobs j USING (job_id)
WHERE a.user_id = %(user)s AND a.admitted_at > now() - make_interval(secs => %(window)s)
"""


class Admissions:
    def __init__(self, pool: AsyncConnectionPool, limits: UserLimits) -> None:
        self._pool = pool
        self._limits = limits

    async def admit(
        self, job_id: str, user_id: str, produce: Callable[[], Awaitable[None]]
    ) -> None:
        """Admit the job if the user is within limits, running `produce` before committing."""
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (user_id,))
            cur = await conn.execute(
                _USAGE,
                {
                    "user": user_id,
                    "window": self._limits.active_window_s,
                    "terminal": [s.value for s in TERMINAL_STATUSES],
                },
            )
            usage: dict[str, Any] | None = await cur.fetchone()  # type: ignore[assignment]
            assert usage is not None  # an aggregate always returns one row
            self._check(usage)
            await conn.execute(
                "INSERT INTO job_admissions (job_id, user_id) VALUES (%s, %s)", (job_id, user_id)
            )
            await produce()

    def _check(self, usage: dict[str, Any]) -> None:
        limits = self._limits
        if int(usage["last_minute"] or 0) >= limits.submissions_per_minute:
            oldest = float(usage["oldest_age_s"] or 0.0)
            retry = max(1, math.ceil(60.0 - oldest))
            raise LimitExceeded("submissions_per_minute", limits.submissions_per_minute, retry)
        if int(usage["active"] or 0) >= limits.max_active_jobs:
            raise LimitExceeded("active_jobs", limits.max_active_jobs, 5)
