"""What `stack up` does once the servers answer: create topics, apply migrations."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass

from producers.topics import TopicAdminError, configured_topic_specs, ensure_topics
from sluice.settings import Settings
from sluice.stack.errors import StackError
from sluice.stack.services import child_env

MIGRATIONS_MODULE = "sinks.migrations"
MIGRATIONS_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class TopicsReport:
    created: list[str]
    total: int


def create_topics(s: Settings) -> TopicsReport:
    specs = configured_topic_specs(s)
    try:
        created = ensure_topics(s.kafka_bootstrap, specs)
    except TopicAdminError as e:
        raise StackError(f"topics: {e}") from e
    return TopicsReport(created, len(specs))


@dataclass(frozen=True)
class MigrationsReport:
    took_s: float
    skipped: str | None = None  # why nothing was applied


def run_migrations(s: Settings) -> MigrationsReport:
    """Apply migrations in a child process.

    A child rather than a call: embedded ClickHouse (chdb) lets one process hold its
    directory, and this one must let go before the sinks process opens it.
    """
    began = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-c", _MIGRATE],
            env=child_env(s.home),
            capture_output=True,
            text=True,
            timeout=MIGRATIONS_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        raise StackError(f"migrations did not finish in {MIGRATIONS_TIMEOUT_S:.0f} s") from e
    took = time.monotonic() - began
    output = (done.stdout + done.stderr).strip()
    if done.returncode == _NOT_INSTALLED:
        why = output.splitlines()[-1] if output else f"{MIGRATIONS_MODULE} is not installed"
        return MigrationsReport(took, skipped=why)
    if done.returncode != 0:
        tail = "\n".join(output.splitlines()[-30:])
        raise StackError(f"migrations failed (exit {done.returncode}):\n{tail}")
    return MigrationsReport(took)


_NOT_INSTALLED = 3
_MIGRATE = f"""
import sys
try:
    from {MIGRATIONS_MODULE} import migrate_all
except ImportError as e:
    print(f"{MIGRATIONS_MODULE} is not usable yet: {{e}}", file=sys.stderr)
    sys.exit({_NOT_INSTALLED})
migrate_all()
"""
