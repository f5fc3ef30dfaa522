"""A job's live feed: its tokens and lifecycle, read from the Kafka log.

Every token is in the log, so a subscriber that arrives late still gets the
stream from its first token: the reader seeks both of the job's partitions to
the job's submission time (carried in its UUIDv7 id) and filters by key.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from confluent_kafka.admin import AdminClient

from api.hub import FeedHub, LogRecord, SubscriberOverflow, Subscription
from schemas.events import (
    EventDecodeError,
    JobEvent,
    JobFailed,
    JobFinished,
    JobQueued,
    JobRetrying,
    JobStarted,
    TokenStreamed,
    decode_job_event,
    decode_token,
)
from schemas.topics import JOB_EVENTS, TOKENS
from sluice.jobids import job_id_time_ms
from sluice.partitioning import partition_for_key

# Producers' clocks and the broker's may differ a little; start reading a bit earlier.
CLOCK_SKEW_MS = 5_000

TERMINAL_FEED_NAMES = {
    "job.completed": "streaming.completed",
    "job.failed": "analysis.failed",
    "job.cancelled": "job.cancelled",
}


@dataclass(frozen=True)
class FeedItem:
    """One feed event. ``data["sequence_number"]`` numbers the tokens of the feed from 0;
    any other event carries the number of the token before it (-1 before the first)."""

    event: str
    data: dict[str, Any]

    @property
    def sequence_number(self) -> int:
        number: int = self.data["sequence_number"]
        return number

    def after(self, cursor: int) -> bool:
        """Whether a client that has everything up to token `cursor` still needs this.

        Tokens are sent exactly once; an event between two tokens is sent again on resume,
        since the client may have missed it.
        """
        if self.event == "token.streamed":
            return self.sequence_number > cursor
        return self.sequence_number >= cursor


@dataclass
class FeedAssembler:
    """Orders one job's events for a subscriber: tokens of the newest attempt, then its end.

    Tokens and lifecycle events live on two topics, so they can be read in any
    interleaving. Every subscriber sees the same order anyway: an attempt's tokens are
    held until its ``job.started`` has been read, and the terminal event, which carries
    the attempt's token count, is held until that many tokens have been delivered.
    """

    job_id: str
    max_tokens: int | None = None
    attempt: int = 0
    next_seq: int = 0
    started_attempt: int = 0
    queued: JobQueued | None = None
    started: JobStarted | None = None
    texts: list[str] = field(default_factory=list)
    pending_end: JobFinished | None = None
    finished: JobFinished | None = None
    tokens_delivered: int = 0
    done: bool = False
    _early: list[TokenStreamed] = field(default_factory=list)
    _out: list[FeedItem] = field(default_factory=list)
    _retrying: JobRetrying | None = None

    def on_token(self, token: TokenStreamed) -> list[FeedItem]:
        if self.done or token.attempt < self.attempt:
            return []
        if token.attempt > self.started_attempt:
            self._early.append(token)  # its job.started is still on the way
            return []
        self._deliver(token)
        return self._drain()

    def _deliver(self, token: TokenStreamed) -> None:
        if token.attempt < self.attempt:
            return  # superseded by a newer attempt
        if token.attempt > self.attempt:
            self.attempt, self.next_seq, self.texts = token.attempt, 0, []
        if token.seq < self.next_seq:
            return  # already delivered
        self.next_seq = token.seq + 1
        self.texts.append(token.text)
        self._out.append(FeedItem("token.streamed", self._token_data(token)))
        self._maybe_retrying()
        self._maybe_finish()

    def on_job_event(self, event: JobEvent) -> list[FeedItem]:
        if self.done:
            return []
        if isinstance(event, JobQueued):
            self.queued = event
            self.max_tokens = event.config.max_tokens
        elif isinstance(event, JobStarted) and event.attempt > self.started_attempt:
            self._maybe_retrying(superseded_by=event.attempt)
            self.started_attempt = event.attempt
            self.started = event
            data = {"job_id": self.job_id, "attempt": event.attempt, "model": event.model}
            self._out.append(FeedItem("job.started", data))
            early, self._early = self._early, []
            for token in early:
                if token.attempt <= self.started_attempt:
                    self._deliver(token)
                else:
                    self._early.append(token)
        elif isinstance(event, JobRetrying) and event.attempt >= self.started_attempt:
            self._retrying = event
            self._maybe_retrying()
        elif isinstance(event, JobFinished) and event.attempt >= self.attempt:
            self.pending_end = event
            self._maybe_finish()
        return self._drain()

    def _maybe_retrying(self, superseded_by: int = 0) -> None:
        """Relay ``job.retrying`` after the failed attempt's tokens, before the next attempt."""
        retry = self._retrying
        if retry is None:
            return
        delivered = self.next_seq if self.attempt == retry.attempt else 0
        if superseded_by > retry.attempt or delivered >= retry.token_count:
            self._retrying = None
            data = {
                "job_id": self.job_id,
                "attempt": retry.attempt,
                "next_attempt": retry.next_attempt,
                "retry_in_s": retry.retry_in_s,
                "error": retry.error.model_dump(),
            }
            self._out.append(FeedItem("job.retrying", data))

    def _maybe_finish(self) -> None:
        end = self.pending_end
        if end is None:
            return
        if end.attempt > self.attempt and end.token_count == 0:
            self.attempt, self.next_seq = end.attempt, 0
        if end.attempt == self.attempt and self.next_seq >= end.token_count:
            self._out.append(FeedItem(TERMINAL_FEED_NAMES[_event_type(end)], self._end_data(end)))
            self.done = True
            self.finished = end

    def _token_data(self, token: TokenStreamed) -> dict[str, Any]:
        progress = None
        if self.max_tokens:
            progress = min(100.0, round(100.0 * (token.seq + 1) / self.max_tokens, 2))
        return {
            "job_id": self.job_id,
            "token": token.text,
            "seq": token.seq,
            "attempt": token.attempt,
            "ts": token.ts,
            "progress": progress,
        }

    def _end_data(self, end: JobFinished) -> dict[str, Any]:
        data: dict[str, Any] = {
            "job_id": self.job_id,
            "status": _event_type(end).removeprefix("job."),
            "attempt": end.attempt,
            "token_count": end.token_count,
            "finish_reason": end.finish_reason,
            "usage": end.usage.model_dump(),
            "tokens_per_second": end.tokens_per_second,
            "estimated_cost_usd": end.estimated_cost_usd,
        }
        if isinstance(end, JobFailed):
            data["error"] = end.error.model_dump()
        return data

    def _drain(self) -> list[FeedItem]:
        out, self._out = self._out, []
        for item in out:
            if item.event == "token.streamed":
                self.tokens_delivered += 1
            item.data["sequence_number"] = self.tokens_delivered - 1
        return out


