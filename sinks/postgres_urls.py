"""One Postgres URL, spelled for each client: yoyo names its psycopg 3 backend by scheme."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

_POSTGRES_SCHEMES = frozenset({"postgres", "postgresql", "postgresql+psycopg", "postgres+psycopg"})


def _with_scheme(url: str, scheme: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in _POSTGRES_SCHEMES:
        raise ValueError(f"not a Postgres URL: scheme {parts.scheme!r}")
    return urlunsplit(parts._replace(scheme=scheme))


def yoyo_url(url: str) -> str:
    """The URL yoyo 9 understands for psycopg 3 (``postgresql+psycopg://``)."""
    return _with_scheme(url, "postgresql+psycopg")


def psycopg_url(url: str) -> str:
    """The URL libpq understands (``postgresql://``)."""
    return _with_scheme(url, "postgresql")
