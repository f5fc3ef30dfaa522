"""Messages a sink cannot store go to ``jobs.dlq`` with the reason and the original payload."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from schemas.events import DeadLetter
from schemas.topics import DLQ
from sinks.pipeline import Origin, Rejected

log = logging.getLogger(__name__)


def dead_letter(origin: Origin, reason: str) -> DeadLetter:
    """The DLQ record for one message; bytes that are not UTF-8 are replaced, not dropped."""
    return DeadLetter(
        job_id=origin.key.decode("utf-8", "replace") if origin.key else None,
        source_topic=origin.topic,
        partition=origin.partition,
        offset=origin.offset,
        reason=reason,
        payload=origin.value.decode("utf-8", "replace") if origin.value is not None else "",
    )


class DeadLetterQueue:
    """Produces dead letters and waits until the broker has them all (acks=all)."""

    def __init__(self, producer: Any, topic: str = DLQ) -> None:
        self._producer = producer
        self._topic = topic

    async def send(self, rejected: Sequence[Rejected]) -> None:
        deliveries = []
        for item in rejected:
            letter = dead_letter(item.origin, item.reason)
            log.warning(
                "dead-lettering %s[%d]@%d: %s",
                item.origin.topic,
                item.origin.partition,
                item.origin.offset,
                item.reason,
            )
            deliveries.append(
                await self._producer.send(self._topic, letter.to_bytes(), key=item.origin.key)
            )
        await asyncio.gather(*deliveries)
