"""Schemathesis over the api's own OpenAPI document: no 5xx, no response that breaks it.

Cases are drawn with Hypothesis from each operation's strategy (schemathesis's pytest
loader predates this pytest), one test per operation.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from sluice.settings import get_settings
from tests.integration.conftest import bearer, mint_token, user_name

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
OPERATIONS = [
    "POST /api/openai-streaming/start",
    "GET /api/openai-streaming/jobs",
    "GET /api/openai-streaming/{job_id}/status",
    "GET /api/openai-streaming/{job_id}/stream",
    "GET /api/openai-streaming/{job_id}/results",
    "POST /api/openai-streaming/{job_id}/cancel",
    "GET /api/openai-streaming/{job_id}/metrics",
    "GET /api/openai-streaming/{job_id}/replay",
    "GET /api/openai-streaming/analytics",
    "GET /healthz",
]


@pytest.fixture(scope="module")
def api_schema(api_url: str) -> Any:
    return schemathesis.openapi.from_url(f"{api_url}/openapi.json", wait_for_schema=30)


@pytest.fixture(scope="module")
def fuzz_token() -> str:
    return mint_token(user_name("fuzz"))


def test_every_operation_is_fuzzed(api_schema: Any) -> None:
    found = {op.ok().label for op in api_schema.get_all_operations()}
    assert found >= set(OPERATIONS), found - set(OPERATIONS)


@pytest.mark.parametrize("label", OPERATIONS)
def test_operation_honours_its_openapi_document(
    api_schema: Any, fuzz_token: str, label: str
) -> None:
    operation = next(op.ok() for op in api_schema.get_all_operations() if op.ok().label == label)
    base_url = get_settings().api_url

    @given(case=operation.as_strategy())
    @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
    def fuzz(case: Any) -> None:
        case.call_and_validate(base_url=base_url, headers=bearer(fuzz_token), checks=CHECKS)

    fuzz()
