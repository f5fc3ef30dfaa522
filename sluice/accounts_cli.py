"""`sluice users ...` and `sluice tokens ...`: manage who may call the api."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import typer
from rich.console import Console
from rich.table import Table

from sluice import accounts
from sluice.settings import get_settings

users_app = typer.Typer(no_args_is_help=True)
tokens_app = typer.Typer(no_args_is_help=True)
err = Console(stderr=True)


@contextmanager
def _database() -> Iterator[psycopg.Connection[Any]]:
    try:
        with psycopg.connect(get_settings().resolved_database_url, autocommit=True) as conn:
            yield conn
    except accounts.AccountError as exc:
        err.print(f"[red]{exc}")
        raise typer.Exit(1) from None
    except psycopg.OperationalError:
        err.print("[red]cannot reach Postgres: is the stack up (`sluice stack up`)?")
        raise typer.Exit(1) from None


@users_app.command("create")
def create_user(name: str) -> None:
    """Create a user; prints its id."""
    with _database() as conn:
        typer.echo(accounts.create_user(conn, name))


@tokens_app.command("create")
def create_token(
    user: str = typer.Argument(..., help="user name or id"),
    name: str = typer.Option("", help="a label for the token"),
    admin: bool = typer.Option(False, "--admin", help="may see every job and global analytics"),
) -> None:
    """Issue an API token; it is printed once and stored only as a hash."""
    with _database() as conn:
        issued = accounts.create_token(conn, user, name=name, admin=admin)
    err.print(f"token {issued.token_id} for {issued.user_id}; store it now, it is not shown again")
    typer.echo(issued.token)


@tokens_app.command("list")
def list_tokens(user: str | None = typer.Option(None, help="only this user's tokens")) -> None:
    """List tokens (never their secrets)."""
    with _database() as conn:
        rows = accounts.list_tokens(conn, user)
    table = Table("token_id", "user", "name", "scopes", "created", "last used", "revoked")
    for r in rows:
        table.add_row(
            r["token_id"],
            r["user_name"],
            r["name"],
            ",".join(r["scopes"]),
            f"{r['created_at']:%Y-%m-%d %H:%M}",
            f"{r['last_used_at']:%Y-%m-%d %H:%M}" if r["last_used_at"] else "",
            f"{r['revoked_at']:%Y-%m-%d %H:%M}" if r["revoked_at"] else "",
        )
    Console().print(table)


@tokens_app.command("revoke")
def revoke_token(token_id: str) -> None:
    """Revoke a token at once; requests with it then get 401."""
    with _database() as conn:
        revoked_at = accounts.revoke_token(conn, token_id)
    typer.echo(f"revoked {token_id} at {revoked_at:%Y-%m-%d %H:%M:%S}")
