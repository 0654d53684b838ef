"""The local ClickHouse server: chdb-core's own HTTP and TCP listeners, in a detached process.

The embedded engine (``chdb://``) serves one process. When several processes on one machine need
the same data (collector, workers, API), this module runs the real engine in a child process
and opens ClickHouse's HTTP and TCP servers in it, so every process connects over ``http://``
exactly as it would to a production server.

The trick (chdb 4.4.0, chdb-core 26.9.0; undocumented, guarded by tests/integration):
with a ``config.xml`` naming ``listen_host``/``http_port``/``tcp_port`` in the working
directory, ``SYSTEM START LISTEN HTTP; SYSTEM START LISTEN TCP;`` followed by a long-running
query in the same ``_chdb.query(..., "TabSeparated", path=...)`` call keeps real listeners open
while the query runs. Quirks found on the way:

- Only ``_chdb.query`` can start them; ``_chdb.connect(path).query(...)`` fails with
  ``start_servers_callback is not set``.
- A second ``_chdb.query`` with a path in the same process fails (``EventNotifier is
  initialized twice``), so the listeners cannot be re-opened by looping over short queries:
  the long-running query reads the endless ``system.numbers`` one row per block, sleeping
  between rows. If it ever returns the child exits non-zero and `status` shows it stopped.
- ``sleepEachRow`` sleeps at most 3 s per block (``function_sleep_max_microseconds_per_block``),
  hence ``max_block_size = 1``.
- Engine errors of that call are printed to stderr (the log file); ``has_error()`` stays False.
- ``import chdb`` reads ``config.xml`` from the working directory, so the child changes into
  its own directory before importing chdb and a ``config.xml`` never lands at the repo root.

Layout (``StackSettings.data_dir / "clickhouse"``)::

    (ClickHouse's data: metadata/, store/, data/, ...)  the chdb data path, the same directory
                                                        the default DSN chdb://.data/clickhouse
                                                        opens, so data survives a mode switch
    server/config.xml     listen_host 127.0.0.1, http_port, tcp_port
    server/server.log     the child's stdout and stderr
    server/server.pid     pid of the running child

Start: ``ClickHouseServer(StackSettings()).start(print)``; the child is
``python -m journeylens.stack.clickhouse_server serve --home ... --data-path ... --http-port ...
--tcp-port ...``. Stop: `ClickHouseServer.stop` (SIGTERM, then SIGKILL after the timeout).
"""

from __future__ import annotations

import argparse
import http.client
import importlib
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

from journeylens.settings import ClickHouseSettings, StackSettings
from journeylens.stack.process import (
    ComponentStatus,
    Progress,
    WaitTimeout,
    no_progress,
    pid_alive,
    port_answers,
    port_is_free,
    read_pid,
    tail,
    terminate,
    wait_until,
    write_pid,
)
from journeylens.storage.client import DEFAULT_DATABASE, ConfigError, parse_dsn

HOST = "127.0.0.1"
CONFIG_XML = """\
<clickhouse>
    <listen_host>{host}</listen_host>
    <http_port>{http_port}</http_port>
    <tcp_port>{tcp_port}</tcp_port>
</clickhouse>
"""
SERVE_SQL = (
    "SYSTEM START LISTEN HTTP; SYSTEM START LISTEN TCP; "
    "SELECT sleepEachRow(1) FROM system.numbers SETTINGS max_block_size = 1 FORMAT Null"
)


class ClickHouseServerError(RuntimeError):
    """The local ClickHouse server could not be started or stopped; the message says why."""


