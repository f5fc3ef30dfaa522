"""A supervisor for the stack's background processes: pid files, log files, stop by group.

Written by hand: the stack's processes must outlive the command that started them
(detached, in their own session) and be found again by a later command, which
process-pool libraries do not model.
"""

from __future__ import annotations

import fcntl
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sluice.stack.errors import StackError, with_log_tail
from sluice.stack.probes import Wait, wait_until

KILL_GRACE_S = 5.0


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat from the state on (field 3), or None without procfs."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name sits in parentheses and may itself contain spaces or parentheses.
    return raw[raw.rindex(")") + 2 :].split()


def process_start_ticks(pid: int) -> int | None:
    """When the process started, in clock ticks since boot; None when unknown."""
    fields = _proc_stat(pid)
    return int(fields[19]) if fields else None


def process_start_time(pid: int) -> float | None:
    """When the process started, as a Unix timestamp; None when unknown."""
    ticks = process_start_ticks(pid)
    if ticks is None:
        return None
    try:
        stat = Path("/proc/stat").read_text()
    except OSError:
        return None
    boot = next((int(line.split()[1]) for line in stat.splitlines() if line.startswith("btime")), 0)
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def process_alive(pid: int, start_ticks: int | None = None) -> bool:
    """True when `pid` runs and is not a zombie.

    With `start_ticks`, the process must also have started at that moment, so a pid
    reused by an unrelated process (after a reboot, say) does not count as ours.
    """
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, owned by another user
    fields = _proc_stat(pid)
    if fields is None:
        return True
    if fields[0] in ("Z", "X"):
        return False
    return start_ticks is None or int(fields[19]) == start_ticks


class Supervisor:
    """Starts named processes under `home`: logs in home/logs, pid files in home/run."""

    def __init__(self, home: Path) -> None:
        self.home = home.resolve()
        self.logs_dir = self.home / "logs"
        self.run_dir = self.home / "run"
        # Children started by this object, kept so their exit status can be reaped.
        self._children: dict[str, subprocess.Popen[bytes]] = {}

    def log_path(self, name: str) -> Path:
        return self.logs_dir / f"{name}.log"

    def pid_path(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def pid(self, name: str) -> int | None:
        """The pid of the running process `name`, or None when it is not running."""
        child = self._children.get(name)
        if child is not None and child.poll() is not None:
            del self._children[name]
        try:
            lines = self.pid_path(name).read_text().split()
            pid = int(lines[0])
            start_ticks = int(lines[1]) if len(lines) > 1 else None
        except (OSError, ValueError, IndexError):
            return None
        return pid if process_alive(pid, start_ticks) else None

    def is_running(self, name: str) -> bool:
        return self.pid(name) is not None

    def has_exited(self, name: str) -> bool:
        """Started and not stopped, yet no longer running: it crashed or was killed."""
        return self.pid_path(name).exists() and not self.is_running(name)

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> int | None:
        """Start `argv` detached as `name`; its pid, or None when it already runs."""
        if self.is_running(name):
            return None
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path(name)
        if log.exists() and log.stat().st_size:
            log.replace(log.with_name(log.name + ".1"))  # keep the previous run for a post-mortem
        with log.open("ab") as out:
            stamp = datetime.now(UTC).isoformat(timespec="seconds")
            out.write(f"# {stamp} started: {shlex.join(argv)}\n".encode())
            out.flush()
            try:
                child = subprocess.Popen(
                    list(argv),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=dict(env) if env is not None else None,
                    cwd=cwd,
                    start_new_session=True,  # survives this command and its terminal
                )
            except OSError as e:
                raise StackError(f"{name}: cannot run {argv[0]}: {e}") from e
        self._children[name] = child
        start_ticks = process_start_ticks(child.pid)
        record = f"{child.pid}\n" + (f"{start_ticks}\n" if start_ticks is not None else "")
        tmp = self.pid_path(name).with_suffix(".tmp")
        tmp.write_text(record)
        tmp.replace(self.pid_path(name))
        return child.pid

    def stop(self, name: str, timeout: float = 10.0) -> bool:
        """SIGTERM the process group of `name`, SIGKILL after `timeout`; False if not running."""
        pid = self.pid(name)
        if pid is None:
            self.pid_path(name).unlink(missing_ok=True)
            return False
        try:
            group: int | None = pid if os.getpgid(pid) == pid else None
        except ProcessLookupError:
            group = None
        _signal(pid, group, signal.SIGTERM)
        if wait_until(lambda: not self.is_running(name), timeout) is not Wait.ready:
            _signal(pid, group, signal.SIGKILL)
            wait_until(lambda: not self.is_running(name), KILL_GRACE_S)
        if group is not None:
            _signal(pid, group, signal.SIGKILL)  # whatever the process left in its group goes too
        self.pid_path(name).unlink(missing_ok=True)
        return True

    def wait_ready(self, name: str, ready: Callable[[], bool], timeout: float) -> float:
        """Seconds until `ready()` held; raises with the log's end when `name` dies or stalls."""
        began = time.monotonic()
        outcome = wait_until(ready, timeout, alive=lambda: self.is_running(name))
        if outcome is Wait.ready:
            return time.monotonic() - began
        log = self.log_path(name)
        if outcome is Wait.died:
            raise StackError(with_log_tail(f"{name} exited before it was ready", log))
        raise StackError(with_log_tail(f"{name} was not ready after {timeout:.0f} s", log))

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Serialise stack commands so two `up`s cannot both start the same service."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with (self.run_dir / "stack.lock").open("a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)


def _signal(pid: int, group: int | None, sig: signal.Signals) -> None:
    """Signal the whole process group when the process leads one, else just the process."""
    try:
        if group is not None:
            os.killpg(group, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass
