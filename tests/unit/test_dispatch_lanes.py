"""A full lane of low jobs never blocks the agent of a higher priority."""

from __future__ import annotations

import asyncio

from processors.attempts import Delivery
from processors.dispatch import JobDispatcher
from tests.unit.test_processors_dispatch import delivery


async def test_a_full_low_lane_does_not_block_an_urgent_dispatch() -> None:
    gate = asyncio.Event()
    started: list[str] = []

    async def handle(d: Delivery, seen_before: bool) -> None:
        started.append(d.topic)
        await gate.wait()

    async def commit(offsets: dict[tuple[str, int], int]) -> bool:
        return True

    dispatcher = JobDispatcher(handle, commit, lambda tp: 0, capacity=2, commit_interval_s=0)
    await dispatcher.dispatch(delivery(0, ("jobs.low", 0)))
    await dispatcher.dispatch(delivery(1, ("jobs.low", 0)))
    blocked = asyncio.create_task(dispatcher.dispatch(delivery(2, ("jobs.low", 0))))
    await asyncio.sleep(0.01)
    assert not blocked.done()  # the low lane is full: its agent waits
    async with asyncio.timeout(1):
        await dispatcher.dispatch(delivery(0, ("jobs.urgent", 0)))
    await asyncio.sleep(0.01)
    assert started.count("jobs.urgent") == 1
    gate.set()
    async with asyncio.timeout(1):
        await blocked


async def test_a_message_whose_partition_moved_while_its_lane_was_full_is_dropped() -> None:
    gate = asyncio.Event()
    started: list[int] = []

    async def handle(d: Delivery, seen_before: bool) -> None:
        started.append(d.offset)
        await gate.wait()

    async def commit(offsets: dict[tuple[str, int], int]) -> bool:
        return True

    dispatcher = JobDispatcher(handle, commit, lambda tp: 0, capacity=1, commit_interval_s=0)
    await dispatcher.dispatch(delivery(0, ("jobs.low", 0)))
    blocked = asyncio.create_task(dispatcher.dispatch(delivery(0, ("jobs.low", 1))))
    await asyncio.sleep(0.01)
    dispatcher.on_assigned({("jobs.low", 0)})  # jobs.low/1 moved to another worker
    gate.set()
    async with asyncio.timeout(1):
        await blocked
    await asyncio.sleep(0.01)
    assert started == [0]
