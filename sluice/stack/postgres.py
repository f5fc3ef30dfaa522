"""A local PostgreSQL server: initdb once, pg_ctl start and stop, the app's role and database.

Postgres refuses to run as root, so when the stack runs as root every server command
runs as the `postgres` system user, which then owns the data directory.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from sluice.stack.errors import StackError, with_log_tail
from sluice.stack.probes import Wait, wait_until
from sluice.stack.procs import process_alive, process_start_time

SERVER_USER = "postgres"  # the system user the server runs as when we are root
SUPERUSER = "postgres"  # the database superuser initdb creates
LISTEN_HOST = "127.0.0.1"
CONF_INCLUDE = "sluice.conf"
PG_CTL_WAIT_S = 60
SOCKET_PATH_MAX = 100


@dataclass(frozen=True)
class PostgresLayout:
    """The server's directories under the stack home; its log sits with the others."""

    root: Path
    log: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def sockets(self) -> Path:
        return self.root / "run"

    @property
    def is_initialised(self) -> bool:
        return (self.data / "PG_VERSION").is_file()


def postgres_layout(home: Path) -> PostgresLayout:
    home = home.resolve()
    return PostgresLayout(root=home / "postgres", log=home / "logs" / "postgres.log")


def server_bindir() -> Path | None:
    """Where initdb and pg_ctl live: on PATH, else Debian's newest /usr/lib/postgresql/N/bin."""
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).parent

    def version(pg_ctl: Path) -> tuple[int, ...]:
        return tuple(int(p) for p in pg_ctl.parent.parent.name.split(".") if p.isdigit())

    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=version)
    return found[-1].parent if found else None


def _require_bindir() -> Path:
    bindir = server_bindir()
    if bindir is None:
        raise StackError(
            "no PostgreSQL server found (initdb, pg_ctl): install it (make system-deps) "
            "or set DATABASE_URL to a server you have"
        )
    return bindir


def _running_as_root() -> bool:
    return os.geteuid() == 0


def _as_server_user(argv: Sequence[str]) -> list[str]:
    if _running_as_root():
        return ["runuser", "-u", SERVER_USER, "--", *argv]
    return list(argv)


def _give_to_server_user(*paths: Path) -> None:
    if _running_as_root():
        for path in paths:
            shutil.chown(path, SERVER_USER, SERVER_USER)


def _run(argv: Sequence[str], what: str, cwd: Path) -> str:
    done = subprocess.run(
        _as_server_user(argv), capture_output=True, text=True, check=False, cwd=cwd
    )
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip()
        raise StackError(f"{what} failed (exit {done.returncode}):\n{output}")
    return done.stdout


def _prepare_directories(layout: PostgresLayout) -> None:
    if _running_as_root():
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            raise StackError(
                f"Postgres will not run as root and there is no {SERVER_USER!r} system user: "
                "install the postgresql package (make system-deps) or run as another user"
            ) from None
    for directory in (layout.root, layout.sockets, layout.log.parent):
        directory.mkdir(parents=True, exist_ok=True)
    layout.log.touch()
    _give_to_server_user(layout.root, layout.sockets, layout.log)
    if _running_as_root():
        reachable = subprocess.run(
            _as_server_user(["test", "-w", str(layout.root)]), check=False
        ).returncode
        if reachable != 0:
            raise StackError(
                f"the {SERVER_USER} system user cannot write {layout.root}: make its parent "
                "directories traversable (chmod o+x) or set SLUICE_HOME elsewhere"
            )


def init_cluster(layout: PostgresLayout, bindir: Path) -> None:
    """initdb with trust auth for local and 127.0.0.1 connections; the server is dev-only."""
    # initdb into a side directory and rename, so an interrupted run never looks initialised.
    staging = layout.root / "data.partial"
    shutil.rmtree(staging, ignore_errors=True)
    _run(
        [
            str(bindir / "initdb"),
            "-D",
            str(staging),
            "-U",
            SUPERUSER,
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--auth=trust",
        ],
        "initdb",
        cwd=layout.root,
    )
    # The stack's own settings live in an included file it rewrites on every start.
    with (staging / "postgresql.conf").open("a") as conf:
        conf.write(f"\ninclude_if_exists = '{CONF_INCLUDE}'\n")
    staging.rename(layout.data)


