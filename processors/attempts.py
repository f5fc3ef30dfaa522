"""A job from its message to its end: attempts, the pause between them, the breaker, the DLQ.

Retries run in the worker that holds the job's message, whose offset stays uncommitted
until the job has ended (see ``processors.offsets``): if the worker dies during an
attempt or a pause, the message is consumed again and the job goes on from what the
job-events log says (``processors.history``), as a new attempt. Each attempt is
announced (``job.started``), and each failed one is either followed by ``job.retrying``
and a pause, or ends the job (``job.failed``; to ``jobs.dlq`` when tries ran out).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from processors.breaker import BreakerKey, Breakers, Pass
from processors.cancellation import Cancellations
from processors.errors import Failure, JobTimedOut, assess_failure
from processors.history import JobHistory
from processors.rate_limits import ModelRateLimits, estimated_tokens
from processors.retry import RetryPolicy, decide_retry
from processors.runner import AttemptRecord, AttemptResult, JobRunner, LifecyclePublisher
from processors.simulator_hooks import idle_timeout_override, simulator_headers
from processors.slots import PrioritySlots
from schemas.events import DeadLetter, ErrorInfo, JobRequested, JobRetrying, TerminalEvent

log = logging.getLogger(__name__)

HANDED_BACK = "handed_back"
JOB_TIMEOUT = "job_timeout"


class JobPublisher(LifecyclePublisher, Protocol):
    async def dead_letter(self, letter: DeadLetter) -> None:
        """Put a letter on ``jobs.dlq``; return once the broker has it."""
        ...


@dataclass(frozen=True)
class Delivery:
    """A job message as it reached this worker: the job, and where it came from."""

    job: JobRequested
    topic: str
    partition: int
    offset: int
    payload: bytes

    @property
    def tp(self) -> tuple[str, int]:
        return (self.topic, self.partition)


class JobProcessor:
    def __init__(
        self,
        runner: JobRunner,
        publisher: JobPublisher,
        breakers: Breakers,
        policy: RetryPolicy,
        *,
        provider: str,
        idle_timeout_s: float,
        simulator: bool = False,
        running_slots: PrioritySlots | None = None,
        rate_limits: ModelRateLimits | None = None,
        cancellations: Cancellations | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._runner = runner
        self._publisher = publisher
        self._breakers = breakers
        self._policy = policy
        self._provider = provider
        self._idle_timeout_s = idle_timeout_s
        self._simulator = simulator
        self._slots = running_slots or PrioritySlots(2**31 - 1)
        self._limits = rate_limits or ModelRateLimits()
        self._cancels = cancellations or Cancellations()
        self._clock = clock
        self._sleep = sleep
        self._rand = rand

    async def process(
        self, delivery: Delivery, history: JobHistory | None = None
    ) -> TerminalEvent | None:
        """Run the job to its end and publish it; None when the log says it already ended."""
        job = delivery.job
        history = history or JobHistory(base=job.attempt)
        if history.finished is not None:
            log.info("job %s already ended (attempt %d)", job.job_id, history.finished.attempt)
            return None
        run = _Run(history.next_attempt, history.tries_used, history.first_started_at)
        try:
            return await self._process(delivery, history, run)
        finally:
            self._cancels.release(job.job_id)

    async def _process(
        self, delivery: Delivery, history: JobHistory, run: _Run
    ) -> TerminalEvent | None:
        job = delivery.job
        if await self._cancels.requested(job.job_id):
            return await self._cancelled_before_start(job, run)
        if run.tries_used >= self._policy.max_tries:
            crashed = _crashed(run.tries_used)
            return await self._give_up(delivery, run, crashed, history.max_attempt, "exhausted")
        key = BreakerKey(self._provider, job.config.model)
        while True:
            admitted = await self._admit(key, run)
            if admitted is None:
                last = run.attempt - 1
                return await self._give_up(delivery, run, _timed_out(), last, "timeout")
            result = await self._attempt(job, run, key, admitted)
            if result.cancelled:
                return await self._publish_end(result)
            failure = result.failure
            if failure is not None and failure.error.code == JOB_TIMEOUT:
                return await self._give_up(delivery, run, failure, result, "timeout")
            if failure is None or not failure.retryable:
                return await self._publish_end(result)
            run.tries_used += 1
            now = self._clock()
            deadline = run.deadline(self._policy)
            retry_after = failure.retry_after_s
            decision = decide_retry(
                self._policy, run.tries_used, now, deadline, retry_after, self._rand
            )
            if not decision.retry:
                why = decision.why_not or "exhausted"
                final = _timed_out() if why == "timeout" else failure
                return await self._give_up(delivery, run, final, result, why, cause=failure)
            await self._publisher.publish_job_event(self._retrying(result, decision.delay_s))
            if await self._cancelled_while_waiting(job.job_id, decision.delay_s):
                run.attempt += 1
                return await self._cancelled_before_start(job, run)
            run.attempt += 1

    @contextlib.asynccontextmanager
    async def _slot_unless_cancelled(self, job: JobRequested) -> AsyncIterator[bool]:
        """Wait for a running slot, or for a cancel: yields whether the slot was granted."""
        cancel = self._cancels.watch(job.job_id)
        slot = self._slots.slot(job.priority, job.user_id, job.config.model)
        enter = asyncio.ensure_future(slot.__aenter__())
        stop = asyncio.ensure_future(cancel.wait())
        try:
            await asyncio.wait({enter, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            if not enter.done():
                enter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await enter
        if enter.cancelled():
            yield False
            return
        enter.result()  # a failure to get the slot surfaces here
        try:
            yield not cancel.is_set()
        finally:
            await slot.__aexit__(None, None, None)

    async def _cancelled_while_waiting(self, job_id: str, delay_s: float) -> bool:
        """Sleep out a retry's backoff, cut short by a cancel; True when cancelled."""
        cancel = self._cancels.watch(job_id)
        sleep = asyncio.ensure_future(self._sleep(delay_s))
        stop = asyncio.ensure_future(cancel.wait())
        try:
            await asyncio.wait({sleep, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleep.cancel()
            stop.cancel()
        return cancel.is_set()

    async def _cancelled_before_start(self, job: JobRequested, run: _Run) -> TerminalEvent:
        """A job cancelled while it waited: it ends with no tokens and no provider call."""
        now = self._clock()
        this = job.model_copy(update={"attempt": run.attempt})
        result = AttemptResult(this, AttemptRecord(started_at=now), now, None, cancelled=True)
        log.info("job %s cancelled before it started", job.job_id)
        return await self._publish_end(result)

    async def _admit(self, key: BreakerKey, run: _Run) -> Pass | None:
        """Wait for the breaker; None when the job's time ran out meanwhile."""
        if run.first_started_at is None:
            return await self._breakers.admit(key)  # a job's clock starts with its first attempt
        try:
            async with asyncio.timeout(run.deadline(self._policy) - self._clock()):
                return await self._breakers.admit(key)
        except TimeoutError:
            return None

    async def _attempt(
        self, job: JobRequested, run: _Run, key: BreakerKey, admitted: Pass
    ) -> AttemptResult:
        this = job.model_copy(update={"attempt": run.attempt})
        headers = simulator_headers(job, run.attempt) if self._simulator else None
        idle = idle_timeout_override(job, run.attempt) if self._simulator else None
        reached_provider = False
        try:
            # Near a provider limit the job waits here, before it takes a slot.
            await self._limits.admit(job.config.model, estimated_tokens(job))
            async with self._slot_unless_cancelled(job) as granted:
                if not granted:  # cancelled while it waited: it never starts
                    now = self._clock()
                    return AttemptResult(this, AttemptRecord(now), now, None, cancelled=True)
                if run.first_started_at is None:
                    run.first_started_at = self._clock()
                time_left = run.deadline(self._policy) - self._clock()
                run.in_attempt = True
                result = await self._runner.attempt(
                    this,
                    headers=headers,
                    idle_timeout_s=idle or self._idle_timeout_s,
                    time_left_s=time_left,
                    cancel=self._cancels.watch(job.job_id),
                )
                run.in_attempt = False
                reached_provider = True
        except asyncio.CancelledError as exc:
            if run.in_attempt:
                await asyncio.shield(self._hand_back(this, run, exc))
            raise
        finally:
            if not reached_provider:
                self._breakers.abandon(key, admitted)
        failed = result.failure is not None and result.failure.provider_fault
        self._breakers.record(key, admitted, failed)
        return result

    async def _hand_back(self, job: JobRequested, run: _Run, exc: asyncio.CancelledError) -> None:
        """The attempt was stopped from outside (shutdown, partition moved): say so in the log.

        It does not use up a try; whoever gets the message next runs the following attempt.
        """
        reason = str(exc.args[0]) if exc.args else HANDED_BACK
        now = self._clock()
        event = JobRetrying(
            **job.attempt_context(),
            error=ErrorInfo(code=reason, message="the attempt was handed back to the queue"),
            counts_as_try=False,
            started_at=run.first_started_at or now,
            failed_at=now,
        )
        try:
            await self._publisher.publish_job_event(event)
        except Exception:
            log.warning("job %s: could not record the hand-back", job.job_id, exc_info=True)

    def _retrying(self, result: AttemptResult, delay_s: float) -> JobRetrying:
        job, failure = result.job, result.failure
        assert failure is not None
        code = failure.error.code
        log.info(
            "job %s attempt %d failed (%s), retry in %.1fs", job.job_id, job.attempt, code, delay_s
        )
        return JobRetrying(
            **job.attempt_context(),
            error=failure.error,
            token_count=len(result.record.pieces),
            retry_in_s=delay_s,
            started_at=result.record.started_at,
            failed_at=result.finished_at,
        )

    async def _publish_end(self, result: AttemptResult) -> TerminalEvent:
        event = result.terminal()
        await self._publisher.publish_job_event(event)
        return event

    async def _give_up(
        self,
        delivery: Delivery,
        run: _Run,
        failure: Failure,
        last: AttemptResult | int,
        why: str,
        cause: Failure | None = None,
    ) -> TerminalEvent:
        """No more tries: the job fails, and goes to the DLQ with its original message.

        ``failure`` is what the job ends with; ``cause`` the last attempt's own failure.
        """
        if isinstance(last, int):
            now = self._clock()
            job = delivery.job.model_copy(update={"attempt": max(last, delivery.job.attempt)})
            last = AttemptResult(job, AttemptRecord(started_at=now), now)
        last.failure = failure
        letter = DeadLetter(
            job_id=delivery.job.job_id,
            source_topic=delivery.topic,
            partition=delivery.partition,
            offset=delivery.offset,
            reason=_dead_letter_reason(why, (cause or failure).error, run.tries_used),
            payload=delivery.payload.decode("utf-8", "replace"),
            error_code=failure.error.code,
            attempt=last.job.attempt,
        )
        await self._publisher.dead_letter(letter)
        log.warning("job %s dead-lettered: %s", delivery.job.job_id, letter.reason)
        return await self._publish_end(last)


@dataclass
class _Run:
    """Where a job stands: the attempt to run next and the tries it has used."""

    attempt: int
    tries_used: int
    first_started_at: float | None
    in_attempt: bool = False

    def deadline(self, policy: RetryPolicy) -> float:
        assert self.first_started_at is not None, "a job's clock starts with its first attempt"
        return self.first_started_at + policy.job_timeout_s


def _crashed(times: int) -> Failure:
    message = f"the job's attempts ended with their worker {times} times"
    return Failure(ErrorInfo(code="worker_crashed", message=message), False, False)


def _timed_out() -> Failure:
    return assess_failure(JobTimedOut())


def _dead_letter_reason(why: str, error: ErrorInfo, tries: int) -> str:
    if why == "timeout":
        return f"job timed out after {tries} failed tries; last error {error.code}"
    return f"exhausted {tries} tries; last error {error.code}: {error.message}"
