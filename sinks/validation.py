"""Checks that turn a decodable but unstorable event into ``InvalidMessage`` before batching."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from sinks.pipeline import InvalidMessage

# DateTime64(3) and timestamptz both hold this range comfortably.
_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC).timestamp()
_LATEST = datetime(2200, 1, 1, tzinfo=UTC).timestamp()


def utc_datetime(epoch_s: float, field: str) -> datetime:
    if not math.isfinite(epoch_s) or not _EARLIEST <= epoch_s < _LATEST:
        raise InvalidMessage(f"{field}: timestamp {epoch_s!r} out of range")
    return datetime.fromtimestamp(epoch_s, tz=UTC)


def bounded_int(value: int, field: str, low: int, high: int) -> int:
    if not low <= value <= high:
        raise InvalidMessage(f"{field}: {value} outside [{low}, {high}]")
    return value


def finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