class PartitionCounts:
    """Partition counts of the feed's topics, looked up once (they rarely change)."""

    def __init__(self, bootstrap: str) -> None:
        self._bootstrap = bootstrap
        self._counts: dict[str, int] = {}

    async def get(self, topic: str) -> int:
        if topic not in self._counts:
            self._counts.update(await asyncio.to_thread(self._fetch))
        return self._counts[topic]

    def _fetch(self) -> dict[str, int]:
        admin = AdminClient({"bootstrap.servers": self._bootstrap})
        meta = admin.list_topics(timeout=10)
        return {name: len(t.partitions) for name, t in meta.topics.items()}


async def job_feed(
    job_id: str,
    bootstrap: str,
    partitions: PartitionCounts,
    assembler: FeedAssembler | None = None,
    follow: bool = True,
    hub: FeedHub | None = None,
    starting_after: int | None = None,
) -> AsyncIterator[FeedItem]:
    """Yield the job's feed from its first event until its terminal event.

    With ``starting_after=N`` the tokens numbered up to N are skipped (each event's
    ``sequence_number``), so a client that reconnects gets every later token exactly once.
    With ``follow=False`` it stops at what the log holds now instead of waiting for more:
    a snapshot of the job, left in ``assembler``. With a ready ``hub``, live records come
    from the process's shared tail of the log instead of a consumer of their own.
    """
    assembler = assembler or FeedAssembler(job_id)
    tps = await job_partitions(job_id, partitions)
    if follow and hub is not None and hub.ready.is_set():
        resume_from: dict[TopicPartition, int] = {}
        with hub.job_subscription(job_id) as sub:
            history = _read_log(job_id, bootstrap, tps, assembler, until=sub.live_from)
            async for item in _resumed(history, starting_after):
                yield item
            live = _live(sub, tps, assembler, resume_from)
            async for item in _resumed(live, starting_after):
                yield item
        if assembler.done:
            return
        # The hub outran this subscriber's buffer: carry on from the log, right after the
        # last record applied, with a consumer of its own.
        reader = _read_log(job_id, bootstrap, tps, assembler, until=None, start=resume_from)
    else:
        reader = _read_log(job_id, bootstrap, tps, assembler, until=None if follow else "now")
    async for item in _resumed(reader, starting_after):
        yield item


