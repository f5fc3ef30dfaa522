"""Liveness, readiness (also with a dependency down), and Prometheus metrics of the api."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sluice.metric_names import MetricName
from sluice.settings import get_settings
from tests.integration.conftest import bearer, feed, submit, tokens_of


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def closed_port() -> int:
    return free_port()  # nothing listens there once the probe socket is closed


@pytest.fixture
def api_with(tmp_path: Path) -> Iterator[object]:
    """Start a separate api process with some settings broken; the shared stack is untouched."""
    started: list[subprocess.Popen[bytes]] = []

    def start(**env: str) -> str:
        port = free_port()
        child_env = {**os.environ, "SLUICE_API_PORT": str(port), **env}
        log = (tmp_path / f"api-{port}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "sluice.cli", "api"],
            env=child_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        started.append(proc)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    return url
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, (tmp_path / f"api-{port}.log").read_text()
            time.sleep(0.2)
        raise AssertionError("the extra api never answered /healthz")

    yield start
    for proc in started:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


async def test_healthz_and_readyz_on_a_healthy_stack(api_url: str) -> None:
    async with httpx.AsyncClient(base_url=api_url, timeout=15) as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        ready = await http.get("/readyz")
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["status"] == "ready"
    assert {c["name"]: c["ok"] for c in body["checks"]} == {
        "kafka": True,
        "postgres": True,
        "clickhouse": True,
    }


def test_readyz_names_postgres_when_it_is_unreachable(api_with: object) -> None:
    url = api_with(DATABASE_URL=f"postgresql://sluice@127.0.0.1:{closed_port()}/sluice")  # type: ignore[operator]
    resp = httpx.get(f"{url}/readyz", timeout=15)
    assert resp.status_code == 503
    error = resp.json()["error"]
    assert error["code"] == "not_ready"
    assert "postgres" in error["message"]
    failed = {c["name"] for c in error["details"] if not c["ok"]}
    assert failed == {"postgres"}
    assert "127.0.0.1" not in resp.text  # says what failed, not where it lives
    assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200  # alive, just not ready


def test_readyz_names_kafka_when_no_broker_answers(api_with: object) -> None:
    url = api_with(SLUICE_KAFKA_BOOTSTRAP=f"127.0.0.1:{closed_port()}")  # type: ignore[operator]
    resp = httpx.get(f"{url}/readyz", timeout=15)
    assert resp.status_code == 503
    failed = {c["name"] for c in resp.json()["error"]["details"] if not c["ok"]}
    assert failed == {"kafka"}


def test_readyz_names_clickhouse_when_its_endpoint_is_down(api_with: object) -> None:
    if not get_settings().clickhouse_is_embedded:
        pytest.skip("embedded ClickHouse only: the sinks query port is what is moved")
    url = api_with(SLUICE_SINKS_QUERY_PORT=str(closed_port()))  # type: ignore[operator]
    resp = httpx.get(f"{url}/readyz", timeout=15)
    assert resp.status_code == 503
    failed = {c["name"] for c in resp.json()["error"]["details"] if not c["ok"]}
    assert failed == {"clickhouse"}


def _samples(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


async def test_metrics_move_when_a_job_runs(api_url: str, alice_token: str) -> None:
    async with httpx.AsyncClient(base_url=api_url, timeout=30, headers=bearer(alice_token)) as c:
        before = _samples((await c.get("/metrics")).text)
        job_id = await submit(c, "metrics, please", job_type="analysis", priority="normal")
        messages = await feed(api_url, job_id, alice_token)
        n_tokens = len(tokens_of(messages))
        deadline = time.monotonic() + 30
        while True:
            resp = await c.get("/metrics")
            after = _samples(resp.text)
            ttft_count = f"{MetricName.ttft_seconds}_count"
            if after.get(ttft_count, 0) > before.get(ttft_count, 0) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
    assert resp.headers["content-type"].startswith("text/plain")
    for name in MetricName:
        assert name.value in resp.text, f"{name.value} missing from /metrics"
    tokens = f"{MetricName.tokens_streamed}_total"
    assert after[tokens] >= before.get(tokens, 0) + n_tokens
    relayed = f"{MetricName.tokens_relayed}_total"
    assert after[relayed] >= before.get(relayed, 0) + n_tokens
    submitted = f'{MetricName.jobs_submitted}_total{{priority="normal"}}'
    assert after[submitted] >= before.get(submitted, 0) + 1
    assert after[f"{MetricName.ttft_seconds}_count"] > before.get(ttft_count, 0)
    completed = f'{MetricName.jobs_finished}_total{{status="completed"}}'
    assert after[completed] > before.get(completed, 0)
    assert after[f'{MetricName.jobs}{{status="completed"}}'] >= 1
    assert after[f"{MetricName.workers_online}"] >= 1
    assert f'{MetricName.queue_lag}{{priority="urgent"}}' in after
    assert after[f'{MetricName.source_up}{{source="kafka"}}'] == 1
    assert after[f'{MetricName.source_up}{{source="postgres"}}'] == 1
