"""Synthetic finished jobs with exactly known figures, written through the real ClickHouse sink.

Each job is a list of Kafka-shaped events (its tokens, then its terminal event) that go
through ``clickhouse_row`` and ``ClickHouseWriter`` like the sinks process does. Used by
the analytics tests; one chdb directory per test module (chdb opens one per process).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from typing import Literal

import uvicorn
from clickhouse_connect.driver.client import Client

from processors.llm import StreamOutcome
from processors.runner import AttemptRecord, attempt_usage
from schemas.events import (
    ErrorInfo,
    JobCancelled,
    JobCompleted,
    JobFailed,
    JobRequested,
    TerminalEvent,
    Timings,
    TokenStreamed,
    Usage,
)
from schemas.jobs import JobConfig, JobType
from schemas.topics import JOB_EVENTS, TOKENS, Priority
from sinks.clickhouse_rows import ClickHouseRow
from sinks.clickhouse_sink import ClickHouseWriter, clickhouse_row
from sinks.migrations import migrate_clickhouse
from sinks.pipeline import Accepted, Origin
from sinks.query_app import create_query_app
from sluice.clickhouse import open_clickhouse
from sluice.jobids import new_job_id
from sluice.pricing import estimate_cost_usd

# Every synthetic job finishes within 20 minutes after BASE, all in the same clock hour, and
# well inside a 24h window ending now.
_HOUR = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
BASE = _HOUR - timedelta(hours=1) + timedelta(minutes=10)
TAIL_MS = 100  # from the last token to the terminal event

CANCELLED_PIECES = ["The", " contract", " calls", " withdraw", " before", " updating", " balances"]
CANCELLED_COMPLETION_TOKENS = 7  # o200k_base, as tiktoken counts it (see test_tokens.py)


@dataclass(frozen=True)
class SyntheticJob:
    name: str
    user_id: str
    model: str
    job_type: JobType
    priority: Priority
    status: Literal["completed", "failed", "cancelled"]
    attempt: int
    start_s: float  # seconds after BASE
    queue_wait_ms: int
    ttft_ms: int
    gaps_ms: list[int]  # between consecutive tokens of the final attempt
    usage: Usage | None  # None: no usage chunk came, the worker counts the tokens
    error_code: str | None = None
    superseded_tokens: int = 0  # streamed by an earlier attempt, which must not count
    prompt: str = "Analyze this contract for reentrancy."
    job_id: str = field(default_factory=lambda: new_job_id())

    @property
    def pieces(self) -> list[str]:
        if self.status == "cancelled":
            return CANCELLED_PIECES[: len(self.gaps_ms) + 1]
        return [f" t{i}" for i in range(len(self.gaps_ms) + 1)]

    @property
    def started_at(self) -> float:
        return BASE.timestamp() + self.start_s

    @property
    def token_times(self) -> list[float]:
        first = self.started_at + self.ttft_ms / 1000
        return [first + offset / 1000 for offset in accumulate([0, *self.gaps_ms])]

    @property
    def finished_at(self) -> float:
        return self.token_times[-1] + TAIL_MS / 1000

    @property
    def duration_ms(self) -> float:
        return self.ttft_ms + sum(self.gaps_ms) + TAIL_MS

    @property
    def tokens_per_second(self) -> float:
        return len(self.pieces) / ((sum(self.gaps_ms) + TAIL_MS) / 1000)

    def request(self) -> JobRequested:
        return JobRequested(
            job_id=self.job_id,
            user_id=self.user_id,
            job_type=self.job_type,
            priority=self.priority,
            prompt=self.prompt,
            config=JobConfig(model=self.model, max_tokens=64, temperature=0.0),
            attempt=self.attempt,
        )

    def final_usage(self) -> Usage:
        if self.usage is not None:
            return self.usage
        record = AttemptRecord(started_at=self.started_at, pieces=list(self.pieces))
        record.outcome = StreamOutcome(finish_reason=None, usage=None)
        return attempt_usage(record, self.request())

    @property
    def cost_usd(self) -> float:
        usage = self.final_usage()
        return estimate_cost_usd(self.model, usage.prompt_tokens, usage.completion_tokens)

    def tokens(self) -> list[TokenStreamed]:
        earlier = [
            TokenStreamed(
                job_id=self.job_id, attempt=self.attempt - 1, seq=seq, text="x", ts=self.started_at
            )
            for seq in range(self.superseded_tokens)
        ]
        final = [
            TokenStreamed(job_id=self.job_id, attempt=self.attempt, seq=seq, text=text, ts=ts)
            for seq, (text, ts) in enumerate(zip(self.pieces, self.token_times, strict=True))
        ]
        return earlier + final

    def terminal(self) -> TerminalEvent:
        usage = self.final_usage()
        common = {
            "job_id": self.job_id,
            "user_id": self.user_id,
            "job_type": self.job_type,
            "priority": self.priority,
            "attempt": self.attempt,
            "model": self.model,
            "token_count": len(self.pieces),
            "response": "".join(self.pieces),
            "usage": usage,
            "timings": Timings(
                queue_wait_ms=self.queue_wait_ms, ttft_ms=self.ttft_ms, duration_ms=self.duration_ms
            ),
            "tokens_per_second": self.tokens_per_second,
            "estimated_cost_usd": self.cost_usd,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }
        if self.status == "failed":
            return JobFailed(**common, error=ErrorInfo(code=self.error_code or "", message="x"))
        if self.status == "cancelled":
            return JobCancelled(**common)
        return JobCompleted(**common, finish_reason="stop")


def reported(prompt: int, completion: int) -> Usage:
    return Usage(
        prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
    )


def synthetic_jobs() -> list[SyntheticJob]:
    """Five jobs of two users, two models; each figure below is known exactly."""
    return [
        SyntheticJob(
            "a-mini-completed", "alice", "gpt-4o-mini", JobType.analysis, Priority.high,
            "completed", 1, 0, 50, 200, [100, 200, 300, 400], reported(1000, 5),
        ),
        SyntheticJob(
            "a-mini-failed", "alice", "gpt-4o-mini", JobType.analysis, Priority.high,
            "failed", 3, 60, 150, 400, [50, 50], None, error_code="stream_broken",
            superseded_tokens=4,
        ),
        SyntheticJob(
            "b-4o-cancelled", "bob", "gpt-4o", JobType.security_analysis, Priority.normal,
            "cancelled", 1, 120, 10, 300, [20] * (CANCELLED_COMPLETION_TOKENS - 1), None,
        ),
        SyntheticJob(
            "b-4o-completed", "bob", "gpt-4o", JobType.security_analysis, Priority.urgent,
            "completed", 1, 180, 10, 100, [10, 30], reported(200, 3),
        ),
        SyntheticJob(
            "a-mini-retried", "alice", "gpt-4o-mini", JobType.gas_analysis, Priority.low,
            "completed", 2, 240, 1000, 250, [60], reported(300, 2), superseded_tokens=2,
        ),
    ]  # fmt: skip


def origins(job: SyntheticJob) -> list[Origin]:
    """The job's messages as the sink reads them: its tokens, then its terminal event."""
    messages = [(TOKENS, token.to_bytes()) for token in job.tokens()]
    messages.append((JOB_EVENTS, job.terminal().to_bytes()))
    return [
        Origin(topic, 0, offset, job.job_id.encode(), value)
        for offset, (topic, value) in enumerate(messages)
    ]


async def write_through_sink(client: Client, messages: list[Origin]) -> None:
    """Decode, build rows and insert, as the ClickHouse sink does."""
    accepted: list[Accepted[ClickHouseRow]] = []
    for origin in messages:
        if (row := clickhouse_row(origin)) is not None:
            accepted.append(Accepted(row, origin))
    await ClickHouseWriter(client).write(accepted)


@contextmanager
def analytics_store(directory: str) -> Iterator[tuple[Client, Client]]:
    """A migrated chdb store: (writer, read-only reader)."""
    url = f"chdb://{directory}"
    writer = open_clickhouse(url)
    migrate_clickhouse(writer)
    reader = open_clickhouse(url, read_only=True)
    try:
        yield writer, reader
    finally:
        reader.close()
        writer.close()


@contextmanager
def query_endpoint(reader: Client) -> Iterator[int]:
    """The sinks' query endpoint on a free port, as the api reaches it in embedded mode."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_query_app(reader, dict), log_level="critical"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        sock.close()
