"""The bench's own stack, driven through the project's `sluice stack` commands.

The bench process adopts the stack's environment (own home, own ports) so that the
project's settings, supervisor and readiness checks all agree with the children.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import psycopg

from bench.config import BenchConfig
from sluice import accounts
from sluice.settings import Settings, get_settings
from sluice.stack.procs import Supervisor
from sluice.stack.services import app_services

APP = ("api", "worker", "sinks")
BENCH_USER = "bench"


class BenchStackError(RuntimeError):
    """A stack command failed; its output says why."""


class BenchStack:
    def __init__(self, cfg: BenchConfig) -> None:
        self.cfg = cfg
        self.supervisor = Supervisor(cfg.home)

    def _env(self) -> dict[str, str]:
        return self.cfg.stack_env()

    def adopt_environment(self) -> None:
        """Make this process see the bench stack's settings, not a developer's."""
        env = self._env()
        os.environ.clear()
        os.environ.update(env)
        get_settings.cache_clear()

    def _sluice(self, *args: str) -> None:
        argv = [sys.executable, "-m", "sluice.cli", *args]
        done = subprocess.run(argv, env=self._env(), capture_output=True, text=True, check=False)
        for line in done.stdout.splitlines():
            print(f"  {line}", flush=True)
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-20:])
            raise BenchStackError(f"`sluice {' '.join(args)}` failed:\n{tail}")

    def up(self) -> None:
        """Kafka, Postgres, the simulator, and fresh api, worker and sinks processes."""
        self.adopt_environment()
        self.cfg.home.mkdir(parents=True, exist_ok=True)
        for name in (*APP, "fake-llm"):  # fresh processes: settings and memory start clean
            self.supervisor.stop(name)
        self._sluice("stack", "up", "--with-app")

    def api_token(self) -> str:
        """A new API token for the bench's user, minted in the bench stack's database."""
        with psycopg.connect(get_settings().resolved_database_url, autocommit=True) as conn:
            accounts.ensure_user(conn, BENCH_USER)
            return accounts.create_token(conn, BENCH_USER, name="bench").token

    def api_tokens(self, users: int) -> list[str]:
        """A new API token for each of `users` bench users (bench-0, bench-1, ...)."""
        tokens = []
        with psycopg.connect(get_settings().resolved_database_url, autocommit=True) as conn:
            for n in range(users):
                name = f"{BENCH_USER}-{n}"
                accounts.ensure_user(conn, name)
                tokens.append(accounts.create_token(conn, name, name="bench").token)
        return tokens

    def restart_profiled(self, names: tuple[str, ...], out_dir: Path) -> dict[str, Path]:
        """Restart app processes under bench.profiled; where each will write its profile."""
        out_dir.mkdir(parents=True, exist_ok=True)
        services = {s.name: s for s in app_services(Settings(), self.supervisor)}
        outputs: dict[str, Path] = {}
        for name in names:
            out = out_dir / f"{name}.txt"
            argv = (sys.executable, "-m", "bench.profiled", name, str(out))
            service = dataclasses.replace(services[name], argv=argv, env=self._env())
            self.supervisor.stop(name)
            service.up()
            outputs[name] = out
        return outputs

    def pid(self, name: str) -> int | None:
        return self.supervisor.pid(name)

    def down(self) -> None:
        self._sluice("stack", "down")
