"""When each token goes out: time-to-first-token, then a steady tokens/sec."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from sluice.fakellm.faults import ConnectionDropped, Fault


@dataclass(frozen=True)
class Pace:
    """Token timing; ``tokens_per_second <= 0`` sends tokens as fast as possible."""

    tokens_per_second: float
    ttft_s: float

    def due(self, index: int) -> float:
        """Seconds after the request arrived at which content token ``index`` is due."""
        if self.tokens_per_second <= 0:
            return self.ttft_s
        return self.ttft_s + index / self.tokens_per_second


async def paced_tokens(
    tokens: Sequence[str], pace: Pace, fault: Fault, started_at: float
) -> AsyncIterator[str]:
    """Yield ``tokens`` on an absolute schedule from ``started_at`` (loop time).

    Sleeping until each token's due time, rather than a fixed interval per token,
    keeps scheduling jitter from accumulating over a long answer. Raises
    ``ConnectionDropped`` where the fault says the connection goes away.
    """
    loop = asyncio.get_running_loop()
    stalled = 0.0  # a stall pushes the rest of the schedule back
    for index, token in enumerate(tokens):
        if fault.drops_before(index):
            raise ConnectionDropped
        stalled += fault.stall_before(index)
        await asyncio.sleep(max(0.0, started_at + pace.due(index) + stalled - loop.time()))
        yield token
    if fault.disconnect_after is not None:  # asked to drop later than the answer's end
        raise ConnectionDropped
