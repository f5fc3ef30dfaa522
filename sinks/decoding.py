"""The decode step: bytes from a topic to a typed event, or ``InvalidMessage`` for the DLQ."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from schemas.events import EventDecodeError
from sinks.pipeline import InvalidMessage, Origin

E = TypeVar("E")


def decode(origin: Origin, decoder: Callable[[bytes], E]) -> E:
    if not origin.value:
        raise InvalidMessage(f"empty message on {origin.topic}")
    try:
        return decoder(origin.value)
    except EventDecodeError as exc:
        raise InvalidMessage(f"undecodable message on {origin.topic}: {exc}") from None