class ClickHouseServer:
    """One local chdb-core process with HTTP and TCP listeners, managed through files."""

    name = "clickhouse"

    def __init__(self, stack: StackSettings, clickhouse: ClickHouseSettings | None = None) -> None:
        self.stack = stack
        self.database = _database_of(clickhouse or ClickHouseSettings())
        self.data_path = (stack.data_dir / "clickhouse").resolve()
        self.home = self.data_path / "server"
        self.pid_file = self.home / "server.pid"
        self.log_file = self.home / "server.log"

    @property
    def http_port(self) -> int:
        return self.stack.clickhouse_http_port

    @property
    def tcp_port(self) -> int:
        return self.stack.clickhouse_tcp_port

    @property
    def http_dsn(self) -> str:
        """What clients pass as ``JOURNEYLENS_CLICKHOUSE_DSN`` to reach this server."""
        return f"http://default:@{HOST}:{self.http_port}/{self.database}"

    # ---------------------------------------------------------------------------- start

    def start(self, progress: Progress = no_progress) -> float:
        """Start the server unless it already runs; return the seconds spent waiting for ready."""
        pid = read_pid(self.pid_file)
        if pid_alive(pid):
            progress(f"clickhouse already running (pid {pid}) on {HOST}:{self.http_port}")
            return self._wait_ready(progress)
        self.pid_file.unlink(missing_ok=True)
        self._check_ports_free()
        self._launch(progress)
        waited = self._wait_ready(progress)
        progress(f"clickhouse ready on {HOST}:{self.http_port} after {waited:.1f}s")
        return waited

    def _check_ports_free(self) -> None:
        for port, setting in (
            (self.http_port, "JOURNEYLENS_STACK_CLICKHOUSE_HTTP_PORT"),
            (self.tcp_port, "JOURNEYLENS_STACK_CLICKHOUSE_TCP_PORT"),
        ):
            if not port_is_free(HOST, port):
                raise ClickHouseServerError(
                    f"port {HOST}:{port} is already in use by another process, so the local "
                    f"ClickHouse server cannot listen there: stop that process or set {setting} "
                    "to a free port"
                )

    def serve_command(self) -> list[str]:
        """The argv of the child process."""
        return [
            sys.executable,
            "-m",
            __name__,
            "serve",
            "--home",
            str(self.home),
            "--data-path",
            str(self.data_path),
            "--http-port",
            str(self.http_port),
            "--tcp-port",
            str(self.tcp_port),
        ]

    def _launch(self, progress: Progress) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        progress(
            f"starting ClickHouse (chdb-core) on {HOST}:{self.http_port} (http) and "
            f"{HOST}:{self.tcp_port} (tcp), data {self.data_path}, log {self.log_file}"
        )
        with self.log_file.open("ab") as log:
            child = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                self.serve_command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.home,
                start_new_session=True,
            )
        write_pid(self.pid_file, child.pid)

    def _wait_ready(self, progress: Progress) -> float:
        pid = read_pid(self.pid_file)

        def ready() -> bool:
            if not pid_alive(pid):
                raise ClickHouseServerError(
                    f"ClickHouse exited during start-up; last lines of {self.log_file}:\n"
                    + tail(self.log_file)
                )
            return server_is_ready(HOST, self.http_port)

        try:
            return wait_until(
                ready, self.stack.startup_timeout_s, "ClickHouse to be ready", progress, 0.05
            )
        except WaitTimeout as exc:
            raise ClickHouseServerError(
                f"{exc} (JOURNEYLENS_STACK_STARTUP_TIMEOUT_S); last lines of {self.log_file}:\n"
                + tail(self.log_file)
            ) from exc

    # ------------------------------------------------------------------- stop / status

    def stop(self, timeout_s: float = 30.0, progress: Progress = no_progress) -> None:
        """Stop the server (SIGTERM), killing it after ``timeout_s``."""
        pid = read_pid(self.pid_file)
        if pid_alive(pid):
            assert pid is not None
            progress(f"stopping clickhouse (pid {pid})")
            if not terminate(pid, timeout_s):
                progress(f"clickhouse did not stop within {timeout_s:.0f}s and was killed")
            self._wait_ports_closed(timeout_s)
        self.pid_file.unlink(missing_ok=True)

    def _wait_ports_closed(self, timeout_s: float) -> None:
        """Wait for the listeners to go: the engine's threads outlive the main thread a little,
        and meanwhile /proc shows the process as a zombie, so `pid_alive` is already False."""

        def closed() -> bool:
            return not any(port_answers(HOST, port) for port in (self.http_port, self.tcp_port))

        try:
            wait_until(closed, timeout_s, "ClickHouse's ports to close", interval_s=0.05)
        except WaitTimeout as exc:
            raise ClickHouseServerError(
                f"{exc}: something still listens on {HOST}:{self.http_port} or "
                f"{HOST}:{self.tcp_port} after the server process exited"
            ) from exc

    def status(self) -> ComponentStatus:
        """Whether the server runs and answers, from its pid file and ``/ping`` + ``SELECT 1``."""
        address = f"{HOST}:{self.http_port}"
        pid = read_pid(self.pid_file)
        if not pid_alive(pid):
            detail = "stale pid file" if pid is not None else "not started"
            return ComponentStatus(self.name, False, None, address, detail)
        if server_is_ready(HOST, self.http_port):
            detail = f"ready, tcp {HOST}:{self.tcp_port}, data {self.data_path}"
        else:
            detail = "starting (no answer to /ping yet)"
        return ComponentStatus(self.name, True, pid, address, detail)


