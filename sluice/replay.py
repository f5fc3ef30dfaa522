"""`sluice replay JOB_ID`: a job's token stream again, from the log, with its timing."""

from __future__ import annotations

import json
import sys
import time
from typing import TextIO

from schemas.events import TokenStreamed
from sluice.joblog import JobLog


class ReplayError(Exception):
    pass


def chosen_attempt(log: JobLog, attempt: int | None) -> int:
    """The attempt asked for, else the one whose result stands (the final event's)."""
    available = log.attempts()
    if not available:
        raise ReplayError(f"the log holds no tokens of job {log.job_id}")
    if attempt is None:
        final = log.final
        return final.attempt if final and final.attempt in available else available[-1]
    if attempt not in available:
        raise ReplayError(f"job {log.job_id} has no attempt {attempt}; it has {available}")
    return attempt


def replay(
    tokens: list[TokenStreamed],
    speed: float | None,
    as_json: bool,
    out: TextIO = sys.stdout,
    sleep: object = time.sleep,
) -> float:
    """Write the tokens with their original gaps divided by `speed` (None: no waiting).

    Returns the seconds the replay took.
    """
    started = time.monotonic()
    first_ts = tokens[0].ts if tokens else 0.0
    for previous, token in zip([None, *tokens[:-1]], tokens, strict=True):
        if speed and previous is not None:
            gap = max(0.0, token.ts - previous.ts) / speed
            sleep(gap)  # type: ignore[operator]
        if as_json:
            line = {
                "job_id": token.job_id,
                "attempt": token.attempt,
                "seq": token.seq,
                "text": token.text,
                "ts": token.ts,
                "offset_ms": round((token.ts - first_ts) * 1000, 3),
            }
            out.write(json.dumps(line) + "\n")
        else:
            out.write(token.text)
        out.flush()
    if not as_json:
        out.write("\n")
    return time.monotonic() - started
