"""The stack's services, each a declarative entry: how to start it, how to tell it is ready."""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import Protocol

import httpx

from sluice.settings import Settings
from sluice.stack import clickhouse, kafka, postgres
from sluice.stack.errors import StackError
from sluice.stack.probes import http_answers, http_ok, local_host, log_mentions, tcp_open
from sluice.stack.procs import Supervisor

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class Outcome(StrEnum):
    started = "started"
    running = "already running"
    external = "external"
    embedded = "embedded"


@dataclass(frozen=True)
class Brought:
    """What `up` did for one service."""

    outcome: Outcome
    ready_s: float | None = None
    notes: tuple[str, ...] = ()


class Service(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def address(self) -> str:
        """Where clients reach it, safe to print."""
        ...

    @property
    def port(self) -> int | None: ...

    def pid(self) -> int | None: ...

    def state(self) -> str:
        """running, stopped, exited (crashed), external or embedded."""
        ...

    def is_ready(self) -> bool: ...

    def up(self) -> Brought: ...

    def down(self) -> bool: ...


def child_env(home: Path) -> dict[str, str]:
    """The parent's environment, with the home made absolute so children agree on it."""
    return {**os.environ, "SLUICE_HOME": str(home.resolve()), "PYTHONUNBUFFERED": "1"}


def sluice_command(*args: str) -> tuple[str, ...]:
    """`sluice <args>` through this interpreter, so it works without the venv on PATH."""
    return (sys.executable, "-m", "sluice.cli", *args)


def module_available(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


@dataclass(frozen=True)
class ProcessService:
    """A background process the supervisor starts, tracks by pid file and stops by group."""

    name: str
    argv: tuple[str, ...]
    ready: Callable[[], bool]
    supervisor: Supervisor
    host: str = "127.0.0.1"
    ports: tuple[int, ...] = ()
    port_settings: str = ""  # the env vars that move it to other ports, for error messages
    # Importable module the child runs; checked first so a missing stage gets a clear message.
    module: str | None = None
    prepare: Callable[[], list[str]] | None = None
    ready_timeout: float = 60.0
    stop_timeout: float = 10.0
    env: Mapping[str, str] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.ports[0]}" if self.ports else "-"

    @property
    def port(self) -> int | None:
        return self.ports[0] if self.ports else None

    def pid(self) -> int | None:
        return self.supervisor.pid(self.name)

    def state(self) -> str:
        if self.pid() is not None:
            return "running"
        return "exited" if self.supervisor.has_exited(self.name) else "stopped"

    def is_ready(self) -> bool:
        return self.ready()

    def up(self) -> Brought:
        if self.supervisor.is_running(self.name):
            waited = self.supervisor.wait_ready(self.name, self.ready, self.ready_timeout)
            return Brought(Outcome.running, waited)
        if self.module is not None and not module_available(self.module):
            raise StackError(
                f"{self.name}: module {self.module} is not installed yet, so it cannot start"
            )
        for port in self.ports:
            if tcp_open(local_host(self.host), port):
                move = f" or set {self.port_settings}" if self.port_settings else ""
                raise StackError(
                    f"{self.name}: port {port} is taken by a process this stack did not start "
                    f"(under {self.supervisor.home}); stop that process{move}"
                )
        began = time.monotonic()
        notes = self.prepare() if self.prepare is not None else []
        self.supervisor.start(self.name, self.argv, env=self.env or None, cwd=Path.cwd())
        self.supervisor.wait_ready(self.name, self.ready, self.ready_timeout)
        return Brought(Outcome.started, time.monotonic() - began, tuple(notes))

    def down(self) -> bool:
        return self.supervisor.stop(self.name, self.stop_timeout)


@dataclass(frozen=True)
class LocalPostgres:
    """The stack's own Postgres server, run by pg_ctl rather than the supervisor."""

    layout: postgres.PostgresLayout
    port: int
    database_url: str
    name: str = "postgres"
    ready_timeout: float = 60.0

    @property
    def address(self) -> str:
        return f"{postgres.LISTEN_HOST}:{self.port}"

    def pid(self) -> int | None:
        return postgres.server_pid(self.layout)

    def state(self) -> str:
        return "running" if self.pid() is not None else "stopped"

    def is_ready(self) -> bool:
        return postgres.server_ready(self.port)

    def up(self) -> Brought:
        began = time.monotonic()
        if self.pid() is not None:
            postgres.wait_ready(self.layout, port=self.port, timeout=self.ready_timeout)
            made = postgres.ensure_role_and_database(self.port, self.database_url)
            return Brought(Outcome.running, time.monotonic() - began, _created(made))
        if tcp_open(postgres.LISTEN_HOST, self.port):
            raise StackError(
                f"postgres: port {self.port} is taken by a server this stack did not start; "
                "stop it, set SLUICE_POSTGRES_PORT, or point DATABASE_URL at it"
            )
        notes = postgres.start_server(self.layout, port=self.port)
        postgres.wait_ready(self.layout, port=self.port, timeout=self.ready_timeout)
        made = postgres.ensure_role_and_database(self.port, self.database_url)
        return Brought(Outcome.started, time.monotonic() - began, (*notes, *_created(made)))

    def down(self) -> bool:
        return postgres.stop_server(self.layout)


def _created(made: list[str]) -> tuple[str, ...]:
    return (f"created {' and '.join(made)}",) if made else ()


@dataclass(frozen=True)
class ExternalService:
    """A server someone else runs (DATABASE_URL, a ClickHouse URL): the stack only checks it."""

    name: str
    address: str
    port: int | None
    # Why it cannot be reached, or None when it answers; nothing secret in the text.
    problem: Callable[[], str | None]

    def pid(self) -> int | None:
        return None

    def state(self) -> str:
        return "external"

    def is_ready(self) -> bool:
        return self.problem() is None

    def up(self) -> Brought:
        began = time.monotonic()
        problem = self.problem()
        if problem is not None:
            raise StackError(f"{self.name}: {self.address} is not reachable: {problem}")
        return Brought(Outcome.external, time.monotonic() - began)

    def down(self) -> bool:
        return False


@dataclass(frozen=True)
class EmbeddedClickHouse:
    """chdb runs inside the sinks process; the stack only provides its directory."""

    directory: Path
    name: str = "clickhouse"

    @property
    def address(self) -> str:
        return f"chdb://{self.directory}"

    @property
    def port(self) -> int | None:
        return None

    def pid(self) -> int | None:
        return None

    def state(self) -> str:
        return "embedded" if self.directory.is_dir() else "stopped"

    def is_ready(self) -> bool:
        return self.directory.is_dir()

    def up(self) -> Brought:
        self.directory.mkdir(parents=True, exist_ok=True)
        return Brought(Outcome.embedded)

    def down(self) -> bool:
        return False


def kafka_service(s: Settings, supervisor: Supervisor) -> ProcessService:
    layout = kafka.kafka_layout(s.home)
    host, port = kafka.broker_address(s.kafka_bootstrap)
    return ProcessService(
        name="kafka",
        argv=tuple(kafka.broker_argv(layout)),
        ready=partial(kafka.kafka_ready, s.kafka_bootstrap),
        supervisor=supervisor,
        host=host,
        ports=(port, s.kafka_controller_port),
        port_settings="SLUICE_KAFKA_BOOTSTRAP and SLUICE_KAFKA_CONTROLLER_PORT",
        prepare=partial(
            kafka.prepare_broker,
            layout,
            bootstrap=s.kafka_bootstrap,
            controller_port=s.kafka_controller_port,
        ),
        ready_timeout=120.0,  # a cold JVM on a busy CI machine
        stop_timeout=20.0,  # a clean shutdown spares log recovery on the next start
        env=child_env(s.home),
    )


def kafka_or_external(s: Settings, supervisor: Supervisor) -> Service:
    """The local broker, unless the bootstrap names a cluster on another host."""
    host, port = kafka.broker_address(s.kafka_bootstrap)
    if host in LOCAL_HOSTS:
        return kafka_service(s, supervisor)

    def problem() -> str | None:
        return None if kafka.kafka_ready(s.kafka_bootstrap) else "no broker answers"

    return ExternalService("kafka", f"{host}:{port}", port, problem)


def postgres_service(s: Settings) -> Service:
    if s.database_url:
        url = s.database_url
        return ExternalService(
            "postgres",
            postgres.describe_url(url),
            postgres.url_port(url),
            partial(postgres.database_reachable, url),
        )
    return local_postgres(s)


def local_postgres(s: Settings) -> LocalPostgres:
    return LocalPostgres(postgres.postgres_layout(s.home), s.postgres_port, s.resolved_database_url)


def clickhouse_service(s: Settings) -> Service:
    url = s.resolved_clickhouse_url
    directory = clickhouse.chdb_directory(url)
    if directory is not None:
        return EmbeddedClickHouse(directory)

    def problem() -> str | None:
        return None if clickhouse.server_ready(url) else "/ping does not answer 200"

    return ExternalService(
        "clickhouse", clickhouse.public_address(url), httpx.URL(url).port, problem
    )


def simulator_service(s: Settings, supervisor: Supervisor) -> ProcessService:
    return ProcessService(
        name="fake-llm",
        argv=sluice_command("fake-llm"),
        ready=partial(http_ok, f"http://127.0.0.1:{s.fake_llm_port}/healthz"),
        supervisor=supervisor,
        ports=(s.fake_llm_port,),
        port_settings="SLUICE_FAKE_LLM_PORT",
        module="sluice.fakellm.server",
        env=child_env(s.home),
    )


FAUST_READY_LINE = "[^Worker]: Ready"


def worker_ready(web_url: str, log: Path) -> bool:
    """Faust's web server answers (any status) and the worker has logged that it is ready.

    The web server comes up before the consumer joins its group; Faust logs "Ready"
    only once partitions are assigned, which is when submitted jobs start to flow.
    """
    return http_answers(web_url) and log_mentions(log, FAUST_READY_LINE)


def app_services(s: Settings, supervisor: Supervisor) -> list[ProcessService]:
    """api, worker and sinks, in the order they start."""
    env = child_env(s.home)
    api_host = local_host(s.api_host)
    return [
        ProcessService(
            name="api",
            argv=sluice_command("api"),
            ready=partial(http_ok, f"http://{api_host}:{s.api_port}/healthz"),
            supervisor=supervisor,
            host=s.api_host,
            ports=(s.api_port,),
            port_settings="SLUICE_API_PORT",
            module="api.main",
            env=env,
        ),
        ProcessService(
            name="worker",
            argv=sluice_command("worker"),
            ready=partial(
                worker_ready,
                f"http://127.0.0.1:{s.worker_web_port}/",
                supervisor.log_path("worker"),
            ),
            supervisor=supervisor,
            ports=(s.worker_web_port,),
            port_settings="SLUICE_WORKER_WEB_PORT",
            module="processors.main",
            ready_timeout=90.0,
            env=env,
        ),
        ProcessService(
            name="sinks",
            argv=sluice_command("sinks"),
            ready=partial(http_ok, f"http://127.0.0.1:{s.sinks_query_port}/healthz"),
            supervisor=supervisor,
            ports=(s.sinks_query_port,),
            port_settings="SLUICE_SINKS_QUERY_PORT",
            module="sinks.main",
            env=env,
        ),
    ]


def data_services(s: Settings, supervisor: Supervisor) -> list[Service]:
    """What the stages store into and read from: Kafka, Postgres, ClickHouse."""
    return [kafka_or_external(s, supervisor), postgres_service(s), clickhouse_service(s)]


def llm_services(s: Settings, supervisor: Supervisor) -> list[Service]:
    """The simulator, only when no real LLM key is configured."""
    return [simulator_service(s, supervisor)] if s.uses_simulator else []


def shutdown_order(s: Settings, supervisor: Supervisor) -> list[Service]:
    """Everything this stack may have started, users before what they use.

    The simulator and local Postgres are listed whatever the settings say now, so
    `down` also stops what an earlier `up` under other settings left running.
    """
    return [
        *app_services(s, supervisor),
        simulator_service(s, supervisor),
        kafka_service(s, supervisor),
        local_postgres(s),
    ]
