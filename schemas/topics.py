"""Every topic sluice uses, declared once, with its partitions, retention and cleanup."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Priority(StrEnum):
    urgent = "urgent"
    high = "high"
    normal = "normal"
    low = "low"


# Highest first: the order a scheduler should prefer.
PRIORITIES_HIGHEST_FIRST: tuple[Priority, ...] = (
    Priority.urgent,
    Priority.high,
    Priority.normal,
    Priority.low,
)

TOKENS = "tokens"
JOB_EVENTS = "job-events"
CONTROL = "jobs.control"
DLQ = "jobs.dlq"

DAY_MS = 24 * 3600 * 1000


def priority_topic(priority: Priority | str) -> str:
    return f"jobs.{Priority(priority).value}"


PRIORITY_TOPICS: tuple[str, ...] = tuple(priority_topic(p) for p in PRIORITIES_HIGHEST_FIRST)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    retention_ms: int
    cleanup_policy: str = "delete"
    compression: str = "zstd"
    extra: dict[str, str] = field(default_factory=dict)

    def config(self) -> dict[str, str]:
        return {
            "cleanup.policy": self.cleanup_policy,
            "retention.ms": str(self.retention_ms),
            "compression.type": self.compression,
            **self.extra,
        }


def topic_specs(
    *, tokens_partitions: int = 6, jobs_partitions: int = 6, tokens_retention_ms: int = 7 * DAY_MS
) -> list[TopicSpec]:
    """The topics of DESIGN.md. Priority topics keep jobs long enough to survive an outage."""
    jobs = [TopicSpec(t, jobs_partitions, 7 * DAY_MS) for t in PRIORITY_TOPICS]
    return [
        *jobs,
        TopicSpec(CONTROL, 1, 7 * DAY_MS),
        TopicSpec(TOKENS, tokens_partitions, tokens_retention_ms),
        TopicSpec(JOB_EVENTS, tokens_partitions, 30 * DAY_MS),
        TopicSpec(DLQ, 1, 30 * DAY_MS),
    ]
