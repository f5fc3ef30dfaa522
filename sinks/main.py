"""`sluice sinks`: both sinks and the query endpoint in one process, on one event loop.

Start-up migrates ClickHouse (this process owns an embedded chdb directory); the Postgres
sink migrates Postgres before it starts consuming, waiting for the server if need be.
SIGTERM or SIGINT: each sink writes what it holds and commits, then the endpoint stops.
A sink that fails for good stops the others the same way and the process exits 1.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from collections.abc import Coroutine, Generator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import asdict
from typing import Any

import psycopg
import uvicorn
from aiokafka.errors import KafkaError
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from schemas.topics import JOB_EVENTS, TOKENS
from sinks.clickhouse_sink import ClickHouseWriter, clickhouse_sink
from sinks.dead_letters import DeadLetterQueue
from sinks.kafka import CLICKHOUSE_GROUP, POSTGRES_GROUP, dead_letter_producer, sink_consumer
from sinks.migrations import migrate_clickhouse, migrate_postgres
from sinks.postgres_sink import PostgresJobWriter, postgres_sink
from sinks.query_app import create_query_app
from sinks.retry import SinkStopping, retry_transient
from sinks.runner import SinkRunner
from sluice.clickhouse import open_clickhouse
from sluice.logs import configure_logging
from sluice.settings import Settings, get_settings

log = logging.getLogger("sinks")


class SinkFailed(Exception):
    """A sink stopped on an error it cannot retry; its uncommitted messages are safe in Kafka."""


class _QueryServer(uvicorn.Server):
    @contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # The process's own handler stops the sinks first, then this server.
        yield


def run() -> None:
    configure_logging()
    try:
        asyncio.run(serve(get_settings()))
    except SinkFailed as exc:
        log.error("%s", exc)
        raise SystemExit(1) from None


async def serve(settings: Settings) -> None:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    listener = _bind(settings.sinks_query_port)  # fail fast if the port is taken
    async with AsyncExitStack() as resources:
        resources.callback(listener.close)
        url = settings.resolved_clickhouse_url
        writer_client = await _open_store(url)
        resources.callback(writer_client.close)
        await asyncio.to_thread(migrate_clickhouse, writer_client)
        reader = await asyncio.to_thread(open_clickhouse, url, read_only=True)
        resources.callback(reader.close)
        producer = dead_letter_producer(settings.kafka_bootstrap)
        try:
            await producer.start()
        except KafkaError as exc:
            raise SinkFailed(
                f"Kafka at {settings.kafka_bootstrap} is not reachable: {exc}"
            ) from None
        resources.push_async_callback(producer.stop)
        pg_writer = PostgresJobWriter(settings.resolved_database_url)
        resources.push_async_callback(pg_writer.close)

        dead_letters = DeadLetterQueue(producer)
        to_postgres = postgres_sink(
            sink_consumer(settings.kafka_bootstrap, POSTGRES_GROUP, JOB_EVENTS),
            pg_writer,
            dead_letters,
        )
        to_clickhouse = clickhouse_sink(
            sink_consumer(settings.kafka_bootstrap, CLICKHOUSE_GROUP, TOKENS, JOB_EVENTS),
            ClickHouseWriter(writer_client),
            dead_letters,
            max_rows=settings.clickhouse_batch_rows,
            max_wait_s=settings.clickhouse_flush_seconds,
        )
        sinks: list[SinkRunner[Any]] = [to_postgres, to_clickhouse]
        app = create_query_app(reader, lambda: {s.name: asdict(s.stats) for s in sinks})
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
        work = {
            to_postgres.name: _migrate_then_run(
                to_postgres, settings.resolved_database_url, stopping
            ),
            to_clickhouse.name: to_clickhouse.run(stopping),
        }
        await _run_until_stopped(work, _QueryServer(config), listener, stopping)


async def _migrate_then_run(
    sink: SinkRunner[Any], database_url: str, stopping: asyncio.Event
) -> None:
    """Postgres may come up after us: wait for it here, without holding up ClickHouse."""
    try:
        await retry_transient(
            lambda: asyncio.to_thread(migrate_postgres, database_url),
            is_transient=lambda exc: isinstance(exc, psycopg.OperationalError),
            stopping=stopping,
            what="postgres migrations",
        )
    except SinkStopping:
        return
    await sink.run(stopping)


async def _open_store(url: str) -> Client:
    try:
        return await asyncio.to_thread(open_clickhouse, url)
    except ClickHouseError as exc:
        hint = (
            " (an embedded directory opens in one process only)" if url.startswith("chdb:") else ""
        )
        raise SinkFailed(f"cannot open ClickHouse at {url}{hint}: {exc}") from None


def _bind(port: int) -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(("127.0.0.1", port))
    except OSError as exc:
        listener.close()
        raise SinkFailed(f"cannot serve queries on 127.0.0.1:{port}: {exc.strerror}") from None
    return listener


async def _run_until_stopped(
    work: dict[str, Coroutine[Any, Any, None]],
    server: uvicorn.Server,
    listener: socket.socket,
    stopping: asyncio.Event,
) -> None:
    running = [asyncio.create_task(job, name=name) for name, job in work.items()]
    serving = asyncio.create_task(server.serve(sockets=[listener]), name="query endpoint")
    stop_requested = asyncio.create_task(stopping.wait())
    await asyncio.wait([*running, serving, stop_requested], return_when=asyncio.FIRST_COMPLETED)
    stopping.set()
    outcomes = await asyncio.gather(*running, return_exceptions=True)
    server.should_exit = True
    await asyncio.gather(serving, stop_requested, return_exceptions=True)
    failures = [(name, o) for name, o in zip(work, outcomes, strict=True) if o is not None]
    for name, failure in failures:
        log.error("%s failed", name, exc_info=failure)
    if failures or serving.exception() is not None:
        raise SinkFailed("a sink stopped on an error; uncommitted messages stay in Kafka")
    log.info("sinks stopped cleanly")
