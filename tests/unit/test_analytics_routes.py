"""GET /api/openai-streaming/analytics and POST /api/analytics/sql, on synthetic jobs.

The api reaches the chdb store the way it does in embedded mode: through the sinks
process's query endpoint, here served from the test process.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.auth import Principal
from api.deps import current_principal
from api.errors import install_error_handlers
from api.routes import analytics
from sluice.settings import get_settings
from tests.unit.analytics_jobs import (
    SyntheticJob,
    analytics_store,
    origins,
    query_endpoint,
    synthetic_jobs,
    write_through_sink,
)

JOBS = synthetic_jobs()
ALICE, BOB, ADMIN = Principal("alice"), Principal("bob"), Principal("root", is_admin=True)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Client, Client]]:
    with analytics_store(str(tmp_path_factory.mktemp("routes") / "ch")) as clients:
        yield clients


@pytest.fixture(scope="module")
async def endpoint_port(store: tuple[Client, Client]) -> AsyncIterator[int]:
    writer, reader = store
    for job in JOBS:
        await write_through_sink(writer, origins(job))
    with query_endpoint(reader) as port:
        yield port


@pytest.fixture
def as_user(endpoint_port: int, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``as_user(principal)``: an HTTP client of the analytics routes, signed in as them."""
    monkeypatch.setenv("SLUICE_SINKS_QUERY_PORT", str(endpoint_port))
    monkeypatch.setenv("SLUICE_CLICKHOUSE_URL", "chdb:///opened/by/the/sinks/process")
    get_settings.cache_clear()
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(analytics.router)

    def client(principal: Principal) -> TestClient:
        app.dependency_overrides[current_principal] = lambda: principal
        return TestClient(app)

    yield client
    get_settings.cache_clear()


