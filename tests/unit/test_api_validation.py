"""Bad requests get 422 with a stable code and the failing field named. No services needed:
validation happens before any route touches Kafka or Postgres."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.auth import Principal
from api.deps import current_principal
from api.main import create_app

START = "/api/openai-streaming/start"


@pytest.fixture(scope="module")
def client() -> TestClient:
    app = create_app()
    app.dependency_overrides[current_principal] = lambda: Principal(user_id="u1")
    app.state.services = None  # never reached: validation answers first
    return TestClient(app)  # not entered: no lifespan, no connections


def fields_of(body: dict[str, Any]) -> set[str]:
    return {d["field"] for d in body["error"]["details"]}


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"prompt": ""}, "prompt"),
        ({"prompt": "   "}, "prompt"),
        ({}, "prompt"),
        ({"prompt": "hi", "priority": "asap"}, "priority"),
        ({"prompt": "hi", "job_type": "poetry"}, "job_type"),
        ({"prompt": 42}, "prompt"),
        ({"prompt": "hi", "config": {"max_tokens": "lots"}}, "config.max_tokens"),
        ({"prompt": "hi", "config": {"max_tokens": 0}}, "config.max_tokens"),
        ({"prompt": "hi", "config": {"temperature": 9}}, "config.temperature"),
        ({"prompt": "hi", "config": {"max_token": 5}}, "config.max_token"),
        ({"prompt": "hi", "config": "gpt-4"}, "config"),
    ],
)
def test_bad_start_requests_name_the_failing_field(
    client: TestClient, payload: dict[str, Any], field: str
) -> None:
    resp = client.post(START, json=payload)
    assert resp.status_code == 422
    body = resp.json()
    assert body["success"] is False
    assert body["error"]["code"] == "validation_error"
    assert field in fields_of(body)


def test_malformed_json_is_422_invalid_json(client: TestClient) -> None:
    resp = client.post(
        START, content=b'{"prompt": "hi",', headers={"content-type": "application/json"}
    )
    assert resp.status_code == 422
    assert resp.json()["error"]["code"] == "invalid_json"


def test_unknown_route_uses_the_error_envelope(client: TestClient) -> None:
    resp = client.get("/api/openai-streaming/nope/nothing")
    assert resp.status_code == 404
    assert resp.json() == {
        "success": False,
        "error": {"code": "not_found", "message": "Not Found", "details": None},
    }
