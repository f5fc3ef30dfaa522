"""The dashboard's ClickHouse reads: p95 time to first token, cost today, charts of the last hour.

They read ``job_metrics`` (one row per finished job; FINAL keeps each job's last attempt).
"""

from __future__ import annotations

from typing import Any

from sluice.clickhouse import query_clickhouse

_HEADLINE = """
SELECT
    quantileIf(0.95)(ttft_ms, ttft_ms IS NOT NULL AND finished_at > now() - INTERVAL 1 HOUR)
        AS p95_ttft_ms,
    sumIf(estimated_cost_usd, finished_at >= toStartOfDay(now())) AS cost_today_usd,
    countIf(finished_at >= toStartOfDay(now())) AS jobs_today
FROM job_metrics FINAL
WHERE finished_at >= least(toStartOfDay(now()), now() - INTERVAL 1 HOUR)
"""

_PER_MINUTE = """
SELECT
    toStartOfMinute(finished_at) AS minute,
    count() AS jobs,
    countIf(status = 'failed') AS failed,
    sum(token_count) AS tokens,
    quantileIf(0.95)(ttft_ms, ttft_ms IS NOT NULL) AS p95_ttft_ms,
    sum(estimated_cost_usd) AS cost_usd
FROM job_metrics FINAL
WHERE finished_at > now() - toIntervalMinute({minutes:UInt32})
GROUP BY minute
ORDER BY minute
"""


def _finite(value: Any) -> float | None:
    return None if value is None else float(value)


async def headline() -> dict[str, Any]:
    rows = await query_clickhouse(_HEADLINE)
    row = rows[0] if rows else {}
    return {
        "p95_ttft_ms": _finite(row.get("p95_ttft_ms")),
        "cost_today_usd": float(row.get("cost_today_usd") or 0.0),
        "jobs_today": int(row.get("jobs_today") or 0),
    }


async def per_minute(minutes: int = 60) -> list[dict[str, Any]]:
    """One point per minute with finished jobs: jobs, failures, tokens/sec, p95 TTFT, cost."""
    rows = await query_clickhouse(_PER_MINUTE, {"minutes": minutes})
    return [
        {
            "minute": row["minute"],
            "jobs": int(row["jobs"]),
            "failed": int(row["failed"]),
            "tokens_per_second": round(float(row["tokens"]) / 60.0, 3),
            "p95_ttft_ms": _finite(row["p95_ttft_ms"]),
            "cost_usd": float(row["cost_usd"]),
        }
        for row in rows
    ]
