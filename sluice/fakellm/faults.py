"""Faults a request can ask for through the ``x-sluice-fault`` header.

Grammar: comma-separated items, e.g. ``stall-after:5:2000,disconnect-after:12``.

- ``429`` / ``429:<s>``: rate limited, with ``Retry-After: <s>`` (default 1).
- ``500``, ``502``, ``503`` (optionally ``:<s>`` for a Retry-After): server errors.
- ``disconnect-after:<n>``: drop the connection after ``n`` content tokens, no ``[DONE]``.
- ``stall-after:<n>:<ms>``: after ``n`` tokens, shift the rest of the schedule by ``ms``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sluice.fakellm.protocol import InvalidRequest

FAULT_HEADER = "x-sluice-fault"

ERROR_STATUSES = frozenset({429, 500, 502, 503})


class ConnectionDropped(Exception):
    """Raised mid-answer to make the server close the socket without finishing."""


@dataclass(frozen=True)
class Fault:
    """What should go wrong with one request; the default is nothing."""

    status: int | None = None
    retry_after_s: int | None = None
    disconnect_after: int | None = None
    stall_after: int | None = None
    stall_ms: int = 0

    def stall_before(self, index: int) -> float:
        """Extra seconds to pause before sending content token ``index``."""
        return self.stall_ms / 1000 if index == self.stall_after else 0.0

    def drops_before(self, index: int) -> bool:
        """Whether the connection is dropped instead of sending content token ``index``."""
        return index == self.disconnect_after


NO_FAULT = Fault()


def parse_fault(header: str | None) -> Fault:
    """Parse the ``x-sluice-fault`` header; ``InvalidRequest`` when it is malformed."""
    fault = NO_FAULT
    if not header:
        return fault
    for item in header.split(","):
        try:
            fault = _apply(fault, item.strip())
        except ValueError:
            raise InvalidRequest(f"Invalid fault {item.strip()!r}.", FAULT_HEADER) from None
    return fault


def _apply(fault: Fault, item: str) -> Fault:
    kind, *args = item.split(":")
    values = [int(a) for a in args]  # ValueError on anything that is not an integer
    if any(v < 0 for v in values):
        raise ValueError(item)
    match kind, values:
        case "disconnect-after", [n]:
            return replace(fault, disconnect_after=n)
        case "stall-after", [n, ms]:
            return replace(fault, stall_after=n, stall_ms=ms)
        case status, ([] | [_]) if status.isdigit() and int(status) in ERROR_STATUSES:
            retry_after = values[0] if values else (1 if int(status) == 429 else None)
            return replace(fault, status=int(status), retry_after_s=retry_after)
    raise ValueError(item)
