"""The process supervisor with real short-lived processes: pid files, logs, stop, readiness."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from sluice.stack.errors import StackError, log_tail
from sluice.stack.procs import Supervisor, process_alive, process_start_ticks


def output(supervisor: Supervisor, name: str) -> str:
    """What the process wrote, without the supervisor's header line (which holds the argv)."""
    lines = supervisor.log_path(name).read_text().splitlines()
    return "\n".join(line for line in lines if not line.startswith("# "))


@pytest.fixture
def supervisor(tmp_path: Path) -> Supervisor:
    return Supervisor(tmp_path)


def test_start_writes_pid_file_and_log_and_is_idempotent(supervisor: Supervisor) -> None:
    pid = supervisor.start("sleeper", ["sleep", "30"])
    try:
        assert pid is not None
        assert supervisor.is_running("sleeper")
        assert supervisor.pid("sleeper") == pid
        assert supervisor.pid_path("sleeper").read_text().split()[0] == str(pid)
        assert supervisor.log_path("sleeper").exists()
        assert supervisor.start("sleeper", ["sleep", "30"]) is None  # already running
    finally:
        assert supervisor.stop("sleeper", timeout=5)
    assert not supervisor.is_running("sleeper")
    assert not supervisor.pid_path("sleeper").exists()
    assert not supervisor.stop("sleeper")  # stopping twice is harmless


def test_children_get_env_and_cwd_and_write_to_the_log(
    supervisor: Supervisor, tmp_path: Path
) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    env = {**os.environ, "SLUICE_TEST_GREETING": "hello from the parent"}
    script = 'pwd; echo "$SLUICE_TEST_GREETING on stderr" >&2'
    supervisor.start("echo", ["sh", "-c", script], env=env, cwd=workdir)
    supervisor.wait_ready("echo", lambda: "parent on stderr" in output(supervisor, "echo"), 5)
    assert str(workdir) in output(supervisor, "echo")


def test_process_group_is_stopped_with_its_children(supervisor: Supervisor) -> None:
    pid = supervisor.start("family", ["sh", "-c", "sleep 30 & echo $!; wait"])
    assert pid is not None
    supervisor.wait_ready("family", lambda: output(supervisor, "family").isdigit(), 5)
    grandchild = int(output(supervisor, "family"))
    assert process_alive(grandchild)
    supervisor.stop("family", timeout=5)
    time.sleep(0.1)
    assert not process_alive(grandchild)


def test_stop_kills_a_process_that_ignores_sigterm(supervisor: Supervisor) -> None:
    supervisor.start("stubborn", ["sh", "-c", "trap '' TERM; echo $((6 * 7)); sleep 30"])
    supervisor.wait_ready("stubborn", lambda: "42" in output(supervisor, "stubborn"), 5)
    began = time.monotonic()
    assert supervisor.stop("stubborn", timeout=0.5)
    assert not supervisor.is_running("stubborn")
    assert 0.5 <= time.monotonic() - began < 5  # waited out the grace period, then killed


def test_wait_ready_reports_an_early_exit_with_the_log(supervisor: Supervisor) -> None:
    supervisor.start("crasher", ["sh", "-c", "echo port $((9000 + 92)) in use; exit 3"])
    with pytest.raises(StackError) as caught:
        supervisor.wait_ready("crasher", lambda: False, timeout=10)
    assert "crasher exited before it was ready" in str(caught.value)
    assert "port 9092 in use" in str(caught.value)


def test_wait_ready_times_out_with_the_log(supervisor: Supervisor) -> None:
    supervisor.start("slow", ["sh", "-c", "echo booting step $((1 + 1)); sleep 30"])
    try:
        with pytest.raises(StackError) as caught:
            supervisor.wait_ready("slow", lambda: False, timeout=0.3)
        assert "slow was not ready after" in str(caught.value)
        assert "booting step 2" in str(caught.value)
    finally:
        supervisor.stop("slow", timeout=5)


def test_wait_ready_returns_seconds_waited(supervisor: Supervisor) -> None:
    supervisor.start("quick", ["sleep", "30"])
    try:
        assert supervisor.wait_ready("quick", lambda: True, timeout=5) < 1
    finally:
        supervisor.stop("quick", timeout=5)


def test_restart_keeps_the_previous_log(supervisor: Supervisor) -> None:
    supervisor.start("twice", ["sh", "-c", "echo run $((0 + 1))"])
    supervisor.wait_ready("twice", lambda: "run 1" in output(supervisor, "twice"), 5)
    time.sleep(0.1)
    supervisor.start("twice", ["sh", "-c", "echo run $((1 + 1))"])
    supervisor.wait_ready("twice", lambda: "run 2" in output(supervisor, "twice"), 5)
    previous = supervisor.log_path("twice").with_name("twice.log.1")
    assert "run 1" in previous.read_text()
    assert "run 1" not in output(supervisor, "twice")


def test_stale_pid_file_of_a_finished_process_is_not_running(supervisor: Supervisor) -> None:
    finished = subprocess.run(["sh", "-c", "echo $$"], capture_output=True, text=True, check=True)
    supervisor.run_dir.mkdir(parents=True)
    supervisor.pid_path("ghost").write_text(finished.stdout)
    assert not supervisor.is_running("ghost")
    assert not supervisor.stop("ghost")
    assert not supervisor.pid_path("ghost").exists()


def test_pid_reused_by_another_process_is_not_ours(supervisor: Supervisor) -> None:
    # A live pid whose start time differs from the recorded one: a reused pid.
    ticks = process_start_ticks(os.getpid())
    assert ticks is not None
    supervisor.run_dir.mkdir(parents=True)
    supervisor.pid_path("reused").write_text(f"{os.getpid()}\n{ticks + 1}\n")
    assert not supervisor.is_running("reused")
    supervisor.pid_path("reused").write_text(f"{os.getpid()}\n{ticks}\n")
    assert supervisor.is_running("reused")


def test_garbage_pid_file_is_not_running(supervisor: Supervisor) -> None:
    supervisor.run_dir.mkdir(parents=True)
    supervisor.pid_path("garbled").write_text("not a pid\n")
    assert not supervisor.is_running("garbled")


def test_zombie_is_not_alive() -> None:
    child = subprocess.Popen(["true"])
    try:
        deadline = time.monotonic() + 5
        while process_alive(child.pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not process_alive(child.pid)  # exited, not yet reaped
    finally:
        child.wait()


def test_missing_program_is_a_clear_error(supervisor: Supervisor) -> None:
    with pytest.raises(StackError, match="cannot run"):
        supervisor.start("nothing", ["/nonexistent/sluice-test-binary"])


def test_log_tail_keeps_the_last_lines(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    assert log_tail(log, 3) == "line 97\nline 98\nline 99"
    assert "no log" in log_tail(tmp_path / "missing.log")


def test_a_crashed_process_is_told_apart_from_a_stopped_one(supervisor: Supervisor) -> None:
    supervisor.start("crashes", ["sh", "-c", "exit 1"])
    supervisor.wait_ready("crashes", lambda: not supervisor.is_running("crashes"), 5)
    assert supervisor.has_exited("crashes")
    assert not supervisor.stop("crashes")  # clears the record of the crash
    assert not supervisor.has_exited("crashes")
    assert not supervisor.has_exited("never-started")
