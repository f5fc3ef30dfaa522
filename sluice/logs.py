"""Logging for every sluice process: text by default, JSON with ``SLUICE_LOG_FORMAT=json``.

Every line about a job carries its ``job_id``: taken from ``extra={"job_id": ...}``, else
from ``job_context(job_id)`` (a context variable, so it follows a task), else from a job id
among the message's arguments (job ids are UUIDv7 strings; existing ``log.info("job %s ...",
job_id)`` calls then need no change).
"""

from __future__ import annotations

import logging
import logging.config
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.json import JsonFormatter

LOG_FORMAT_ENV = "SLUICE_LOG_FORMAT"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_current_job: ContextVar[str | None] = ContextVar("sluice_job_id", default=None)
_JOB_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


@contextmanager
def job_context(job_id: str) -> Iterator[None]:
    """Every log line inside the block is about ``job_id``."""
    token = _current_job.set(job_id)
    try:
        yield
    finally:
        _current_job.reset(token)


def _job_id_in_args(args: object) -> str | None:
    values = args.values() if isinstance(args, dict) else args if isinstance(args, tuple) else ()
    for value in values:
        if isinstance(value, str) and _JOB_ID.match(value):
            return value
    return None


class JobIdFilter(logging.Filter):
    """Puts ``job_id`` on a record about a job; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "job_id", None) is None:
            job_id = _current_job.get() or _job_id_in_args(record.args)
            if job_id is not None:
                record.job_id = job_id
        return True


class TextFormatter(logging.Formatter):
    """The plain format, with `job_id=...` at the end of a line about a job."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        job_id = getattr(record, "job_id", None)
        return f"{line} job_id={job_id}" if job_id else line


def json_formatter() -> logging.Formatter:
    return JsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
    )


def make_formatter(fmt: str = "text") -> logging.Formatter:
    return json_formatter() if fmt == "json" else TextFormatter(TEXT_FORMAT)


def logging_config(level: int | str = logging.INFO, fmt: str | None = None) -> dict[str, Any]:
    """A ``dictConfig`` for the root logger: one handler on stderr, ``fmt`` "json" or "text"
    (default: ``SLUICE_LOG_FORMAT``). Faust's worker takes it as its ``logging_config``."""
    chosen = (fmt or os.environ.get(LOG_FORMAT_ENV) or "text").strip().lower()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"job_id": {"()": JobIdFilter}},
        "formatters": {"sluice": {"()": make_formatter, "fmt": chosen}},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "filters": ["job_id"],
                "formatter": "sluice",
            }
        },
        "root": {"level": level, "handlers": ["default"]},
    }


def configure_logging(level: int | str = logging.INFO, fmt: str | None = None) -> None:
    """Replace the root logger's handlers with ``logging_config(level, fmt)``'s."""
    logging.config.dictConfig(logging_config(level, fmt))
