"""When a sink writes: enough rows, or the oldest message waited long enough."""

from __future__ import annotations

from sinks.batching import FlushPolicy, PendingBatch
from sinks.pipeline import Origin, Rejected


def origin(offset: int, partition: int = 0, topic: str = "tokens") -> Origin:
    return Origin(topic, partition, offset, b"k", b"v")


def test_an_empty_batch_is_never_due() -> None:
    policy = FlushPolicy(max_rows=10, max_wait_s=0.5)
    assert not policy.due(PendingBatch[str](), now=1_000.0)


def test_due_on_row_count() -> None:
    policy = FlushPolicy(max_rows=2, max_wait_s=60)
    batch = PendingBatch[str]()
    batch.add(origin(0), "a", now=0.0)
    assert not policy.due(batch, now=0.1)
    batch.add(origin(1), "b", now=0.1)
    assert policy.due(batch, now=0.1)


def test_due_on_age_of_the_oldest_message() -> None:
    policy = FlushPolicy(max_rows=1000, max_wait_s=0.5)
    batch = PendingBatch[str]()
    batch.add(origin(0), "a", now=10.0)
    batch.add(origin(1), "b", now=10.4)
    assert not policy.due(batch, now=10.49)
    assert policy.due(batch, now=10.5)


def test_messages_without_rows_still_get_committed() -> None:
    """Rejects and skipped events hold offsets that must move on."""
    policy = FlushPolicy(max_rows=1000, max_wait_s=0.5)
    batch = PendingBatch[str]()
    batch.add(origin(0), None, now=0.0)
    batch.add(origin(1), Rejected(origin(1), "bad"), now=0.0)
    assert batch.row_count == 0 and batch.message_count == 2
    assert policy.due(batch, now=0.5)
    assert batch.next_offsets == {("tokens", 0): 2}


def test_zero_wait_writes_after_every_poll_that_brought_anything() -> None:
    policy = FlushPolicy(max_rows=500, max_wait_s=0.0)
    batch = PendingBatch[str]()
    assert not policy.due(batch, now=0.0)
    batch.add(origin(0), "a", now=0.0)
    assert policy.due(batch, now=0.0)


def test_next_offsets_per_partition_never_go_back() -> None:
    batch = PendingBatch[str]()
    batch.add(origin(7, partition=1), "a", now=0.0)
    batch.add(origin(3, partition=2), "b", now=0.0)
    batch.add(origin(5, partition=1), "c", now=0.0)  # a re-read after a rebalance
    assert batch.next_offsets == {("tokens", 1): 8, ("tokens", 2): 4}


def test_poll_waits_no_longer_than_the_batch_can_wait() -> None:
    policy = FlushPolicy(max_rows=100, max_wait_s=0.5)
    batch = PendingBatch[str]()
    assert policy.poll_timeout_s(batch, now=0.0, idle_s=1.0) == 1.0
    batch.add(origin(0), "a", now=0.0)
    assert policy.poll_timeout_s(batch, now=0.2, idle_s=1.0) == 0.3
    assert policy.poll_timeout_s(batch, now=0.9, idle_s=1.0) == 0.0
    assert policy.room(batch) == 99
