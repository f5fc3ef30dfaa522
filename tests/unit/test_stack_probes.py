"""Readiness helpers: waiting with a deadline, and reading a fresh log for a line."""

from __future__ import annotations

import itertools
from pathlib import Path

from sluice.stack.probes import Wait, local_host, log_mentions, tcp_open, wait_until


def test_wait_until_ready_after_a_few_polls() -> None:
    polls = itertools.count()
    assert wait_until(lambda: next(polls) >= 3, timeout=5, interval=0.01) is Wait.ready


def test_wait_until_times_out() -> None:
    assert wait_until(lambda: False, timeout=0.05, interval=0.01) is Wait.timed_out


def test_wait_until_stops_at_once_when_the_process_dies() -> None:
    assert wait_until(lambda: False, timeout=60, alive=lambda: False) is Wait.died


def test_log_mentions_reads_the_log(tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    assert not log_mentions(log, "[^Worker]: Ready")  # no log yet
    log.write_text("[INFO] [^Worker]: Starting...\n")
    assert not log_mentions(log, "[^Worker]: Ready")
    log.write_text("[INFO] [^Worker]: Starting...\n[INFO] [^Worker]: Ready\n")
    assert log_mentions(log, "[^Worker]: Ready")


def test_wildcard_bind_addresses_are_probed_on_localhost() -> None:
    assert local_host("0.0.0.0") == "127.0.0.1"
    assert local_host("10.0.0.5") == "10.0.0.5"


def test_tcp_open_is_false_for_a_closed_port() -> None:
    assert not tcp_open("127.0.0.1", 1, timeout=0.2)
