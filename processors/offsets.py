"""Which job messages are safe to commit: every one below the commit point has finished.

Jobs run concurrently and finish in any order, so a partition's commit point is its
lowest unfinished offset (or one past its highest finished one when none is running).
Faust's own ack bookkeeping can commit past a message still running when a later one
finishes first, and waits for every running job at each rebalance; the worker therefore
turns Faust's acks off for the job topics and commits what this ledger says.

Pure: no Kafka here. Offsets are registered in the order the agent receives them.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

P = TypeVar("P", bound=Hashable)  # a topic-partition


@dataclass
class _PartitionLedger:
    running: set[int] = field(default_factory=set)
    finished: set[int] = field(default_factory=set)
    committed: int | None = None  # the next offset to read, as last committed

    def commit_point(self) -> int | None:
        if self.running:
            return min(self.running)
        if self.finished:
            return max(self.finished) + 1
        return None


class OffsetLedger(Generic[P]):
    def __init__(self) -> None:
        self._partitions: dict[P, _PartitionLedger] = {}

    def begin(self, tp: P, offset: int) -> bool:
        """Register a message as running; False when it is known already (a redelivery)."""
        ledger = self._partitions.setdefault(tp, _PartitionLedger())
        if offset in ledger.running or offset in ledger.finished:
            return False
        if ledger.committed is not None and offset < ledger.committed:
            return False
        ledger.running.add(offset)
        return True

    def is_running(self, tp: P, offset: int) -> bool:
        ledger = self._partitions.get(tp)
        return ledger is not None and offset in ledger.running

    def finish(self, tp: P, offset: int) -> None:
        ledger = self._partitions.get(tp)
        if ledger is not None and offset in ledger.running:
            ledger.running.discard(offset)
            ledger.finished.add(offset)

    def to_commit(self) -> dict[P, int]:
        """Offsets to commit (the next offset to read), for partitions that moved on."""
        out: dict[P, int] = {}
        for tp, ledger in self._partitions.items():
            point = ledger.commit_point()
            if point is not None and (ledger.committed is None or point > ledger.committed):
                out[tp] = point
        return out

    def committed(self, offsets: dict[P, int]) -> None:
        """The broker has these commits: forget what lies below them."""
        for tp, point in offsets.items():
            ledger = self._partitions.get(tp)
            if ledger is None:
                continue
            ledger.committed = max(point, ledger.committed or 0)
            ledger.finished = {o for o in ledger.finished if o >= point}

    def partitions(self) -> set[P]:
        return set(self._partitions)

    def forget(self, tps: Iterable[P]) -> None:
        """Partitions this worker no longer owns: their new owner starts from the commit."""
        for tp in tps:
            self._partitions.pop(tp, None)

    def running_count(self) -> int:
        return sum(len(ledger.running) for ledger in self._partitions.values())
