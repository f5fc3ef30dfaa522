"""The sink loop against an in-memory consumer: write, dead-letter, then commit — in that order."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from aiokafka import TopicPartition

from schemas.events import DeadLetter
from sinks.batching import FlushPolicy
from sinks.dead_letters import DeadLetterQueue
from sinks.pipeline import Accepted, InvalidMessage, Origin, Rejected
from sinks.retry import Backoff
from sinks.runner import SinkRunner

TOPIC = "tokens"


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def record(offset: int, value: bytes, partition: int = 0) -> Record:
    return Record(TOPIC, partition, offset, b"job-1", value)


class MemoryConsumer:
    """Enough of AIOKafkaConsumer: each getmany returns the next prepared poll; when they
    run out, the sink is asked to stop."""

    def __init__(self, polls: list[list[Record]], stopping: asyncio.Event, log: list[str]) -> None:
        self._polls = list(polls)
        self._stopping = stopping
        self._log = log
        self.committed: dict[TopicPartition, int] = {}
        self.assigned = {TopicPartition(TOPIC, p) for p in range(3)}

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        self._log.append("stop")

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[Any, list[Record]]:
        if not self._polls:
            self._stopping.set()
            return {}
        batch = self._polls.pop(0)
        by_partition: dict[Any, list[Record]] = {}
        for r in batch:
            by_partition.setdefault(TopicPartition(r.topic, r.partition), []).append(r)
        return by_partition

    def assignment(self) -> set[TopicPartition]:
        return self.assigned

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self._log.append(f"commit {sorted((tp.partition, o) for tp, o in offsets.items())}")
        self.committed.update(offsets)


class Outage(Exception):
    pass


class MemoryWriter:
    def __init__(self, log: list[str], failures: int = 0, refuse: str | None = None) -> None:
        self.batches: list[list[str]] = []
        self._log = log
        self._failures = failures
        self._refuse = refuse

    async def write(self, rows: Sequence[Accepted[str]]) -> list[Rejected]:
        if self._failures:
            self._failures -= 1
            self._log.append("write failed")
            raise Outage("db down")
        self.batches.append([a.row for a in rows])
        self._log.append(f"write {len(rows)}")
        return [Rejected(a.origin, "refused by store") for a in rows if a.row == self._refuse]

    def is_transient(self, exc: BaseException) -> bool:
        return isinstance(exc, Outage)


class MemoryProducer:
    def __init__(self, log: list[str]) -> None:
        self.letters: list[DeadLetter] = []
        self._log = log

    async def send(self, topic: str, value: bytes, key: bytes | None = None) -> Any:
        self.letters.append(DeadLetter.model_validate_json(value))
        self._log.append("dlq")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def to_row(origin: Origin) -> str | None:
    assert origin.value is not None
    if origin.value == b"garbage":
        raise InvalidMessage("undecodable")
    if origin.value == b"skip":
        return None
    return origin.value.decode()


@dataclass
class Harness:
    runner: SinkRunner[str]
    consumer: MemoryConsumer
    writer: MemoryWriter
    producer: MemoryProducer
    log: list[str]
    stopping: asyncio.Event

    async def run(self) -> None:
        await asyncio.wait_for(self.runner.run(self.stopping), timeout=5)


def harness(
    polls: list[list[Record]],
    policy: FlushPolicy = FlushPolicy(max_rows=100, max_wait_s=0.0),
    **writer_options: Any,
) -> Harness:
    log: list[str] = []
    stopping = asyncio.Event()
    consumer = MemoryConsumer(polls, stopping, log)
    writer = MemoryWriter(log, **writer_options)
    producer = MemoryProducer(log)
    runner = SinkRunner(
        "test sink",
        consumer,
        to_row,
        writer,
        policy,
        DeadLetterQueue(producer),
        idle_poll_s=0.0,
        backoff=Backoff(initial_s=0.001, max_s=0.001),
    )
    return Harness(runner, consumer, writer, producer, log, stopping)


async def test_offsets_are_committed_after_the_write() -> None:
    h = harness([[record(0, b"a"), record(1, b"b"), record(5, b"c", partition=2)]])
    await h.run()
    assert h.writer.batches == [["a", "b", "c"]]
    assert h.log == ["write 3", "commit [(0, 2), (2, 6)]", "stop"]
    assert h.runner.stats.rows_written == 3


async def test_garbage_goes_to_the_dlq_and_the_sink_carries_on() -> None:
    h = harness([[record(0, b"a"), record(1, b"garbage"), record(2, b"skip")], [record(3, b"d")]])
    await h.run()
    assert h.writer.batches == [["a"], ["d"]]
    [letter] = h.producer.letters
    assert (letter.offset, letter.reason, letter.payload) == (
        1,
        "test sink: undecodable",
        "garbage",
    )
    assert h.log == ["write 1", "dlq", "commit [(0, 3)]", "write 1", "commit [(0, 4)]", "stop"]


async def test_rows_the_store_refuses_are_dead_lettered_before_the_commit() -> None:
    h = harness([[record(0, b"a"), record(1, b"poison")]], refuse="poison")
    await h.run()
    assert [letter.reason for letter in h.producer.letters] == ["refused by store"]
    assert h.log == ["write 2", "dlq", "commit [(0, 2)]", "stop"]


async def test_an_outage_is_retried_and_nothing_is_committed_until_the_write_succeeds() -> None:
    h = harness([[record(0, b"a")]], failures=3)
    await h.run()
    assert h.log == ["write failed"] * 3 + ["write 1", "commit [(0, 1)]", "stop"]


async def test_a_stop_during_an_outage_commits_nothing() -> None:
    h = harness([[record(0, b"a")]], failures=10_000)
    h.stopping.set()
    await h.runner.poll()
    await h.run()
    assert h.consumer.committed == {}
    assert h.log[-1] == "stop"


async def test_an_error_that_is_not_transient_stops_the_sink_without_committing() -> None:
    h = harness([[record(0, b"a")]])

    async def broken(rows: Sequence[Accepted[str]]) -> list[Rejected]:
        raise RuntimeError("schema mismatch")

    h.writer.write = broken  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        await h.run()
    assert h.consumer.committed == {}
    assert h.log == ["stop"]


async def test_buffered_sinks_write_once_enough_rows_arrived() -> None:
    policy = FlushPolicy(max_rows=3, max_wait_s=3600)
    h = harness([[record(0, b"a"), record(1, b"b")], [record(2, b"c")], [record(3, b"d")]], policy)
    await h.run()
    assert h.writer.batches == [["a", "b", "c"], ["d"]]  # the last one at shutdown


async def test_offsets_of_partitions_no_longer_assigned_are_not_committed() -> None:
    h = harness([[record(0, b"a", partition=0), record(0, b"b", partition=1)]])
    h.consumer.assigned = {TopicPartition(TOPIC, 0)}
    await h.run()
    assert h.consumer.committed == {TopicPartition(TOPIC, 0): 1}
