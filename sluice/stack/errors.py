"""The one error the stack raises: a step failed, and the message says what to look at."""

from __future__ import annotations

from collections import deque
from pathlib import Path

LOG_TAIL_LINES = 30


class StackError(RuntimeError):
    """A stack step failed; the message is meant for the person at the terminal."""


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of a log file, or a note that it is empty or missing."""
    try:
        with path.open("r", encoding="utf-8", errors="replace") as f:
            tail = deque(f, maxlen=lines)
    except FileNotFoundError:
        return f"(no log at {path})"
    if not tail:
        return f"({path} is empty)"
    return "".join(tail).rstrip("\n")


def with_log_tail(message: str, log: Path, lines: int = LOG_TAIL_LINES) -> str:
    return f"{message}\n--- last lines of {log} ---\n{log_tail(log, lines)}"
