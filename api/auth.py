"""Bearer-token authentication: the token's hash is looked up, never the token itself."""

from __future__ import annotations

from dataclasses import dataclass

from api.errors import ApiError
from api.store import TokenStore
from sluice.accounts import ADMIN_SCOPE, parse_token, secret_matches


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user, and whether they hold the admin scope (sees every job)."""

    user_id: str
    is_admin: bool = False

    def can_see(self, owner_user_id: str | None) -> bool:
        return self.is_admin or owner_user_id == self.user_id


def unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


async def authenticate(token: str | None, tokens: TokenStore) -> Principal:
    """The caller behind a bearer token; 401 for a missing, unknown or revoked one."""
    if not token:
        raise unauthorized("an API token is required: Authorization: Bearer <token>")
    parsed = parse_token(token)
    row = await tokens.find(parsed.token_id) if parsed else None
    if parsed is None or row is None or not secret_matches(parsed.secret, row["secret_hash"]):
        raise unauthorized("the API token is not valid")
    if row["revoked_at"] is not None:
        raise unauthorized("the API token was revoked")
    return Principal(user_id=row["user_id"], is_admin=ADMIN_SCOPE in row["scopes"])
