"""`sluice doctor` and `sluice test-streaming` against the running stack, and with a part gone."""

from __future__ import annotations

import os
import socket
import subprocess
import sys


def sluice(*args: str, timeout: float = 240, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sluice.cli", *args],
        env={**os.environ, "COLUMNS": "200", **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_doctor_passes_on_a_healthy_stack(api_url: str) -> None:
    done = sluice("doctor")
    assert done.returncode == 0, done.stdout + done.stderr
    for check in ("kafka", "topic jobs.urgent", "postgres migrations", "clickhouse", "llm", "api"):
        assert check in done.stdout
    assert "✗" not in done.stdout


def test_doctor_says_what_to_fix_when_kafka_is_unreachable(api_url: str) -> None:
    done = sluice("doctor", SLUICE_KAFKA_BOOTSTRAP=f"127.0.0.1:{closed_port()}")
    assert done.returncode == 1, done.stdout
    assert "✗" in done.stdout
    assert "SLUICE_KAFKA_BOOTSTRAP" in done.stdout  # the fix, not just the symptom
    assert "no Kafka broker answered" in done.stdout
    assert "checks failed" in done.stdout


def test_test_streaming_passes_on_the_live_stack(api_url: str) -> None:
    done = sluice(
        "test-streaming", "--type", "security_analysis", "--priority", "high", "--monitor"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASS" in done.stdout
    assert "stored response = streamed text" in done.stdout


def test_test_streaming_exits_2_when_the_api_is_unreachable() -> None:
    done = sluice("test-streaming", "--token", "slc_x_y", SLUICE_API_PORT=str(closed_port()))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "could not run" in done.stdout


def test_test_streaming_exits_2_when_the_token_is_refused(api_url: str) -> None:
    done = sluice("test-streaming", "--token", "slc_notatoken_secret")
    assert done.returncode == 2, done.stdout
    assert "401" in done.stdout