def server_conf(*, port: int, sockets: Path) -> str:
    # Unix socket paths are limited to ~107 bytes; under a deep home, serve TCP only.
    fits = len(str(sockets / f".s.PGSQL.{port}")) <= SOCKET_PATH_MAX
    return (
        "# Written by `sluice stack up` on every start; edits are overwritten.\n"
        f"listen_addresses = '{LISTEN_HOST}'\n"
        f"port = {port}\n"
        f"unix_socket_directories = '{sockets if fits else ''}'\n"
    )


def server_pid(layout: PostgresLayout) -> int | None:
    """The postmaster's pid when it runs, from postmaster.pid (pid, data dir, start time, ...)."""
    try:
        lines = (layout.data / "postmaster.pid").read_text().splitlines()
        pid, started = int(lines[0]), int(lines[2])
    except (OSError, ValueError, IndexError):
        return None
    if not process_alive(pid):
        return None
    # A stale file (after a reboot, say) may name a pid that now belongs to something else.
    actual = process_start_time(pid)
    if actual is not None and abs(actual - started) > 5:
        return None
    return pid


def server_ready(port: int, timeout: float = 2.0) -> bool:
    try:
        with psycopg.connect(
            host=LISTEN_HOST,
            port=port,
            user=SUPERUSER,
            dbname="postgres",
            connect_timeout=max(1, round(timeout)),
        ) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error:
        return False
    return True


def start_server(layout: PostgresLayout, *, port: int) -> list[str]:
    """initdb on first start, then pg_ctl start; returns what was done besides starting."""
    bindir = _require_bindir()
    _prepare_directories(layout)
    done: list[str] = []
    if not layout.is_initialised:
        init_cluster(layout, bindir)
        done.append("initialised data directory")
    conf = layout.data / CONF_INCLUDE
    conf.write_text(server_conf(port=port, sockets=layout.sockets))
    _give_to_server_user(conf)
    pg_ctl = [str(bindir / "pg_ctl"), "start", "-D", str(layout.data), "-l", str(layout.log)]
    try:
        _run([*pg_ctl, "-w", "-t", str(PG_CTL_WAIT_S), "-s"], "pg_ctl start", cwd=layout.root)
    except StackError as e:
        raise StackError(with_log_tail(str(e), layout.log)) from e
    return done


def wait_ready(layout: PostgresLayout, *, port: int, timeout: float) -> float:
    began = time.monotonic()
    outcome = wait_until(
        lambda: server_ready(port), timeout, alive=lambda: server_pid(layout) is not None
    )
    if outcome is not Wait.ready:
        why = "exited" if outcome is Wait.died else f"did not accept connections in {timeout:.0f} s"
        raise StackError(with_log_tail(f"postgres {why}", layout.log))
    return time.monotonic() - began


def stop_server(layout: PostgresLayout) -> bool:
    """pg_ctl stop -m fast: roll back open transactions and shut down; False if not running."""
    if server_pid(layout) is None:
        return False
    bindir = _require_bindir()
    argv = [str(bindir / "pg_ctl"), "stop", "-D", str(layout.data), "-m", "fast", "-w", "-s"]
    _run([*argv, "-t", str(PG_CTL_WAIT_S)], "pg_ctl stop", cwd=layout.root)
    return True


def ensure_role_and_database(port: int, database_url: str) -> list[str]:
    """Create the login role and database named in database_url if missing; returns what was made.

    The role is a superuser so tests can create and drop throwaway databases.
    """
    target = conninfo_to_dict(database_url)
    role, dbname = str(target.get("user", "sluice")), str(target.get("dbname", "sluice"))
    made: list[str] = []
    with psycopg.connect(
        host=LISTEN_HOST, port=port, user=SUPERUSER, dbname="postgres", autocommit=True
    ) as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN SUPERUSER").format(sql.Identifier(role)))
            made.append(f"role {role}")
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone():
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(dbname), sql.Identifier(role)
                )
            )
            made.append(f"database {dbname}")
    return made


def describe_url(database_url: str) -> str:
    """host:port/dbname of a connection URL, without the user or password."""
    parts = conninfo_to_dict(database_url)
    return f"{parts.get('host', 'localhost')}:{parts.get('port', 5432)}/{parts.get('dbname', '')}"


def url_port(database_url: str) -> int:
    return int(conninfo_to_dict(database_url).get("port") or 5432)


def database_reachable(database_url: str, timeout: float = 5.0) -> str | None:
    """None when a session opens and answers; else why not, with nothing secret in it."""
    try:
        with psycopg.connect(database_url, connect_timeout=max(1, round(timeout))) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as e:
        # libpq messages name host and port, never the password.
        return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return None
