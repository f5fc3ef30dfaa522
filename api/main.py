"""The api process: FastAPI app, its resources, and `sluice api`."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI

from api.deps import Services
from api.errors import install_error_handlers
from api.feed import PartitionCounts
from api.hub import FeedHub
from api.limits import Admissions, UserLimits
from api.routes import admin, analytics, breaker, dashboard, health, jobs, stream
from api.store import JobStore, TokenStore, make_pool
from producers.control import ControlProducer
from producers.submit import JobSubmitter
from sluice.logs import configure_logging
from sluice.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = make_pool(settings.resolved_database_url, settings.api_db_pool_size)
        submitter = JobSubmitter(settings.kafka_bootstrap)
        partitions = PartitionCounts(settings.kafka_bootstrap)
        hub = FeedHub(
            settings.kafka_bootstrap, partitions.get, capacity=settings.feed_buffer_records
        )
        app.state.services = Services(
            settings=settings,
            submitter=submitter,
            control=ControlProducer(submitter),
            jobs=JobStore(pool),
            tokens=TokenStore(pool),
            admissions=Admissions(
                pool,
                UserLimits(
                    submissions_per_minute=settings.submissions_per_minute,
                    max_active_jobs=settings.max_active_jobs_per_user,
                    active_window_s=settings.active_job_window_s,
                ),
            ),
            partitions=partitions,
            hub=hub,
        )
        await submitter.start()
        await pool.open(wait=False)
        await hub.start()
        try:
            yield
        finally:
            await hub.stop()
            await submitter.stop()
            await pool.close()

    app = FastAPI(
        title="sluice",
        version="0.1.0",
        description="LLM jobs as a stream on Kafka: submit, watch tokens live, read results.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(breaker.router)
    app.include_router(jobs.router)
    app.include_router(stream.router)
    app.include_router(admin.router)
    app.include_router(dashboard.router)
    app.include_router(analytics.router)
    return app


def listening_socket(settings: Settings) -> socket.socket:
    """The api's listening socket. Connections inherit its send buffer: a fixed, small one
    bounds the kernel memory a slow WebSocket reader can hold, and lets the api notice it
    sooner (autotuned buffers reach megabytes per connection)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if settings.api_send_buffer_bytes:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, settings.api_send_buffer_bytes)
    sock.bind((settings.api_host, settings.api_port))
    sock.listen(2048)
    return sock


def run() -> None:
    configure_logging()
    settings = get_settings()
    config = uvicorn.Config(create_app(settings), log_config=None)
    uvicorn.Server(config).run(sockets=[listening_socket(settings)])
