"""The Faust app: one agent consumes every priority topic and runs each job.

Kafka offsets of a job message are committed only after its agent returns, so a
worker that dies mid-stream leaves the job to be consumed again.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

import faust

from processors.llm import make_llm_client
from processors.runner import JobRunner
from schemas.events import (
    DeadLetter,
    EventDecodeError,
    JobStarted,
    TerminalEvent,
    TokenStreamed,
    decode_job_requested,
)
from schemas.topics import DLQ, JOB_EVENTS, PRIORITY_TOPICS, TOKENS
from sluice.settings import get_settings

log = logging.getLogger(__name__)
settings = get_settings()

app = faust.App(
    "sluice-worker",
    broker=f"kafka://{settings.kafka_bootstrap}",
    store="memory://",
    web_port=settings.worker_web_port,
    web_bind="127.0.0.1",
    web_host="127.0.0.1",
    consumer_auto_offset_reset="earliest",
    stream_publish_on_commit=False,
    producer_acks=-1,
    topic_allow_declare=False,
    topic_disable_leader=True,
    broker_commit_every=1,
    datadir=str(settings.home / "worker"),
)


def _raw_topic(*names: str) -> Any:
    return app.topic(
        *names,
        key_type=bytes,
        value_type=bytes,
        value_serializer="raw",
        key_serializer="raw",
        allow_empty=True,
    )


job_requests = _raw_topic(*PRIORITY_TOPICS)
tokens_topic = _raw_topic(TOKENS)
job_events_topic = _raw_topic(JOB_EVENTS)
dlq_topic = _raw_topic(DLQ)


class FaustPublisher:
    """Publishes a job's events keyed by job_id, so each job's events stay in order."""

    async def publish_token(self, token: TokenStreamed) -> None:
        await tokens_topic.send(key=token.key(), value=token.to_bytes())

    async def publish_job_event(self, event: JobStarted | TerminalEvent) -> None:
        await job_events_topic.send(key=event.key(), value=event.to_bytes())


worker_name = f"{socket.gethostname()}-{os.getpid()}"
runner = JobRunner(make_llm_client(settings), FaustPublisher(), worker_name)


async def dead_letter(message: Any, reason: str) -> None:
    raw = message.value if isinstance(message.value, bytes) else b""
    letter = DeadLetter(
        job_id=message.key.decode(errors="replace") if isinstance(message.key, bytes) else None,
        source_topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        reason=reason,
        payload=raw.decode(errors="replace"),
    )
    await dlq_topic.send(key=message.key, value=letter.to_bytes())
    log.warning("dead-lettered a job message: %s", reason)


@app.agent(job_requests, concurrency=settings.worker_concurrency)
async def run_jobs(stream: faust.StreamT[Any]) -> None:
    async for event in stream.events():
        try:
            job = decode_job_requested(event.value)
        except EventDecodeError as exc:
            await dead_letter(event.message, str(exc))
            continue
        outcome = await runner.run(job)
        log.info("job %s attempt %d ended: %s", job.job_id, job.attempt, outcome.type)
