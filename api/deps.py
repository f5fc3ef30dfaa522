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


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user, and whether they hold the admin scope (sees every job)."""

    user_id: str
    is_admin: bool = False

    def can_see(self, owner_user_id: str | None) -> bool:
        return self.is_admin or owner_user_id == self.user_id


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def current_principal() -> Principal:
    # Every caller is one user until authentication lands.
    return Principal(user_id="anonymous")


ServicesDep = Annotated[Services, Depends(get_services)]
CurrentUser = Annotated[Principal, Depends(current_principal)]
