"""Small process helpers shared by the local real components (Kafka broker, ClickHouse server).

Each component runs as a detached child process (its own session) with a pid file and a log file
in its data directory; these helpers read that state and wait on it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

Progress = Callable[[str], None]


def no_progress(_line: str) -> None:
    """A progress sink that drops every line."""


@dataclass(frozen=True, slots=True)
class ComponentStatus:
    """What `journeylens stack status` shows for one local component."""

    name: str
    running: bool
    pid: int | None = None
    address: str | None = None
    detail: str = ""


class WaitTimeout(TimeoutError):
    """Raised by `wait_until` when the predicate never held in time."""


def port_is_free(host: str, port: int) -> bool:
    """True when nothing listens on ``host:port`` and it can be bound."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return not port_answers(host, port)


def port_answers(host: str, port: int, timeout_s: float = 0.5) -> bool:
    """True when a TCP connection to ``host:port`` is accepted."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS reports free right now (for tests; racy by nature)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def read_pid(path: Path) -> int | None:
    """The pid stored in ``path``, or None when the file is missing or garbled."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def write_pid(path: Path, pid: int) -> None:
    """Store ``pid`` in ``path`` (atomically, so a reader never sees half a number)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(f"{pid}\n", encoding="ascii")
    tmp.replace(path)


def pid_alive(pid: int | None) -> bool:
    """True when ``pid`` names a live process (zombies count as dead)."""
    if pid is None or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def process_runs(pid: int | None, argument: str) -> bool:
    """True when ``pid`` is alive and ``argument`` is one of its command-line arguments.

    Guards against pid reuse: a stale pid file must never make us signal an unrelated process.
    """
    if not pid_alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return argument.encode() in cmdline.split(b"\0")


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc); OSError when gone."""
    stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    # The fields follow the parenthesised command name, which may hold spaces.
    fields = stat.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _is_zombie(pid: int) -> bool:
    """True when ``pid`` has exited but was not reaped yet.

    A multithreaded process (a JVM) whose leader thread ended while other threads still run also
    shows state Z, so a zombie must also have no thread left but the leader.
    """
    _reap(pid)
    proc = Path(f"/proc/{pid}")
    try:
        stat = (proc / "stat").read_text(encoding="ascii", errors="replace")
        threads = sum(1 for _ in (proc / "task").iterdir())
    except OSError:
        return False
    # The state letter follows the parenthesised command name, which may hold spaces.
    return stat.rpartition(")")[2].split()[:1] == ["Z"] and threads <= 1


def _reap(pid: int) -> None:
    """Collect ``pid``'s exit status if it is our child, so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def wait_until(
    predicate: Callable[[], bool],
    timeout_s: float,
    what: str,
    progress: Progress = no_progress,
    interval_s: float = 0.25,
    report_every_s: float = 5.0,
) -> float:
    """Poll ``predicate`` until it is true; return the seconds waited.

    Reports ``waiting for <what> (Ns)`` through ``progress`` every ``report_every_s`` and raises
    `WaitTimeout` naming ``what`` after ``timeout_s``.
    """
    start = time.monotonic()
    next_report = start + report_every_s
    while True:
        if predicate():
            return time.monotonic() - start
        now = time.monotonic()
        if now - start >= timeout_s:
            raise WaitTimeout(f"timed out after {timeout_s:.0f}s waiting for {what}")
        if now >= next_report:
            progress(f"waiting for {what} ({now - start:.0f}s)")
            next_report = now + report_every_s
        time.sleep(interval_s)


def terminate(pid: int, timeout_s: float) -> bool:
    """SIGTERM ``pid``, wait up to ``timeout_s``, then SIGKILL; True if it stopped cleanly.

    Returns False when it had to be killed. A pid that is already gone counts as clean.
    """
    if not _signal(pid, signal.SIGTERM):
        return True
    try:
        wait_until(lambda: not pid_alive(pid), timeout_s, f"process {pid} to exit", interval_s=0.1)
    except WaitTimeout:
        _signal(pid, signal.SIGKILL)
        wait_until(lambda: not pid_alive(pid), 10.0, f"process {pid} to die", interval_s=0.1)
        return False
    return True


def _signal(pid: int, sig: signal.Signals) -> bool:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True


def tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a text file ('' when it does not exist)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            data = handle.read()
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", errors="replace").splitlines()[-lines:])
