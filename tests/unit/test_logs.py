"""Structured logs: JSON when asked, and job_id on every line about a job."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from sluice.jobids import new_job_id
from sluice.logs import JobIdFilter, configure_logging, job_context, json_formatter


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(JobIdFilter())
    handler.setFormatter(json_formatter())
    log = logging.getLogger("test.logs")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    yield log, stream
    log.removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_carry_the_job_id_from_extra_context_or_arguments(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    log, stream = captured
    job_id = new_job_id()
    log.warning("attempt failed", extra={"job_id": job_id})
    with job_context(job_id):
        log.info("streaming")
    log.info("job %s ended at attempt %d", job_id, 1)
    log.info("nothing about a job: %s", "not-a-job-id")
    out = lines(stream)
    assert [o.get("job_id") for o in out] == [job_id, job_id, job_id, None]
    assert out[2]["message"] == f"job {job_id} ended at attempt 1"
    assert {"time", "level", "logger", "message"} <= set(out[0])
    assert out[0]["level"] == "WARNING"


def test_job_context_ends_with_its_block(captured: tuple[logging.Logger, io.StringIO]) -> None:
    log, stream = captured
    with job_context("job-1"):
        pass
    log.info("after")
    assert "job_id" not in lines(stream)[0]


def test_configure_logging_picks_json_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        monkeypatch.setenv("SLUICE_LOG_FORMAT", "json")
        configure_logging()
        logging.getLogger("test.env").info("hello", extra={"job_id": "j-9"})
        record = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
        assert record["message"] == "hello" and record["job_id"] == "j-9"
        monkeypatch.setenv("SLUICE_LOG_FORMAT", "text")
        configure_logging()
        logging.getLogger("test.env").info("plain", extra={"job_id": "j-9"})
        assert capsys.readouterr().err.strip().endswith("plain job_id=j-9")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
