"""The Kafka clients of the sinks: manual-commit consumers and the dead-letter producer."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError, KafkaTimeoutError

POSTGRES_GROUP = "sluice-sink-postgres"
CLICKHOUSE_GROUP = "sluice-sink-clickhouse"


def sink_consumer(bootstrap: str, group_id: str, *topics: str) -> AIOKafkaConsumer:
    """Offsets are committed by the sink itself, only after a durable write."""
    return AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=group_id,
        client_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )


def dead_letter_producer(bootstrap: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id="sluice-sinks-dlq",
        acks="all",
        enable_idempotence=True,
    )


def is_transient_kafka_error(exc: BaseException) -> bool:
    """Broker unreachable or busy; a message too large or a closed producer is not transient."""
    if isinstance(exc, KafkaTimeoutError):
        return True
    return isinstance(exc, KafkaError) and bool(exc.retriable)
