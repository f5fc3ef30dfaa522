"""Users and API tokens: creation, listing and revocation (the CLI), and token parsing.

A token reads ``slc_<token_id>_<secret>``. Only a SHA-256 hash of the secret is stored;
the token itself is shown once, when it is created.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

TOKEN_PREFIX = "slc"
ADMIN_SCOPE = "admin"


class AccountError(Exception):
    """A user or token operation that cannot be done, with a message for the operator."""


@dataclass(frozen=True)
class ParsedToken:
    token_id: str
    secret: str


@dataclass(frozen=True)
class IssuedToken:
    token_id: str
    token: str
    user_id: str
    scopes: tuple[str, ...]


def hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def secret_matches(secret: str, stored_hash: bytes) -> bool:
    return hmac.compare_digest(hash_secret(secret), bytes(stored_hash))


def parse_token(token: str) -> ParsedToken | None:
    prefix, _, rest = token.partition("_")
    token_id, _, secret = rest.partition("_")
    if prefix != TOKEN_PREFIX or len(token_id) != 12 or len(secret) < 32:
        return None
    return ParsedToken(token_id=token_id, secret=secret)


def new_token() -> tuple[str, str, bytes]:
    """A fresh (token_id, token, secret_hash)."""
    token_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return token_id, f"{TOKEN_PREFIX}_{token_id}_{secret}", hash_secret(secret)


def create_user(conn: psycopg.Connection[Any], name: str) -> str:
    user_id = f"usr_{uuid.uuid4().hex[:16]}"
    try:
        conn.execute("INSERT INTO users (user_id, name) VALUES (%s, %s)", (user_id, name))
    except psycopg.errors.UniqueViolation:
        raise AccountError(f"a user named {name!r} already exists") from None
    return user_id


def find_user_id(conn: psycopg.Connection[Any], name_or_id: str) -> str:
    row = conn.execute(
        "SELECT user_id FROM users WHERE name = %s OR user_id = %s", (name_or_id, name_or_id)
    ).fetchone()
    if row is None:
        raise AccountError(f"no user {name_or_id!r}")
    user_id: str = row[0]
    return user_id


def ensure_user(conn: psycopg.Connection[Any], name: str) -> str:
    try:
        return find_user_id(conn, name)
    except AccountError:
        return create_user(conn, name)


def create_token(
    conn: psycopg.Connection[Any], user: str, name: str = "", admin: bool = False
) -> IssuedToken:
    user_id = find_user_id(conn, user)
    token_id, token, secret_hash = new_token()
    scopes = (ADMIN_SCOPE,) if admin else ()
    conn.execute(
        "INSERT INTO api_tokens (token_id, user_id, name, secret_hash, scopes) "
        "VALUES (%s, %s, %s, %s, %s)",
        (token_id, user_id, name, secret_hash, list(scopes)),
    )
    return IssuedToken(token_id=token_id, token=token, user_id=user_id, scopes=scopes)


def list_tokens(conn: psycopg.Connection[Any], user: str | None = None) -> list[dict[str, Any]]:
    query = (
        "SELECT t.token_id, u.name AS user_name, t.user_id, t.name, t.scopes, t.created_at, "
        "t.last_used_at, t.revoked_at FROM api_tokens t JOIN users u USING (user_id)"
    )
    params: tuple[str, ...] = ()
    if user is not None:
        query += " WHERE t.user_id = %s"
        params = (find_user_id(conn, user),)
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query + " ORDER BY t.created_at", params).fetchall()


def revoke_token(conn: psycopg.Connection[Any], token_id: str) -> datetime:
    row = conn.execute(
        "UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()) "
        "WHERE token_id = %s RETURNING revoked_at",
        (token_id,),
    ).fetchone()
    if row is None:
        raise AccountError(f"no token {token_id!r}")
    revoked_at: datetime = row[0]
    return revoked_at
