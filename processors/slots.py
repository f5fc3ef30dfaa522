"""The worker's running slots, handed out by priority, with per-user and per-model caps.

A job holds a slot while it talks to the LLM. When a slot frees it goes to the waiter of
the highest priority (urgent > high > normal > low), first come first served within a
priority; but every ``starvation_every``-th grant goes to the oldest waiter of a lower
priority than that one, so a steady flow of urgent jobs never starves the rest. A waiter
whose user or model is at its cap is passed over (it keeps its place and waits); it is
never failed.

Written by hand: asyncio's primitives have no priority or per-key caps, and the
libraries that do (aiolimiter, anyio) limit rates or counts, not the order of grants.
Cancellation-safe: a waiter cancelled while it waits leaves the queue, and a slot
granted to a waiter that was cancelled before it could run is passed on.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from schemas.topics import PRIORITIES_HIGHEST_FIRST, Priority

_RANK = {p.value: i for i, p in enumerate(PRIORITIES_HIGHEST_FIRST)}


def priority_rank(priority: Priority | str) -> int:
    """0 for urgent, 3 for low."""
    return _RANK[Priority(priority).value]


@dataclass(eq=False)
class _Waiter:
    rank: int
    user: str
    model: str
    order: int  # arrival: lower is older
    granted: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class PrioritySlots:
    def __init__(
        self,
        total: int,
        starvation_every: int = 10,
        per_user: int | None = None,
        per_model: int | None = None,
    ) -> None:
        if total < 1:
            raise ValueError("a worker needs at least one slot")
        self.total = total
        self.starvation_every = max(0, starvation_every)  # 0: strict priority
        self.per_user = per_user or None
        self.per_model = per_model or None
        self._queues: list[list[_Waiter]] = [[] for _ in PRIORITIES_HIGHEST_FIRST]
        self._running = 0
        self._by_user: Counter[str] = Counter()
        self._by_model: Counter[str] = Counter()
        self._arrivals = itertools.count()
        self.grants = 0  # slots handed out so far
        self.starvation_grants = 0  # of which to a lower priority than the best waiter

    @property
    def running(self) -> int:
        return self._running

    def waiting(self, priority: Priority | str | None = None) -> int:
        if priority is None:
            return sum(len(q) for q in self._queues)
        return len(self._queues[priority_rank(priority)])

    @contextlib.asynccontextmanager
    async def slot(
        self, priority: Priority | str, user_id: str = "", model: str = ""
    ) -> AsyncIterator[None]:
        """Hold a slot for the block; waits (in priority order) until one is granted."""
        waiter = _Waiter(priority_rank(priority), user_id, model, next(self._arrivals))
        self._queues[waiter.rank].append(waiter)
        self._grant()
        try:
            await waiter.granted
        except asyncio.CancelledError:
            if waiter.granted.done() and not waiter.granted.cancelled():
                self._release(waiter)  # granted just as we were cancelled: pass it on
            else:
                self._leave(waiter)
            raise
        try:
            yield
        finally:
            self._release(waiter)

    def _eligible(self, w: _Waiter) -> bool:
        if w.granted.done():
            return False  # cancelled; its task removes it
        if self.per_user is not None and self._by_user[w.user] >= self.per_user:
            return False
        return self.per_model is None or self._by_model[w.model] < self.per_model

    def _first_eligible(self, ranks: range) -> _Waiter | None:
        """The oldest eligible waiter among these priorities (FIFO within each)."""
        found: _Waiter | None = None
        for rank in ranks:
            for w in self._queues[rank]:
                if self._eligible(w):
                    if found is None or w.order < found.order:
                        found = w
                    break  # later ones in this queue are younger
        return found

    def _choose(self) -> tuple[_Waiter | None, bool]:
        best: _Waiter | None = None
        for rank in range(len(self._queues)):
            best = self._first_eligible(range(rank, rank + 1))
            if best is not None:
                break
        if best is None:
            return None, False
        every = self.starvation_every
        if every and (self.grants + 1) % every == 0:
            lower = self._first_eligible(range(best.rank + 1, len(self._queues)))
            if lower is not None:
                return lower, True
        return best, False

    def _grant(self) -> None:
        """Hand free slots to waiters until none is free or no waiter may take one."""
        while self._running < self.total:
            waiter, starved = self._choose()
            if waiter is None:
                return
            self._leave(waiter)
            self._running += 1
            self._by_user[waiter.user] += 1
            self._by_model[waiter.model] += 1
            self.grants += 1
            self.starvation_grants += starved
            waiter.granted.set_result(None)

    def _leave(self, waiter: _Waiter) -> None:
        queue = self._queues[waiter.rank]
        with contextlib.suppress(ValueError):
            queue.remove(waiter)

    def _release(self, waiter: _Waiter) -> None:
        self._running -= 1
        for counts, key in ((self._by_user, waiter.user), (self._by_model, waiter.model)):
            counts[key] -= 1
            if counts[key] <= 0:
                del counts[key]
        self._grant()
