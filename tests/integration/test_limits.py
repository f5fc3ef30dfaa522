"""Per-user limits hold across api replicas: two api processes share one budget."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import bearer, mint_token, spawn_api, user_name

START = "/api/openai-streaming/start"


@pytest.fixture(scope="module")
def two_replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """Two extra api processes on the same Kafka and Postgres, with small limits."""
    logs = tmp_path_factory.mktemp("replicas")
    limits = {"SLUICE_SUBMISSIONS_PER_MINUTE": "4", "SLUICE_MAX_ACTIVE_JOBS_PER_USER": "2"}
    replicas = [spawn_api(logs, **limits) for _ in range(2)]
    try:
        yield [r.url for r in replicas]
    finally:
        for replica in replicas:
            replica.stop()


def post(url: str, token: str, **fields: object) -> httpx.Response:
    body = {"prompt": "Limit test.", **fields}
    return httpx.post(f"{url}{START}", json=body, headers=bearer(token), timeout=30)


def test_active_jobs_limit_is_shared_between_replicas(two_replicas: list[str]) -> None:
    token = mint_token(user_name("busy"))
    slow = {"config": {"max_tokens": 400}, "job_type": "analysis"}
    first = post(two_replicas[0], token, **slow)
    second = post(two_replicas[1], token, **slow)
    third = post(two_replicas[0], token, **slow)
    assert [first.status_code, second.status_code] == [202, 202]
    assert third.status_code == 429
    error = third.json()["error"]
    assert error["code"] == "rate_limited"
    assert error["details"]["limit"] == "active_jobs" and error["details"]["allowed"] == 2
    assert int(third.headers["retry-after"]) >= 1


def test_submissions_per_minute_are_shared_between_replicas(two_replicas: list[str]) -> None:
    token = mint_token(user_name("chatty"))
    short = {"config": {"max_tokens": 3}}
    accepted, refusal = 0, None
    for i in range(40):
        resp = post(two_replicas[i % 2], token, **short)
        if resp.status_code == 202:
            accepted += 1
            continue
        assert resp.status_code == 429, resp.text
        if resp.json()["error"]["details"]["limit"] == "submissions_per_minute":
            refusal = resp
            break
        time.sleep(0.5)  # two tiny jobs in flight: wait for them, this test is about the minute
    assert accepted == 4
    assert refusal is not None
    assert refusal.json()["error"]["details"]["allowed"] == 4
    assert 1 <= int(refusal.headers["retry-after"]) <= 60


def test_database_down_answers_503_and_accepts_nothing(tmp_path: Path) -> None:
    """An api whose Postgres is unreachable refuses clearly instead of failing inside."""
    replica = spawn_api(tmp_path, DATABASE_URL="postgresql://x@127.0.0.1:9/x")
    try:
        resp = post(replica.url, mint_token(user_name("nodb")))
        assert resp.status_code == 503
        assert resp.json()["error"]["code"] == "database_unavailable"
        assert resp.headers["retry-after"]
        assert "127.0.0.1" not in resp.text and "psycopg" not in resp.text
    finally:
        replica.stop()
