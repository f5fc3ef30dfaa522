"""The local Postgres server's pure parts: its config, layout and what is safe to print."""

from __future__ import annotations

from pathlib import Path

from sluice.stack import postgres


def test_server_conf_listens_on_localhost_with_sockets_under_home(tmp_path: Path) -> None:
    conf = postgres.server_conf(port=5433, sockets=tmp_path / "run")
    assert "listen_addresses = '127.0.0.1'" in conf
    assert "port = 5433" in conf
    assert f"unix_socket_directories = '{tmp_path / 'run'}'" in conf


def test_server_conf_serves_tcp_only_when_the_socket_path_would_be_too_long() -> None:
    deep = Path("/", *["a-rather-long-directory-name"] * 5, "run")
    assert "unix_socket_directories = ''" in postgres.server_conf(port=5433, sockets=deep)


def test_layout_keeps_data_under_home_and_the_log_with_the_others(tmp_path: Path) -> None:
    layout = postgres.postgres_layout(tmp_path)
    home = tmp_path.resolve()
    assert layout.data == home / "postgres" / "data"
    assert layout.sockets == home / "postgres" / "run"
    assert layout.log == home / "logs" / "postgres.log"
    assert not layout.is_initialised
    layout.data.mkdir(parents=True)
    (layout.data / "PG_VERSION").write_text("15\n")
    assert layout.is_initialised


def test_no_server_pid_without_a_running_server(tmp_path: Path) -> None:
    layout = postgres.postgres_layout(tmp_path)
    assert postgres.server_pid(layout) is None
    layout.data.mkdir(parents=True)
    # A postmaster.pid left by a server that is gone (pid 0 never names a process).
    (layout.data / "postmaster.pid").write_text(f"0\n{layout.data}\n1700000000\n5433\n")
    assert postgres.server_pid(layout) is None


def test_database_url_is_printed_without_credentials() -> None:
    url = "postgresql://app:s3cret@db.internal:6543/jobs"
    assert postgres.describe_url(url) == "db.internal:6543/jobs"
    assert "s3cret" not in postgres.describe_url(url)
    assert postgres.url_port(url) == 6543
    assert postgres.url_port("postgresql://app@db.internal/jobs") == 5432
