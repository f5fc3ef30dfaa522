"""Request dependencies as named aliases, so a route reads like a sentence."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.auth import Principal, authenticate
from api.feed import PartitionCounts
from api.hub import FeedHub
from api.limits import Admissions
from api.store import JobStore, TokenStore
from producers.control import ControlProducer
from producers.submit import JobSubmitter
from sluice.settings import Settings

__all__ = ["CurrentUser", "Principal", "Services", "ServicesDep"]


@dataclass
class Services:
    settings: Settings
    submitter: JobSubmitter
    control: ControlProducer
    jobs: JobStore
    tokens: TokenStore
    admissions: Admissions
    partitions: PartitionCounts
    hub: FeedHub


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]

bearer = HTTPBearer(auto_error=False, description="an API token from `sluice tokens create`")


async def current_principal(
    svc: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    return await authenticate(credentials.credentials if credentials else None, svc.tokens)


CurrentUser = Annotated[Principal, Depends(current_principal)]