async def job_partitions(job_id: str, partitions: PartitionCounts) -> list[TopicPartition]:
    key = job_id.encode()
    return [
        TopicPartition(TOKENS, partition_for_key(key, await partitions.get(TOKENS))),
        TopicPartition(JOB_EVENTS, partition_for_key(key, await partitions.get(JOB_EVENTS))),
    ]


async def _resumed(
    items: AsyncIterator[FeedItem], starting_after: int | None
) -> AsyncIterator[FeedItem]:
    async for item in items:
        if starting_after is None or item.after(starting_after):
            yield item


async def _read_log(
    job_id: str,
    bootstrap: str,
    tps: list[TopicPartition],
    assembler: FeedAssembler,
    until: dict[TopicPartition, int] | str | None,
    start: dict[TopicPartition, int] | None = None,
) -> AsyncIterator[FeedItem]:
    """The job's records from its start (or `start` offsets): up to `until` offsets, to
    the end as of now (`"now"`), or on and on (None) until the job ends."""
    key = job_id.encode()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        # One job's records: small fetches keep a connection's memory small.
        fetch_max_bytes=1 << 20,
        max_partition_fetch_bytes=256 << 10,
    )
    await consumer.start()
    try:
        consumer.assign(tps)
        if start:
            ends = {tp: int(v) for tp, v in (await consumer.end_offsets(tps)).items()}
            for tp in tps:
                consumer.seek(tp, start[tp])
        else:
            start_ms = job_id_time_ms(job_id) - CLOCK_SKEW_MS
            ends = await _seek_to_job_start(consumer, tps, start_ms)
        stop_at = ends if until == "now" else until if isinstance(until, dict) else None
        while not assembler.done:
            if stop_at is not None and all(
                [await _reached(consumer, tp, stop_at[tp]) for tp in tps]
            ):
                return
            batches = await consumer.getmany(timeout_ms=100 if stop_at is not None else 500)
            for tp, records in batches.items():
                for record in records:
                    if stop_at is not None and record.offset >= stop_at[tp]:
                        break  # the hub delivers from here on
                    if record.key != key:
                        continue
                    for item in _apply(assembler, tp.topic, record.value):
                        yield item
    finally:
        await consumer.stop()


async def _live(
    sub: Subscription,
    tps: list[TopicPartition],
    assembler: FeedAssembler,
    resume_from: dict[TopicPartition, int],
) -> AsyncIterator[FeedItem]:
    """Records from the hub until the job ends, or until the subscription overflowed;
    then `resume_from` holds, per partition, the offset to read on from."""
    resume_from.update({tp: sub.live_from[tp] for tp in tps})
    while not assembler.done:
        try:
            record = await sub.next(timeout_s=1.0)
        except SubscriberOverflow:
            return
        if isinstance(record, LogRecord):
            resume_from[TopicPartition(record.topic, record.partition)] = record.offset + 1
            for item in _apply(assembler, record.topic, record.value):
                yield item


async def _reached(consumer: AIOKafkaConsumer, tp: TopicPartition, end: int) -> bool:
    position: int = await consumer.position(tp)
    return position >= end


async def _seek_to_job_start(
    consumer: AIOKafkaConsumer, tps: list[TopicPartition], start_ms: int
) -> dict[TopicPartition, int]:
    # Ends first: an event produced after this lookup has an offset at or past them,
    # so falling back to them can never skip one.
    ends = await consumer.end_offsets(tps)
    offsets = await consumer.offsets_for_times({tp: start_ms for tp in tps})
    for tp in tps:
        found = offsets.get(tp)
        consumer.seek(tp, ends[tp] if found is None else found.offset)
    return {tp: int(ends[tp]) for tp in tps}


def _event_type(event: JobFinished) -> str:
    kind: str = getattr(event, "type")  # noqa: B009 - each terminal subclass defines it
    return kind


def _apply(assembler: FeedAssembler, topic: str, raw: bytes) -> list[FeedItem]:
    try:
        if topic == TOKENS:
            return assembler.on_token(decode_token(raw))
        return assembler.on_job_event(decode_job_event(raw))
    except EventDecodeError:
        return []  # not ours to dead-letter: the sinks do that for the log
