"""GET /api/breakers: the workers' circuit breakers, per provider and model (admins only).

Each worker keeps its own breakers (they guard the calls that worker makes) and serves
them on its Faust web server at ``/breakers``. The api asks every worker listed in
``SLUICE_WORKER_STATUS_URLS`` (default: the local worker) and merges the answers; a
worker that does not answer is named, not hidden.
"""

from __future__ import annotations

import asyncio

import httpx
from fastapi import APIRouter
from pydantic import BaseModel, TypeAdapter, ValidationError

from api.deps import CurrentUser, ServicesDep
from api.errors import ApiError
from schemas.api import Envelope
from schemas.events import BreakerStatus
from sluice.settings import Settings

router = APIRouter(prefix="/api", tags=["breakers"])

WORKER_TIMEOUT_S = 2.0
_statuses = TypeAdapter(list[BreakerStatus])


class BreakersPublic(BaseModel):
    breakers: list[BreakerStatus]
    open: int
    workers_asked: int
    workers_unreachable: list[str]


async def _worker_breakers(client: httpx.AsyncClient, url: str) -> list[BreakerStatus] | None:
    try:
        resp = await client.get(f"{url.rstrip('/')}/breakers")
        resp.raise_for_status()
        return _statuses.validate_json(resp.content)
    except (httpx.HTTPError, ValidationError):
        return None


async def workers_breakers(settings: Settings) -> BreakersPublic:
    """Ask every worker for its breakers (also what the api's /metrics can report)."""
    urls = settings.resolved_worker_status_urls
    async with httpx.AsyncClient(timeout=WORKER_TIMEOUT_S) as client:
        answers = await asyncio.gather(*(_worker_breakers(client, url) for url in urls))
    found = [status for answer in answers if answer for status in answer]
    return BreakersPublic(
        breakers=found,
        open=sum(1 for s in found if s.state == "open"),
        workers_asked=len(urls),
        workers_unreachable=[url for url, a in zip(urls, answers, strict=True) if a is None],
    )


@router.get("/breakers", response_model=Envelope[BreakersPublic])
async def breakers(caller: CurrentUser, svc: ServicesDep) -> Envelope[BreakersPublic]:
    """Every worker's breakers: closed, open (jobs for that model wait) or half_open."""
    if not caller.is_admin:
        raise ApiError(403, "forbidden", "this needs an admin token (sluice tokens create --admin)")
    return Envelope(data=await workers_breakers(svc.settings))
