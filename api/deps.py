"""Request dependencies as named aliases, so a route reads like a sentence."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from api.feed import PartitionCounts
from api.store import JobStore
from producers.submit import JobSubmitter
from sluice.settings import Settings


@dataclass
class Services:
    settings: Settings
    submitter: JobSubmitter
    store: JobStore
    partitions: PartitionCounts


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def current_user() -> str:
    # Every caller is one user until authentication lands.
    return "anonymous"


ServicesDep = Annotated[Services, Depends(get_services)]
CurrentUser = Annotated[str, Depends(current_user)]
