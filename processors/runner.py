"""Run one attempt of a job: stream from the LLM, publish each token, then the outcome."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

from openai import AsyncOpenAI

from processors.errors import (
    ContentFiltered,
    Failure,
    JobTimedOut,
    StreamBroken,
    assess_failure,
)
from processors.job_types import chat_messages
from processors.llm import StreamOutcome, stream_tokens
from schemas.events import (
    CountedUsage,
    ErrorInfo,
    JobCancelled,
    JobCompleted,
    JobFailed,
    JobRequested,
    JobRetrying,
    JobStarted,
    TerminalEvent,
    Timings,
    TokenStreamed,
    Usage,
)
from sluice.pricing import estimate_cost_usd
from sluice.tokens import count_chat_prompt_tokens, count_text_tokens

log = logging.getLogger(__name__)


class LifecyclePublisher(Protocol):
    async def publish_token(self, token: TokenStreamed) -> None: ...

    async def publish_job_event(self, event: JobStarted | JobRetrying | TerminalEvent) -> None:
        """Publish a lifecycle event; return once it (and the job's tokens before it) is durable."""
        ...


@dataclass
class AttemptRecord:
    """What happened during one attempt, collected as the stream is read."""

    started_at: float
    pieces: list[str] = field(default_factory=list)
    first_token_at: float | None = None
    outcome: StreamOutcome = field(default_factory=StreamOutcome)


def attempt_timings(job: JobRequested, rec: AttemptRecord, finished_at: float) -> Timings:
    ttft = None if rec.first_token_at is None else (rec.first_token_at - rec.started_at) * 1000
    return Timings(
        queue_wait_ms=max(0.0, (rec.started_at - job.submitted_at) * 1000),
        ttft_ms=ttft,
        duration_ms=(finished_at - rec.started_at) * 1000,
    )


def tokens_per_second(rec: AttemptRecord, finished_at: float) -> float:
    """Generation speed: tokens over the time from the first token to the end."""
    if rec.first_token_at is None or not rec.pieces:
        return 0.0
    span = finished_at - rec.first_token_at
    return len(rec.pieces) / span if span > 0 else 0.0


def attempt_usage(rec: AttemptRecord, job: JobRequested | None = None) -> Usage:
    """The provider's usage chunk, or else the tokens counted with the model's tokenizer.

    A stream that ended without a usage chunk (cancelled, failed, cut off) was billed for
    its prompt and every token it streamed. The prompt counts once the model answered;
    before that (429, 5xx, no connection) nothing was billed. Without ``job`` the prompt
    cannot be counted.
    """
    if rec.outcome.usage is not None:
        return rec.outcome.usage
    model = job.config.model if job is not None else ""
    prompt = 0
    if job is not None and rec.pieces:
        prompt = count_chat_prompt_tokens(model, chat_messages(job.job_type, job.prompt))
    completion = count_text_tokens(model, "".join(rec.pieces))
    return CountedUsage(
        prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
    )


def terminal_event(
    job: JobRequested,
    rec: AttemptRecord,
    finished_at: float,
    error: ErrorInfo | None,
    cancelled: bool = False,
) -> TerminalEvent:
    usage = attempt_usage(rec, job)
    common: dict[str, Any] = {
        **job.attempt_context(),
        "token_count": len(rec.pieces),
        "response": "".join(rec.pieces),
        "usage": usage,
        "timings": attempt_timings(job, rec, finished_at),
        "tokens_per_second": tokens_per_second(rec, finished_at),
        "estimated_cost_usd": estimate_cost_usd(
            job.config.model, usage.prompt_tokens, usage.completion_tokens
        ),
        "finish_reason": rec.outcome.finish_reason,
        "started_at": rec.started_at,
        "finished_at": finished_at,
    }
    if cancelled:
        return JobCancelled(**common)
    if error is not None:
        return JobFailed(error=error, **common)
    return JobCompleted(**common)


@dataclass
class AttemptResult:
    """One attempt, ended: what it streamed, and why it failed if it did."""

    job: JobRequested  # with ``attempt`` set to this attempt's number
    record: AttemptRecord
    finished_at: float
    failure: Failure | None = None
    cancelled: bool = False

    def terminal(self) -> TerminalEvent:
        error = self.failure.error if self.failure else None
        return terminal_event(self.job, self.record, self.finished_at, error, self.cancelled)


async def _unless_cancelled(work: Coroutine[Any, Any, None], cancel: asyncio.Event | None) -> bool:
    """Run `work` to its end, or stop it when `cancel` is set; True when it was stopped."""
    if cancel is None:
        await work
        return False
    if cancel.is_set():
        work.close()
        return True
    task = asyncio.ensure_future(work)
    stop = asyncio.ensure_future(cancel.wait())
    try:
        done, _ = await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if task in done:
        task.result()  # the stream's own outcome, exceptions included
        return False
    return True


class JobRunner:
    """Runs one attempt of a job: publishes ``job.started`` and every token as it streams."""

    def __init__(
        self,
        llm: AsyncOpenAI,
        publisher: LifecyclePublisher,
        worker_name: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._llm = llm
        self._publisher = publisher
        self._worker = worker_name
        self._clock = clock

    async def run(self, job: JobRequested) -> TerminalEvent:
        """One attempt that ends the job whatever happens: publishes its terminal event too."""
        result = await self.attempt(job)
        event = result.terminal()
        await self._publisher.publish_job_event(event)
        return event

    async def attempt(
        self,
        job: JobRequested,
        *,
        headers: dict[str, str] | None = None,
        idle_timeout_s: float | None = None,
        time_left_s: float | None = None,
        cancel: asyncio.Event | None = None,
    ) -> AttemptResult:
        """Run attempt ``job.attempt``; the caller publishes how the job goes on.

        Setting `cancel` stops the stream at once; the tokens already published stay, and
        the result says it was cancelled.
        """
        rec = AttemptRecord(started_at=self._clock())
        await self._publisher.publish_job_event(self._started(job, rec.started_at))
        failure: Failure | None = None
        cancelled = False
        try:
            try:
                async with asyncio.timeout(time_left_s):
                    stream = self._stream(job, rec, headers, idle_timeout_s)
                    cancelled = await _unless_cancelled(stream, cancel)
            except TimeoutError as exc:
                if time_left_s is not None and self._clock() - rec.started_at >= time_left_s:
                    raise JobTimedOut from exc
                raise
        except Exception as exc:
            failure = assess_failure(exc, mid_stream=bool(rec.pieces))
            log.warning(
                "job attempt failed",
                extra={"job_id": job.job_id, "attempt": job.attempt, "code": failure.error.code},
            )
        return AttemptResult(job, rec, self._clock(), failure, cancelled)

    async def _stream(
        self,
        job: JobRequested,
        rec: AttemptRecord,
        headers: dict[str, str] | None,
        idle_timeout_s: float | None,
    ) -> None:
        pieces = stream_tokens(
            self._llm, job, rec.outcome, headers=headers, idle_timeout_s=idle_timeout_s
        )
        async for text in pieces:
            ts = self._clock()
            if rec.first_token_at is None:
                rec.first_token_at = ts
            token = TokenStreamed(
                job_id=job.job_id, attempt=job.attempt, seq=len(rec.pieces), text=text, ts=ts
            )
            # Counted before it is sent, and sent even if a cancel lands meanwhile: the
            # attempt's token count always matches the tokens in the log.
            rec.pieces.append(text)
            await asyncio.shield(self._publisher.publish_token(token))
        if rec.outcome.finish_reason is None:
            raise StreamBroken
        if rec.outcome.finish_reason == "content_filter":
            raise ContentFiltered

    def _started(self, job: JobRequested, started_at: float) -> JobStarted:
        return JobStarted(
            **job.attempt_context(),
            worker=self._worker,
            started_at=started_at,
        )
