"""Jobs run concurrently; a message is committed only once its job and all before it ended."""

from __future__ import annotations

import asyncio

from processors.attempts import Delivery
from processors.dispatch import JobDispatcher
from schemas.events import JobRequested
from schemas.jobs import JobConfig, JobType
from schemas.topics import Priority
from sluice.jobids import new_job_id

TP = ("jobs.normal", 0)


def delivery(offset: int, tp: tuple[str, int] = TP, attempt: int = 1) -> Delivery:
    job = JobRequested(
        job_id=new_job_id(),
        user_id="u",
        job_type=JobType.analysis,
        priority=Priority.normal,
        prompt="p",
        config=JobConfig(),
        attempt=attempt,
    )
    return Delivery(job, tp[0], tp[1], offset, job.to_bytes())


class Jobs:
    """A handler whose jobs end when the test says so, and a committer that records."""

    def __init__(self, highwater: int | None = 0) -> None:
        self.gates: dict[int, asyncio.Event] = {}
        self.seen_before: dict[int, bool] = {}
        self.commits: list[dict[tuple[str, int], int]] = []
        self.failures_left = 0
        self.dispatcher = JobDispatcher(
            self.handle, self.commit, lambda tp: highwater, capacity=8, commit_interval_s=0
        )

    async def handle(self, d: Delivery, seen_before: bool) -> None:
        self.seen_before[d.offset] = seen_before
        if self.failures_left:
            self.failures_left -= 1
            raise ConnectionError("kafka went away")
        await self.gates.setdefault(d.offset, asyncio.Event()).wait()

    async def commit(self, offsets: dict[tuple[str, int], int]) -> bool:
        self.commits.append(dict(offsets))
        return True

    def end(self, offset: int) -> None:
        self.gates.setdefault(offset, asyncio.Event()).set()

    async def settle(self) -> None:
        for _ in range(20):
            await asyncio.sleep(0)


async def test_a_partition_is_committed_up_to_its_oldest_running_job() -> None:
    jobs = Jobs()
    for offset in (0, 1, 2):
        await jobs.dispatcher.dispatch(delivery(offset))
    jobs.end(1)
    jobs.end(2)
    await jobs.settle()
    assert jobs.commits[-1] == {TP: 0}
    jobs.end(0)
    await jobs.settle()
    assert jobs.commits[-1] == {TP: 3}


async def test_a_redelivered_message_of_a_running_job_is_not_started_twice() -> None:
    jobs = Jobs()
    await jobs.dispatcher.dispatch(delivery(5))
    await jobs.dispatcher.dispatch(delivery(5))
    await jobs.settle()
    assert jobs.dispatcher.running == 1


async def test_a_job_that_could_not_run_is_tried_again_from_the_log() -> None:
    jobs = Jobs()
    jobs.failures_left = 1
    jobs.dispatcher._error_backoff_max_s = 0.0
    await jobs.dispatcher.dispatch(delivery(0))
    await asyncio.sleep(0.6)
    assert jobs.seen_before[0] is True  # the second try reads the log first
    jobs.end(0)
    await jobs.settle()
    assert jobs.commits[-1] == {TP: 1}


async def test_shutdown_waits_for_quick_jobs_and_hands_back_slow_ones() -> None:
    jobs = Jobs()
    for offset in (0, 1):
        await jobs.dispatcher.dispatch(delivery(offset))
    asyncio.get_running_loop().call_later(0.05, jobs.end, 0)
    await jobs.dispatcher.drain(grace_s=0.3)
    assert jobs.commits[-1] == {TP: 1}  # job 1 never ended: it will run again
    await jobs.dispatcher.dispatch(delivery(2))
    assert jobs.dispatcher.running == 0  # draining: no new job


async def test_jobs_of_partitions_moved_elsewhere_are_stopped_and_forgotten() -> None:
    jobs = Jobs()
    other = ("jobs.high", 3)
    await jobs.dispatcher.dispatch(delivery(0))
    await jobs.dispatcher.dispatch(delivery(9, tp=other))
    jobs.dispatcher.on_assigned({TP})
    await jobs.settle()
    assert jobs.dispatcher.running == 1
    assert jobs.dispatcher.ledger.partitions() == {TP}


async def test_messages_below_the_partition_end_at_assignment_are_checked_against_the_log() -> None:
    jobs = Jobs(highwater=3)
    for offset in (2, 3):
        await jobs.dispatcher.dispatch(delivery(offset))
    await jobs.dispatcher.dispatch(delivery(4, attempt=2))  # requeued from the DLQ
    await jobs.settle()
    assert jobs.seen_before == {2: True, 3: False, 4: True}