def figures(http: TestClient, **params: str) -> dict[str, Any]:
    response = http.get("/api/openai-streaming/analytics", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    data: dict[str, Any] = body["data"]
    return data


def quantiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def at(level: float) -> float:
        position = (len(ordered) - 1) * level
        low = int(position)
        high = min(low + 1, len(ordered) - 1)
        return ordered[low] + (ordered[high] - ordered[low]) * (position - low)

    return {"p50": at(0.5), "p95": at(0.95), "p99": at(0.99)}


def expected_group(jobs: list[SyntheticJob]) -> dict[str, Any]:
    completed = sum(j.status == "completed" for j in jobs)
    failed = sum(j.status == "failed" for j in jobs)
    counted = [j for j in jobs if j.usage is None]
    usages = [j.final_usage() for j in jobs]
    return {
        "jobs": len(jobs),
        "completed": completed,
        "failed": failed,
        "cancelled": sum(j.status == "cancelled" for j in jobs),
        "success_rate": completed / (completed + failed) if completed + failed else None,
        "attempts": {
            "total": sum(j.attempt for j in jobs),
            "mean": sum(j.attempt for j in jobs) / len(jobs),
            "max": max(j.attempt for j in jobs),
            "retried_jobs": sum(j.attempt > 1 for j in jobs),
        },
        "queue_wait_ms": quantiles([j.queue_wait_ms for j in jobs]),
        "ttft_ms": quantiles([j.ttft_ms for j in jobs]),
        "token_gap_ms": quantiles([g for j in jobs for g in j.gaps_ms]),
        "duration_ms": quantiles([j.duration_ms for j in jobs]),
        "tokens_per_second": quantiles([j.tokens_per_second for j in jobs]),
        "tokens": {
            "prompt": sum(u.prompt_tokens for u in usages),
            "completion": sum(u.completion_tokens for u in usages),
            "total": sum(u.prompt_tokens + u.completion_tokens for u in usages),
        },
        "cost": {
            "total_usd": sum(j.cost_usd for j in jobs),
            "counted_usd": sum(j.cost_usd for j in counted),
            "counted_jobs": len(counted),
        },
        "error_types": {j.error_code: 1 for j in jobs if j.error_code},
    }


def assert_same(actual: Any, expected: Any, where: str = "group") -> None:
    """Equal, with floats equal to 1e-9 (relative) since percentiles interpolate."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and actual.keys() == expected.keys(), where
        for key, value in expected.items():
            assert_same(actual[key], value, f"{where}.{key}")
    elif isinstance(expected, float):
        assert actual == pytest.approx(expected, rel=1e-9, abs=1e-12), where
    else:
        assert actual == expected, where


def test_an_admin_sees_every_figure_of_every_job(as_user: Any) -> None:
    data = figures(as_user(ADMIN), window="24h")
    assert data["scope"] == "all" and data["group_by"] == []
    [group] = data["groups"]
    assert group["key"] == {}
    assert_same(group, {"key": {}, **expected_group(JOBS)})


def test_a_user_sees_only_their_own_jobs(as_user: Any) -> None:
    data = figures(as_user(ALICE), window="7d", group_by="user")
    assert data["scope"] == "own"
    [group] = data["groups"]
    alices = [j for j in JOBS if j.user_id == "alice"]
    assert_same(group, {"key": {"user": "alice"}, **expected_group(alices)})


def test_a_cancelled_stream_counts_in_its_owners_cost(as_user: Any) -> None:
    [group] = figures(as_user(BOB), window="24h")["groups"]
    [cancelled] = [j for j in JOBS if j.status == "cancelled"]
    assert group["cancelled"] == 1
    assert group["cost"]["counted_jobs"] == 1
    assert group["cost"]["counted_usd"] == pytest.approx(cancelled.cost_usd, abs=1e-12)
    assert group["success_rate"] == 1.0  # cancelled by the user: not a failure


def test_figures_grouped_by_model_and_hour(as_user: Any) -> None:
    data = figures(as_user(ADMIN), window="24h", group_by="model,hour")
    keys = [g["key"]["model"] for g in data["groups"]]
    assert keys == ["gpt-4o", "gpt-4o-mini"]
    assert len({g["key"]["hour"] for g in data["groups"]}) == 1
    for group in data["groups"]:
        same_model = [j for j in JOBS if j.model == group["key"]["model"]]
        assert_same(group, {"key": group["key"], **expected_group(same_model)})


def test_a_window_that_ends_before_the_jobs_has_no_groups(as_user: Any) -> None:
    data = figures(as_user(ADMIN), window="1m", group_by="priority")
    assert data["groups"] == [] and data["truncated"] is False


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"window": "yesterday"}, "window"),
        ({"window": "0h"}, "window"),
        ({"window": "400d"}, "window"),
        ({"group_by": "colour"}, "group_by"),
        ({"group_by": "hour,day"}, "group_by"),
        ({"group_by": "model,model"}, "group_by"),
    ],
)
def test_bad_parameters_are_a_validation_error(
    as_user: Any, params: dict[str, str], field: str
) -> None:
    response = as_user(ALICE).get("/api/openai-streaming/analytics", params=params)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"][0]["field"] == field


def test_sql_for_admins(as_user: Any) -> None:
    response = as_user(ADMIN).post(
        "/api/analytics/sql",
        json={"sql": "SELECT user_id, count() AS jobs FROM jobs GROUP BY user_id ORDER BY user_id"},
    )
    assert response.status_code == 200
    assert response.json()["data"] == {
        "columns": ["user_id", "jobs"],
        "rows": [["alice", 3], ["bob", 2]],
        "row_count": 2,
        "truncated": False,
    }


def test_sql_rows_are_capped(as_user: Any) -> None:
    response = as_user(ADMIN).post(
        "/api/analytics/sql", json={"sql": "SELECT number FROM numbers(100)", "max_rows": 10}
    )
    data = response.json()["data"]
    assert data["row_count"] == 10 and data["truncated"] is True


def test_sql_is_for_admins_only(as_user: Any) -> None:
    response = as_user(ALICE).post("/api/analytics/sql", json={"sql": "SELECT 1"})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


@pytest.mark.parametrize(
    ("sql", "status", "code"),
    [
        ("INSERT INTO job_metrics (job_id) VALUES ('x')", 403, "read_only"),
        ("DROP TABLE jobs", 403, "read_only"),
        ("ALTER TABLE job_metrics DELETE WHERE 1", 403, "read_only"),
        ("SELECT * FROM system.users", 403, "forbidden_table"),
        ("SHOW GRANTS", 403, "forbidden_table"),
        ("SELECT 1 SETTINGS readonly = 0", 403, "settings_change"),
        ("SELECT * FROM jobs WHERE", 400, "query_failed"),
        ("SELECT no_such_column FROM jobs", 400, "query_failed"),
    ],
)
def test_sql_refusals_and_bad_sql_have_stable_codes(
    as_user: Any, sql: str, status: int, code: str
) -> None:
    response = as_user(ADMIN).post("/api/analytics/sql", json={"sql": sql})
    assert response.status_code == status
    body = response.json()
    assert body["success"] is False and body["error"]["code"] == code
    assert "Traceback" not in body["error"]["message"] and "version" not in body["error"]["message"]


def test_sql_body_is_validated(as_user: Any) -> None:
    response = as_user(ADMIN).post("/api/analytics/sql", json={"query": "SELECT 1"})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"
