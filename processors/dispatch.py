"""Runs each delivered job as a task and commits its message only once the job has ended.

Each priority topic has its own agent and its own lane here: a lane holds at most
``capacity`` jobs in memory (running, or waiting for a slot in ``processors.slots``), and
an agent whose lane is full waits without holding up the other lanes, so an urgent job is
seen while the worker is full of low ones. Each agent hands over its messages in the order
it receives them. Each becomes a task; the
ledger (``processors.offsets``) commits a partition only up to its oldest unfinished job.
So whatever stops a job before its end — SIGKILL, SIGTERM past the grace period, a
partition moving to another worker — leaves its message uncommitted, and it runs again.

A message may have been handled before (by a worker that died, or by this one before a
rebalance): those below the partition's horizon — its end when this worker first read
it after an assignment — are checked against the job-events log first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from processors.attempts import Delivery
from processors.offsets import OffsetLedger

log = logging.getLogger(__name__)

TP = tuple[str, int]
Handler = Callable[[Delivery, bool], Awaitable[None]]
"""Runs a job to its end; the flag says to consult the log first (it may have run before)."""
Committer = Callable[[dict[TP, int]], Awaitable[bool]]
Highwater = Callable[[TP], int | None]

WORKER_SHUTDOWN = "worker_shutdown"
PARTITION_REVOKED = "partition_revoked"


@dataclass
class _JobLocks:
    """One lock per job id: two messages of one job (a requeue, say) never run at once."""

    locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    users: dict[str, int] = field(default_factory=dict)

    @contextlib.asynccontextmanager
    async def hold(self, job_id: str) -> AsyncIterator[None]:
        lock = self.locks.setdefault(job_id, asyncio.Lock())
        self.users[job_id] = self.users.get(job_id, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self.users[job_id] -= 1
            if not self.users[job_id]:
                del self.users[job_id], self.locks[job_id]


class JobDispatcher:
    def __init__(
        self,
        handle: Handler,
        commit: Committer,
        highwater: Highwater,
        *,
        capacity: int,
        commit_interval_s: float = 0.5,
        error_backoff_max_s: float = 30.0,
    ) -> None:
        self._handle = handle
        self._commit = commit
        self._highwater = highwater
        self._lane_capacity = capacity
        self._lanes: dict[str, asyncio.Semaphore] = {}  # per topic: one lane per priority
        self._commit_interval_s = commit_interval_s
        self._error_backoff_max_s = error_backoff_max_s
        self.ledger: OffsetLedger[TP] = OffsetLedger()
        self._tasks: dict[tuple[TP, int], asyncio.Task[None]] = {}
        self._horizons: dict[TP, int | None] = {}
        self._locks = _JobLocks()
        self._commit_wanted = asyncio.Event()
        self._committer: asyncio.Task[None] | None = None
        self.draining = False

    async def dispatch(self, delivery: Delivery) -> None:
        """Start the job of a message unless it is running or done here already, or we drain."""
        if self.draining or not self.ledger.begin(delivery.tp, delivery.offset):
            return
        lane = self._lane(delivery.topic)
        await lane.acquire()
        if self.draining or not self.ledger.is_running(delivery.tp, delivery.offset):
            # Shutdown began while we waited, or the partition moved to another worker:
            # leave the message to the next owner.
            lane.release()
            return
        seen_before = self._maybe_seen(delivery)
        self._ensure_committer()
        key = (delivery.tp, delivery.offset)
        task = asyncio.create_task(self._run(delivery, seen_before))
        self._tasks[key] = task
        # A callback, not a finally: a task cancelled before it ran never enters its body.
        task.add_done_callback(lambda _: self._ended(key, lane))

    def _lane(self, topic: str) -> asyncio.Semaphore:
        lane = self._lanes.get(topic)
        if lane is None:
            lane = self._lanes[topic] = asyncio.Semaphore(self._lane_capacity)
        return lane

    def _ended(self, key: tuple[TP, int], lane: asyncio.Semaphore) -> None:
        lane.release()
        self._tasks.pop(key, None)

    def _maybe_seen(self, delivery: Delivery) -> bool:
        if delivery.job.attempt > 1:
            return True  # requeued: the log knows how far its earlier run got
        if delivery.tp not in self._horizons or self._horizons[delivery.tp] is None:
            # First message of this partition since the assignment. Anything below the end
            # the broker reports now may have reached an earlier owner; later ones cannot.
            self._horizons[delivery.tp] = self._highwater(delivery.tp)
        horizon = self._horizons[delivery.tp]
        return horizon is None or delivery.offset < horizon

    async def _run(self, delivery: Delivery, seen_before: bool) -> None:
        backoff = 0.5
        try:
            while True:
                try:
                    async with self._locks.hold(delivery.job.job_id):
                        await self._handle(delivery, seen_before)
                    break
                except Exception:
                    # Kafka unreachable, say: the job goes on from what the log then holds.
                    log.exception("job %s: failed to run it; trying again", delivery.job.job_id)
                    seen_before = True
                    await asyncio.sleep(backoff)
                    backoff = min(self._error_backoff_max_s, backoff * 2)
            self.ledger.finish(delivery.tp, delivery.offset)
            self._commit_wanted.set()
        except asyncio.CancelledError:
            log.info("job %s handed back (%s)", delivery.job.job_id, delivery.tp)

    def on_assigned(self, assigned: set[TP]) -> None:
        """After a rebalance: stop the jobs of partitions now owned by others, re-read horizons."""
        self._horizons.clear()
        lost = {tp for tp in self.ledger.partitions() if tp not in assigned}
        for (tp, _), task in list(self._tasks.items()):
            if tp in lost:
                task.cancel(PARTITION_REVOKED)
        self.ledger.forget(lost)
        if lost:
            log.warning("partitions moved to another worker; their jobs were handed back: %s", lost)

    async def drain(self, grace_s: float) -> None:
        """Shutdown: take no new job, let running ones finish in ``grace_s``, hand back the rest."""
        self.draining = True
        running = list(self._tasks.values())
        if running:
            log.info("waiting up to %.1f s for %d running jobs", grace_s, len(running))
            _, pending = await asyncio.wait(running, timeout=grace_s)
            for task in pending:
                task.cancel(WORKER_SHUTDOWN)
            if pending:
                log.warning("handing back %d jobs that did not finish in time", len(pending))
                await asyncio.wait(pending)
        await self.commit_now()
        if self._committer is not None:
            self._committer.cancel()

    async def commit_now(self) -> bool:
        offsets = self.ledger.to_commit()
        if not offsets:
            return True
        if await self._commit(offsets):
            self.ledger.committed(offsets)
            return True
        return False

    def _ensure_committer(self) -> None:
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_loop())

    async def _commit_loop(self) -> None:
        while True:
            await self._commit_wanted.wait()
            self._commit_wanted.clear()
            await asyncio.sleep(self._commit_interval_s)
            try:
                done = await self.commit_now()
            except Exception:
                log.warning("committing job offsets failed; will retry", exc_info=True)
                done = False
            if not done:
                self._commit_wanted.set()

    @property
    def running(self) -> int:
        return len(self._tasks)
