"""Liveness, readiness and Prometheus metrics, for process supervisors and scrapers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import ServicesDep
from api.errors import error_response
from api.metrics import registry, scraped
from api.ops.state import ops_lifespan, ops_state
from sluice.readiness import readiness

router = APIRouter(tags=["health"], lifespan=ops_lifespan)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process runs and answers; says nothing about its dependencies."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses={503: {"description": "a dependency is unreachable; `details` says which"}},
)
async def readyz(svc: ServicesDep) -> Any:
    """Kafka, Postgres and ClickHouse reachable: 200, else 503 naming what failed."""
    checks = await readiness(svc.settings)
    details = [c.as_dict() for c in checks]
    failed = [c for c in checks if not c.ok]
    if failed:
        names = ", ".join(c.name for c in failed)
        return error_response(503, "not_ready", f"not ready: {names} unreachable", details)
    return JSONResponse({"status": "ready", "checks": details})


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus text format; figures from Postgres and Kafka are read at scrape time."""
    scraped.values = await ops_state(request.app).scrape()
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
