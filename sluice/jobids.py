"""Job ids are UUIDv7: sortable by submission time, and the time is in the id.

Readers of the token log use that time to seek straight to a job's first token
instead of scanning the topic. (Python 3.11's uuid module has no uuid7.)
"""

from __future__ import annotations

import os
import time
import uuid


def new_job_id(now_ms: int | None = None) -> str:
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version 7
    value |= ((rand >> 62) & 0xFFF) << 64  # 12 random bits
    value |= 0b10 << 62  # RFC 4122 variant
    value |= rand & ((1 << 62) - 1)
    return str(uuid.UUID(int=value))


def is_job_id(text: str) -> bool:
    try:
        parsed = uuid.UUID(text)
    except ValueError:
        return False
    return parsed.version == 7 and str(parsed) == text


def job_id_time_ms(job_id: str) -> int:
    """Milliseconds since the epoch at which the job was submitted."""
    return uuid.UUID(job_id).int >> 80
