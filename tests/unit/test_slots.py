"""Slots go to the highest priority first, lower ones get their share, caps make jobs wait."""

from __future__ import annotations

import asyncio

import pytest

from processors.slots import PrioritySlots


class Jobs:
    """Jobs that take a slot and hold it until the test ends them; records the grant order."""

    def __init__(self, slots: PrioritySlots) -> None:
        self.slots = slots
        self.started: list[str] = []
        self.gates: dict[str, asyncio.Event] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}

    async def _job(self, name: str, priority: str, user: str, model: str) -> None:
        async with self.slots.slot(priority, user, model):
            self.started.append(name)
            await self.gates[name].wait()

    async def submit(self, name: str, priority: str, user: str = "u", model: str = "m") -> None:
        self.gates[name] = asyncio.Event()
        self.tasks[name] = asyncio.create_task(self._job(name, priority, user, model))
        await settle()

    async def end(self, name: str) -> None:
        self.gates[name].set()
        await self.tasks[name]
        await settle()

    async def end_first_running(self) -> None:
        running = [n for n in self.started if not self.tasks[n].done()]
        await self.end(running[0])


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


async def test_a_free_slot_goes_to_the_highest_priority_waiter_fifo_within_it() -> None:
    jobs = Jobs(PrioritySlots(1, starvation_every=0))
    await jobs.submit("first", "low")
    for name, priority in [
        ("low1", "low"),
        ("normal1", "normal"),
        ("high1", "high"),
        ("low2", "low"),
        ("high2", "high"),
        ("urgent1", "urgent"),
    ]:
        await jobs.submit(name, priority)
    assert jobs.started == ["first"]
    for _ in range(6):
        await jobs.end_first_running()
    assert jobs.started == ["first", "urgent1", "high1", "high2", "normal1", "low1", "low2"]


async def test_an_urgent_job_takes_the_next_slot_ahead_of_twenty_waiting_low_jobs() -> None:
    jobs = Jobs(PrioritySlots(2))
    for i in range(22):
        await jobs.submit(f"low{i}", "low")
    await jobs.submit("urgent", "urgent")
    assert jobs.started == ["low0", "low1"]
    await jobs.end("low0")
    assert jobs.started[-1] == "urgent"


async def test_every_nth_grant_goes_to_the_oldest_lower_priority_waiter() -> None:
    slots = PrioritySlots(1, starvation_every=5)
    jobs = Jobs(slots)
    await jobs.submit("h0", "high")  # grant 1
    await jobs.submit("low", "low")
    await jobs.submit("normal", "normal")
    for i in range(1, 20):
        await jobs.submit(f"h{i}", "high")
    for _ in range(10):
        await jobs.end_first_running()
    # grants 1-4 high, 5 the oldest lower waiter (low, older than normal), 6-9 high, 10 normal
    assert jobs.started == ["h0", "h1", "h2", "h3", "low", "h4", "h5", "h6", "h7", "normal", "h8"]
    assert slots.starvation_grants == 2


async def test_the_share_goes_to_the_best_when_no_lower_job_waits() -> None:
    slots = PrioritySlots(1, starvation_every=2)
    jobs = Jobs(slots)
    for i in range(5):
        await jobs.submit(f"u{i}", "urgent")
    for _ in range(4):
        await jobs.end_first_running()
    assert jobs.started == ["u0", "u1", "u2", "u3", "u4"]
    assert slots.starvation_grants == 0


async def test_a_user_at_its_cap_waits_while_others_go_ahead() -> None:
    slots = PrioritySlots(3, per_user=1)
    jobs = Jobs(slots)
    await jobs.submit("alice1", "urgent", user="alice")
    await jobs.submit("alice2", "urgent", user="alice")
    await jobs.submit("bob1", "low", user="bob")
    assert jobs.started == ["alice1", "bob1"]
    assert slots.waiting("urgent") == 1
    await jobs.end("alice1")
    assert jobs.started == ["alice1", "bob1", "alice2"]
    assert not jobs.tasks["alice2"].done()  # waited, did not fail


async def test_a_model_at_its_cap_waits_while_other_models_go_ahead() -> None:
    jobs = Jobs(PrioritySlots(4, per_model=2))
    for i in range(3):
        await jobs.submit(f"big{i}", "high", model="gpt-4o")
    await jobs.submit("mini", "low", model="gpt-4o-mini")
    assert jobs.started == ["big0", "big1", "mini"]
    await jobs.end("big0")
    assert jobs.started[-1] == "big2"


async def test_a_cancelled_waiter_leaves_the_queue() -> None:
    slots = PrioritySlots(1)
    jobs = Jobs(slots)
    await jobs.submit("running", "low")
    await jobs.submit("urgent", "urgent")
    await jobs.submit("low", "low")
    jobs.tasks["urgent"].cancel()
    await settle()
    assert slots.waiting() == 1
    await jobs.end("running")
    assert jobs.started == ["running", "low"]
    with pytest.raises(asyncio.CancelledError):
        await jobs.tasks["urgent"]


async def test_a_slot_granted_to_a_waiter_cancelled_before_it_ran_is_passed_on() -> None:
    slots = PrioritySlots(1)
    jobs = Jobs(slots)
    await jobs.submit("running", "low")
    await jobs.submit("next", "urgent")
    await jobs.submit("after", "low")
    jobs.gates["running"].set()
    await asyncio.sleep(0)  # "running" releases: its slot is granted to "next"...
    await asyncio.sleep(0)
    jobs.tasks["next"].cancel()  # ...which is cancelled before it resumes
    await settle()
    assert "after" in jobs.started
    assert slots.running == 1
    await jobs.end("after")
    assert slots.running == 0
    assert slots.waiting() == 0


async def test_a_job_that_fails_inside_its_slot_frees_it() -> None:
    slots = PrioritySlots(1)

    async def failing() -> None:
        async with slots.slot("high", "u", "m"):
            raise RuntimeError("provider down")

    with pytest.raises(RuntimeError):
        await failing()
    assert slots.running == 0
    async with asyncio.timeout(1), slots.slot("low", "u", "m"):
        assert slots.running == 1
