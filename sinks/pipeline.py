"""The contract every sink stage shares: decode → validate → batch → write → commit.

A message is turned into a row (or nothing) by a ``Transform``; what cannot be turned
into a row raises ``InvalidMessage`` and goes to the DLQ. A ``RowWriter`` writes a batch
durably; rows the store itself refuses come back as ``Rejected`` and go to the DLQ too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a message came from, kept so it can be committed or dead-lettered."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None

    @classmethod
    def of(cls, record: Any) -> Origin:
        """From an aiokafka ``ConsumerRecord``."""
        return cls(record.topic, record.partition, record.offset, record.key, record.value)


class InvalidMessage(Exception):
    """This message can never become a row: dead-letter it and carry on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Accepted(Generic[R]):
    row: R
    origin: Origin


@dataclass(frozen=True, slots=True)
class Rejected:
    origin: Origin
    reason: str


Transform = Callable[[Origin], R | None]
"""Decode and validate one message: a row, ``None`` for nothing to write, or ``InvalidMessage``."""


class RowWriter(Protocol[R]):
    async def write(self, rows: Sequence[Accepted[R]]) -> list[Rejected]:
        """Write all rows durably, or raise. Returns the rows the store refused for good."""
        ...

    def is_transient(self, exc: BaseException) -> bool:
        """Whether retrying the same batch later may succeed (outage, timeout, deadlock)."""
        ...
