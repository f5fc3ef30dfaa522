"""The Faust app: one agent per priority topic hands each job to the dispatcher.

Each priority topic has its own agent (and so its own stream buffer, paused by Faust
per partition when full) and its own lane in the dispatcher, so a worker full of low
jobs still reads an urgent one at once; the running slots then go to the highest
priority first (``processors.slots``; the strategy is in docs/scheduling.md).

Faust's own acks are off for the job topics: a job runs for seconds to minutes and
jobs end in any order, so the dispatcher commits each partition up to its oldest
unfinished job (``processors.dispatch``). A worker that dies mid-stream leaves the job
to be consumed again, and it runs as a new attempt.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from typing import Any, cast

import faust
import openai
from faust.types import TP

from processors.attempts import Delivery, JobProcessor
from processors.breaker import BreakerConfig, Breakers, breaker_states, install_breakers
from processors.breaker import provider_name as _provider_name
from processors.cancellation import Cancellations, CancelRegistry, ControlListener
from processors.dispatch import JobDispatcher
from processors.history import JobHistoryReader
from processors.llm import make_llm_client
from processors.rate_limits import ModelRateLimits
from processors.retry import RetryPolicy
from processors.runner import JobRunner
from processors.slots import PrioritySlots
from schemas.events import (
    DeadLetter,
    EventDecodeError,
    JobRetrying,
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
    # A worker that dies is noticed after this long; its jobs then run elsewhere.
    broker_session_timeout=settings.worker_session_timeout_s,
    broker_heartbeat_interval=min(3.0, settings.worker_session_timeout_s / 4),
    datadir=str(settings.home / "worker"),
)


def _raw_topic(*names: str, acks: bool = True) -> Any:
    return app.topic(
        *names,
        key_type=bytes,
        value_type=bytes,
        value_serializer="raw",
        key_serializer="raw",
        allow_empty=True,
        acks=acks,
    )


# One topic object per priority, each with its own agent; committed by the dispatcher.
job_requests = {name: _raw_topic(name, acks=False) for name in PRIORITY_TOPICS}
tokens_topic = _raw_topic(TOKENS)
job_events_topic = _raw_topic(JOB_EVENTS)
dlq_topic = _raw_topic(DLQ)


class FaustPublisher:
    """Publishes a job's events keyed by job_id, so each job's events stay in order.

    Tokens are sent without waiting; a lifecycle event waits until the broker has the
    job's tokens sent before it and then the event itself, so an offset committed after
    it can never point past an event that is not durable.
    """

    def __init__(self) -> None:
        self._unconfirmed: dict[str, list[Any]] = {}
        self._producer: faust.types.ProducerT | None = None

    async def publish_token(self, token: TokenStreamed) -> None:
        # Straight to the started producer: Topic.send checks the producer is started and
        # wraps each message in a FutureMessage with callbacks nothing here uses, ~4x the
        # CPU per token (bench/publish.py).
        if self._producer is None:
            self._producer = await app.maybe_start_producer()
        sent = await self._producer.send(
            TOKENS, token.key(), token.to_bytes(), partition=None, timestamp=None, headers=None
        )
        self._unconfirmed.setdefault(token.job_id, []).append(sent)

    async def publish_job_event(self, event: JobStarted | JobRetrying | TerminalEvent) -> None:
        tokens = self._unconfirmed.pop(event.job_id, [])
        if tokens:
            await asyncio.gather(*tokens)
        await (await job_events_topic.send(key=event.key(), value=event.to_bytes()))

    async def dead_letter(self, letter: DeadLetter) -> None:
        key = letter.job_id.encode() if letter.job_id else None
        await (await dlq_topic.send(key=key, value=letter.to_bytes()))


worker_name = f"{socket.gethostname()}-{os.getpid()}"
publisher = FaustPublisher()
control_listener = ControlListener(settings.kafka_bootstrap, CancelRegistry())
breakers = install_breakers(Breakers(BreakerConfig.from_settings(settings), worker_name))
provider = _provider_name(settings.resolved_openai_base_url)
rate_limits = ModelRateLimits(settings.model_rate_limits)
running_slots = PrioritySlots(
    settings.worker_concurrency,
    starvation_every=settings.starvation_every,
    per_user=settings.max_running_per_user,
    per_model=settings.max_running_per_model,
)
# The provider's x-ratelimit-* headers reach the limits through an httpx response hook.
llm = make_llm_client(settings).copy(
    http_client=openai.DefaultAsyncHttpxClient(event_hooks={"response": [rate_limits.on_response]})
)
processor = JobProcessor(
    JobRunner(llm, publisher, worker_name),
    publisher,
    breakers,
    RetryPolicy.from_settings(settings),
    provider=provider,
    idle_timeout_s=settings.llm_idle_timeout_s,
    simulator=settings.uses_simulator,
    running_slots=running_slots,
    rate_limits=rate_limits,
    cancellations=Cancellations(control_listener),
)
history = JobHistoryReader(settings.kafka_bootstrap)


async def run_job(delivery: Delivery, seen_before: bool) -> None:
    job = delivery.job
    past = await history.read(job.job_id, base=job.attempt) if seen_before else None
    end = await processor.process(delivery, past)
    if end is not None:
        log.info("job %s ended at attempt %d: %s", job.job_id, end.attempt, end.type)


async def commit_job_offsets(offsets: dict[tuple[str, int], int]) -> bool:
    if app.rebalancing:
        return False  # the new assignment seeks to what is committed; try after it
    # The driver's commit of explicit offsets: the public commit() goes through Faust's acks.
    consumer: Any = app.consumer
    committed: bool = await consumer._commit({TP(t, p): o for (t, p), o in offsets.items()})
    return committed


def partition_end(tp: tuple[str, int]) -> int | None:
    try:
        end: int | None = app.consumer.highwater(TP(*tp))
    except Exception:
        return None
    return end


# Jobs waiting for a breaker or a slot do not hold a slot; this bounds how many of each
# priority wait in memory (a lane per priority topic, so a full one blocks no other).
dispatcher = JobDispatcher(
    run_job, commit_job_offsets, partition_end, capacity=2 * settings.worker_concurrency
)


async def on_partitions_assigned(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
    assigned: set[TP] = args[0] if args else kwargs.get("assigned", set())
    dispatcher.on_assigned({(tp.topic, tp.partition) for tp in assigned})


# mode's handler type spells the signature with mypy_extensions; ours matches it at runtime.
app.on_partitions_assigned.connect(cast(Any, on_partitions_assigned))


async def dead_letter_message(event: Any, reason: str) -> None:
    message = event.message
    raw = message.value if isinstance(message.value, bytes) else b""
    letter = DeadLetter(
        job_id=message.key.decode(errors="replace") if isinstance(message.key, bytes) else None,
        source_topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        reason=reason,
        payload=raw.decode(errors="replace"),
    )
    await publisher.dead_letter(letter)
    log.warning("dead-lettered a job message: %s", reason)


async def run_jobs(stream: faust.StreamT[Any]) -> None:
    async for event in stream.events():
        message = event.message
        tp = (message.topic, message.partition)
        try:
            job = decode_job_requested(event.value)
        except EventDecodeError as exc:
            if dispatcher.ledger.begin(tp, message.offset):
                await dead_letter_message(event, str(exc))
                dispatcher.ledger.finish(tp, message.offset)
            continue
        delivery = Delivery(job, message.topic, message.partition, message.offset, event.value)
        await dispatcher.dispatch(delivery)


# One agent per priority topic: a lane that is full (low jobs waiting for slots) blocks
# only its own agent, never the urgent one.
run_jobs_agents = {
    name: app.agent(topic, name=f"run_jobs_{name.replace('.', '_')}")(run_jobs)
    for name, topic in job_requests.items()
}


@app.task  # type: ignore[untyped-decorator]
async def follow_control_commands() -> None:
    """Every worker reads every cancel command (no consumer group), for as long as it runs."""
    await control_listener.start()
    try:
        await control_listener.run()
    finally:
        await control_listener.stop()


@app.page("/breakers")
async def breakers_page(web: Any, request: Any) -> Any:
    """This worker's circuit breakers: GET http://<worker>:<web port>/breakers."""
    return web.json([state.model_dump(mode="json") for state in breaker_states()])


import processors.metrics  # noqa: E402  (the worker's Prometheus /metrics)
import processors.web  # noqa: E402, F401  (the worker's /healthz and /readyz; needs `app`)
