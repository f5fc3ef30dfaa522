"""Is each dependency reachable? The checks behind every ``/readyz`` and ``sluice doctor``.

A check never raises and never hangs past its timeout. Its ``problem`` is safe to send
over HTTP: it says what failed, never a host, a password or a driver's trace.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
import psycopg
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from sluice.settings import Settings

CHECK_TIMEOUT_S = 3.0
_quiet = logging.getLogger("sluice.readiness.kafka")
_quiet.setLevel(logging.CRITICAL)  # a refused connection is the answer, not news for the log


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    problem: str | None = None
    elapsed_ms: float = 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "ok": self.ok,
            "problem": self.problem,
            "elapsed_ms": round(self.elapsed_ms, 1),
        }


def kafka_problem(bootstrap: str, timeout: float = CHECK_TIMEOUT_S) -> str | None:
    """None when a broker answers a metadata request."""
    admin = AdminClient(
        {"bootstrap.servers": bootstrap, "socket.connection.setup.timeout.ms": int(timeout * 1000)},
        logger=_quiet,
    )
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException:
        return f"no Kafka broker answered within {timeout:.0f} s"
    return None if metadata.brokers else "the Kafka cluster lists no brokers"


async def postgres_problem(database_url: str, limit_s: float = CHECK_TIMEOUT_S) -> str | None:
    """None when a session opens and answers ``SELECT 1``."""
    try:
        conn = await psycopg.AsyncConnection.connect(
            database_url, connect_timeout=max(1, round(limit_s))
        )
    except psycopg.Error as exc:
        return f"cannot connect to Postgres ({type(exc).__name__})"
    async with conn:
        try:
            await conn.execute("SELECT 1")
        except psycopg.Error as exc:
            return f"Postgres did not answer ({type(exc).__name__})"
    return None


def clickhouse_probe_url(settings: Settings) -> str:
    """Embedded: the sinks process's health endpoint (it owns chdb). Server: its /ping."""
    if settings.clickhouse_is_embedded:
        return f"http://127.0.0.1:{settings.sinks_query_port}/healthz"
    url = httpx.URL(settings.resolved_clickhouse_url)
    return str(url.copy_with(username=None, password=None, path="/ping", query=None))


async def clickhouse_problem(settings: Settings, limit_s: float = CHECK_TIMEOUT_S) -> str | None:
    where = (
        "the sinks process's query endpoint (embedded ClickHouse)"
        if settings.clickhouse_is_embedded
        else "the ClickHouse server"
    )
    try:
        async with httpx.AsyncClient(timeout=limit_s) as http:
            response = await http.get(clickhouse_probe_url(settings))
    except httpx.HTTPError as exc:
        return f"{where} is not reachable ({type(exc).__name__})"
    return None if response.status_code == 200 else f"{where} answered {response.status_code}"


async def _timed(name: str, probe: Callable[[], Awaitable[str | None]], limit: float) -> Check:
    began = time.monotonic()
    try:
        problem = await asyncio.wait_for(probe(), limit)
    except TimeoutError:
        problem = f"no answer within {limit:.0f} s"
    return Check(name, problem is None, problem, (time.monotonic() - began) * 1000)


async def readiness(settings: Settings, limit_s: float = CHECK_TIMEOUT_S) -> list[Check]:
    """Kafka, Postgres and ClickHouse, checked at once."""
    limit = limit_s + 1.0
    return list(
        await asyncio.gather(
            _timed(
                "kafka",
                lambda: asyncio.to_thread(kafka_problem, settings.kafka_bootstrap, limit_s),
                limit,
            ),
            _timed(
                "postgres", lambda: postgres_problem(settings.resolved_database_url, limit_s), limit
            ),
            _timed("clickhouse", lambda: clickhouse_problem(settings, limit_s), limit),
        )
    )