def _database_of(settings: ClickHouseSettings) -> str:
    try:
        return parse_dsn(settings.dsn.get_secret_value()).database
    except ConfigError:
        return DEFAULT_DATABASE


# ------------------------------------------------------------------------------ readiness


def server_is_ready(host: str, port: int, timeout_s: float = 2.0) -> bool:
    """True when ``GET /ping`` answers ``Ok.`` and ``SELECT 1`` returns 1 over HTTP."""
    try:
        return (
            http_get(host, port, "/ping", timeout_s) == "Ok.\n"
            and http_get(host, port, "/?query=" + quote("SELECT 1"), timeout_s) == "1\n"
        )
    except (OSError, http.client.HTTPException):
        return False


def http_get(host: str, port: int, path: str, timeout_s: float) -> str:
    """The body of a ``GET`` (raises `http.client.HTTPException` unless the status is 200)."""
    connection = http.client.HTTPConnection(host, port, timeout=timeout_s)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read().decode("utf-8", errors="replace")
    finally:
        connection.close()
    if response.status != 200:
        raise http.client.HTTPException(f"HTTP {response.status}: {body[:200]}")
    return body


# ---------------------------------------------------------------------------- the child


def serve(home: Path, data_path: Path, http_port: int, tcp_port: int) -> int:
    """Run in the child: write config.xml into ``home``, open the listeners, block forever."""
    home.mkdir(parents=True, exist_ok=True)
    data_path.mkdir(parents=True, exist_ok=True)
    config = CONFIG_XML.format(host=HOST, http_port=http_port, tcp_port=tcp_port)
    (home / "config.xml").write_text(config, encoding="utf-8")
    os.chdir(home)  # before importing chdb: it reads config.xml from the working directory
    engine = importlib.import_module("chdb._chdb")

    print(f"serving {data_path} on http {HOST}:{http_port}, tcp {HOST}:{tcp_port}", flush=True)
    result = engine.query(SERVE_SQL, "TabSeparated", path=str(data_path))
    error = result.error_message() if result.has_error() else "see the engine output above"
    print(f"the listener query returned, so the server stops: {error}", flush=True)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m journeylens.stack.clickhouse_server serve ...``."""
    parser = argparse.ArgumentParser(prog="python -m journeylens.stack.clickhouse_server")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="run the server in the foreground")
    serve_parser.add_argument("--home", type=Path, required=True)
    serve_parser.add_argument("--data-path", type=Path, required=True)
    serve_parser.add_argument("--http-port", type=int, required=True)
    serve_parser.add_argument("--tcp-port", type=int, required=True)
    args = parser.parse_args(argv)
    return serve(args.home.resolve(), args.data_path.resolve(), args.http_port, args.tcp_port)


if __name__ == "__main__":
    sys.exit(main())
