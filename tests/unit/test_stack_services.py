"""Which services the stack runs for which settings, and how it talks about them."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from sluice.settings import Settings
from sluice.stack import clickhouse
from sluice.stack.procs import Supervisor
from sluice.stack.services import (
    EmbeddedClickHouse,
    ExternalService,
    LocalPostgres,
    ProcessService,
    app_services,
    data_services,
    llm_services,
    shutdown_order,
)

MakeSettings = Callable[..., Settings]


@pytest.fixture
def make_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> MakeSettings:
    """Settings from a clean environment plus the given variables."""
    for name in list(os.environ):
        if name.startswith(("SLUICE_", "OPENAI_")) or name == "DATABASE_URL":
            monkeypatch.delenv(name)
    monkeypatch.setenv("SLUICE_HOME", str(tmp_path))

    def make(**env: str) -> Settings:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return Settings()

    return make


def test_defaults_run_everything_locally(make_settings: MakeSettings, tmp_path: Path) -> None:
    s = make_settings()
    sup = Supervisor(s.home)
    kafka, pg, ch = data_services(s, sup)
    assert isinstance(kafka, ProcessService) and kafka.ports == (9092, 9093)
    assert isinstance(pg, LocalPostgres) and pg.port == s.postgres_port
    assert isinstance(ch, EmbeddedClickHouse)
    assert ch.directory == tmp_path.resolve() / "clickhouse"
    assert [svc.name for svc in llm_services(s, sup)] == ["fake-llm"]
    assert [svc.name for svc in app_services(s, sup)] == ["api", "worker", "sinks"]


def test_configured_servers_are_only_checked(make_settings: MakeSettings) -> None:
    s = make_settings(
        DATABASE_URL="postgresql://app:s3cret@db.internal:6543/jobs",
        SLUICE_CLICKHOUSE_URL="https://default:pw@ch.internal:8443",
        SLUICE_KAFKA_BOOTSTRAP="kafka-1.internal:9092,kafka-2.internal:9092",
        OPENAI_API_KEY="sk-real",
    )
    sup = Supervisor(s.home)
    kafka, pg, ch = data_services(s, sup)
    assert all(isinstance(svc, ExternalService) for svc in (kafka, pg, ch))
    assert (kafka.address, pg.address, ch.address) == (
        "kafka-1.internal:9092",
        "db.internal:6543/jobs",
        "https://ch.internal:8443",
    )
    assert (kafka.port, pg.port, ch.port) == (9092, 6543, 8443)
    assert llm_services(s, sup) == []


def test_down_stops_users_before_what_they_use(make_settings: MakeSettings) -> None:
    # Even with a real LLM and DATABASE_URL now, a simulator or local Postgres
    # left by an earlier `up` must still be stopped.
    s = make_settings(OPENAI_API_KEY="sk-real", DATABASE_URL="postgresql://x@db/y")
    names = [svc.name for svc in shutdown_order(s, Supervisor(s.home))]
    assert names == ["api", "worker", "sinks", "fake-llm", "kafka", "postgres"]


def test_app_processes_run_the_sluice_cli_with_an_absolute_home(
    make_settings: MakeSettings, tmp_path: Path
) -> None:
    s = make_settings(SLUICE_HOME=".sluice-relative")
    for svc in app_services(s, Supervisor(s.home)):
        assert svc.argv[1:] == ("-m", "sluice.cli", svc.name)
        assert Path(svc.env["SLUICE_HOME"]).is_absolute()
        assert svc.module is not None


def test_clickhouse_urls() -> None:
    assert clickhouse.chdb_directory("chdb:///data/ch") == Path("/data/ch")
    assert clickhouse.chdb_directory("http://ch:8123") is None
    assert clickhouse.ping_url("http://user:pw@ch:8123/analytics?x=1") == "http://ch:8123/ping"
    assert clickhouse.public_address("https://user:pw@ch:8443/db") == "https://ch:8443"
