"""`sluice replay` reproduces a finished job's stream: its text exactly, its rhythm closely."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time

import httpx

from sluice.settings import get_settings
from tests.integration.conftest import bearer, finished_job_feed, tokens_of


def test_replay_reproduces_text_and_gaps(alice_token: str) -> None:
    job_id, messages = finished_job_feed(alice_token, "Replay this stream, please.")
    live = tokens_of(messages)
    text = "".join(t["token"] for t in live)

    plain = subprocess.run(
        [sys.executable, "-m", "sluice.cli", "replay", job_id, "--speed", "max"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert plain.stdout.rstrip("\n") == text

    proc = subprocess.Popen(
        [sys.executable, "-m", "sluice.cli", "replay", job_id, "--speed", "1", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    replayed, arrived = [], []
    for line in proc.stdout:
        arrived.append(time.monotonic())
        replayed.append(json.loads(line))
    proc.wait(timeout=60)
    assert "".join(r["text"] for r in replayed) == text
    assert [r["seq"] for r in replayed] == [t["seq"] for t in live]

    original = [b["ts"] - a["ts"] for a, b in itertools.pairwise(replayed)]
    observed = [b - a for a, b in itertools.pairwise(arrived)]
    span, took = sum(original), sum(observed)
    assert abs(took - span) <= 0.1 * span, (took, span)
    mean_error = sum(abs(o - r) for o, r in zip(observed, original, strict=True)) / len(original)
    assert mean_error <= 0.1 * (span / len(original)) + 0.002, mean_error


def test_replay_of_an_unknown_job_fails_clearly() -> None:
    missing = "01a00000-0000-7000-8000-000000000001"
    result = subprocess.run(
        [sys.executable, "-m", "sluice.cli", "replay", missing, "--speed", "max"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "no tokens" in result.stderr


def test_the_api_serves_a_replay_as_server_sent_events(alice_token: str, bob_token: str) -> None:
    job_id, messages = finished_job_feed(alice_token, "Replay me over HTTP.")
    text = "".join(t["token"] for t in tokens_of(messages))
    url = f"{get_settings().api_url}/api/openai-streaming/{job_id}/replay?speed=50"
    events = []
    with httpx.stream("GET", url, headers=bearer(alice_token), timeout=60) as resp:
        assert resp.status_code == 200
        name = ""
        for line in resp.iter_lines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((name, json.loads(line.removeprefix("data: "))))
    assert events[-1][0] == "replay.completed"
    assert "".join(d["token"] for n, d in events if n == "token.replayed") == text
    theirs = httpx.get(url, headers=bearer(bob_token), timeout=30)
    assert theirs.status_code == 404
