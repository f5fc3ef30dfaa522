"""What a sink holds between commits, and when it must write it out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic

from sinks.pipeline import Accepted, Origin, R, Rejected

TopicPartition = tuple[str, int]


@dataclass
class PendingBatch(Generic[R]):
    """Messages consumed since the last commit: rows to write, rejects to dead-letter,
    and per partition the offset to commit once both are durable."""

    accepted: list[Accepted[R]] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    next_offsets: dict[TopicPartition, int] = field(default_factory=dict)
    message_count: int = 0
    opened_at: float | None = None

    def add(self, origin: Origin, outcome: R | Rejected | None, now: float) -> None:
        if self.opened_at is None:
            self.opened_at = now
        if isinstance(outcome, Rejected):
            self.rejected.append(outcome)
        elif outcome is not None:
            self.accepted.append(Accepted(outcome, origin))
        tp = (origin.topic, origin.partition)
        self.next_offsets[tp] = max(self.next_offsets.get(tp, 0), origin.offset + 1)
        self.message_count += 1

    @property
    def row_count(self) -> int:
        return len(self.accepted)

    def age(self, now: float) -> float:
        return 0.0 if self.opened_at is None else now - self.opened_at


@dataclass(frozen=True)
class FlushPolicy:
    """Write when ``max_rows`` rows are waiting or the oldest message is ``max_wait_s`` old.

    ``max_wait_s=0`` writes after every poll that brought anything.
    """

    max_rows: int
    max_wait_s: float

    def due(self, batch: PendingBatch[R], now: float) -> bool:
        if batch.message_count == 0:
            return False
        return batch.row_count >= self.max_rows or batch.age(now) >= self.max_wait_s

    def poll_timeout_s(self, batch: PendingBatch[R], now: float, idle_s: float) -> float:
        """How long the next poll may wait without making the batch late."""
        if batch.message_count == 0:
            return idle_s
        return max(0.0, min(idle_s, self.max_wait_s - batch.age(now)))

    def room(self, batch: PendingBatch[R]) -> int:
        """How many more messages to ask for in the next poll."""
        return max(1, self.max_rows - batch.row_count)
