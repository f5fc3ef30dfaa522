"""Readiness checks: each answers one question quickly and never raises."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from enum import Enum
from pathlib import Path

import httpx

PROBE_TIMEOUT_S = 2.0


def tcp_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def http_ok(url: str, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """True when GET url answers 200."""
    try:
        return httpx.get(url, timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def http_answers(url: str, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """True when GET url gets any HTTP response: the server is up, whatever the route says."""
    try:
        httpx.get(url, timeout=timeout)
    except httpx.HTTPError:
        return False
    return True


def log_mentions(log: Path, text: str, head_bytes: int = 2 * 1024 * 1024) -> bool:
    """True when the start of a log (each run starts a fresh one) contains `text`."""
    try:
        with log.open("rb") as f:
            return text.encode() in f.read(head_bytes)
    except OSError:
        return False


def local_host(host: str) -> str:
    """The address to probe a server bound to `host` on this machine."""
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host


class Wait(Enum):
    ready = "ready"
    timed_out = "timed out"
    died = "died"


def wait_until(
    ready: Callable[[], bool],
    timeout: float,
    *,
    alive: Callable[[], bool] = lambda: True,
    interval: float = 0.2,
) -> Wait:
    """Poll `ready` until it holds, the timeout passes or `alive` stops holding.

    Checking `alive` between polls turns a crashed process into an immediate failure
    instead of a long wait for the timeout.
    """
    deadline = time.monotonic() + timeout
    while True:
        if ready():
            return Wait.ready
        if not alive():
            # It may have become ready just before it ended (a one-shot command, say).
            return Wait.ready if ready() else Wait.died
        if time.monotonic() >= deadline:
            return Wait.timed_out
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
        interval = min(interval * 1.5, 1.0)
