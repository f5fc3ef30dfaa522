"""Which partition a keyed event lands on: the Java client's murmur2, as Kafka producers use."""

from __future__ import annotations

from aiokafka.partitioner import murmur2


def partition_for_key(key: bytes, partition_count: int) -> int:
    hashed: int = murmur2(key)
    return (hashed & 0x7FFFFFFF) % partition_count
