"""``journeylens up``: the whole system on one machine, on the embedded defaults.

Starts the local Kafka and ClickHouse (reusing their data), then every JourneyLens role as a
child process of its own — demo shop, collector, worker, API + dashboard, a probe and the
real-user traffic simulator — waits until each answers, prints the dashboard URL, and on
Ctrl-C (or SIGTERM) stops the children, then the stack, cleanly.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from journeylens.stack.local import LocalStack
from journeylens.stack.process import Progress, terminate, wait_until

DEMO_TOKEN = "journeylens-demo"  # noqa: S105 - the documented local demo token


@dataclass(frozen=True)
class Role:
    name: str
    argv: tuple[str, ...]
    ready_url: str | None = None
    """An HTTP URL that answers < 500 once the role serves; None: alive after a few seconds."""


@dataclass
class Ports:
    collector: int = 8400
    api: int = 8500
    shop: int = 8600
    payment: int = 8601
    cdn: int = 8602
    sso: int = 8603


@dataclass
class UpPlan:
    stack: LocalStack
    ports: Ports = field(default_factory=Ports)
    simulator: bool = True
    probe: bool = True
    sessions_per_minute: int = 120

    def environment(self) -> dict[str, str]:
        """What every child gets: the stack's endpoints and the demo's wiring."""
        p = self.ports
        env = {
            **os.environ,
            "JOURNEYLENS_KAFKA_BOOTSTRAP_SERVERS": self.stack.broker.bootstrap_servers,
            "JOURNEYLENS_CLICKHOUSE_DSN": self.stack.server.http_dsn,
            "JOURNEYLENS_COLLECTOR_PORT": str(p.collector),
            "JOURNEYLENS_API_PORT": str(p.api),
            "JOURNEYLENS_DEMO_SHOP_SHOP_PORT": str(p.shop),
            "JOURNEYLENS_DEMO_SHOP_PAYMENT_PORT": str(p.payment),
            "JOURNEYLENS_DEMO_SHOP_CDN_PORT": str(p.cdn),
            "JOURNEYLENS_DEMO_SHOP_SSO_PORT": str(p.sso),
            "JOURNEYLENS_DEMO_SHOP_COLLECTOR_URL": f"http://127.0.0.1:{p.collector}",
            "JOURNEYLENS_COLLECTOR_COUNTRY_HEADER": "CF-IPCountry",
        }
        env.setdefault("JOURNEYLENS_API_DEV_TOKEN", DEMO_TOKEN)
        return env

    def roles(self) -> list[Role]:
        p = self.ports
        local = "http://127.0.0.1"
        probe_vars = (
            "--var", f"shop={local}:{p.shop}", "--var", f"pay={local}:{p.payment}",
            "--var", f"cdn={local}:{p.cdn}", "--var", f"sso={local}:{p.sso}",
        )  # fmt: skip
        roles = [
            Role("demo-shop", ("demo-shop", "serve"), f"{local}:{p.shop}/"),
            Role("collector", ("collector",), f"{local}:{p.collector}/healthz"),
            Role("worker", ("worker",)),
            Role("api", ("api",), f"{local}:{p.api}/openapi.json"),
        ]
        if self.probe:
            roles.append(Role("probe", ("probe", *probe_vars)))
        if self.simulator:
            roles.append(
                Role(
                    "simulator",
                    (
                        "simulate",
                        "--collector",
                        f"{local}:{p.collector}",
                        "--shop",
                        f"{local}:{p.shop}",
                        "--sessions-per-minute",
                        str(self.sessions_per_minute),
                    ),
                )  # fmt: skip
            )
        return roles


class Supervisor:
    """Starts roles as child processes with logs under the data dir; stops them in reverse."""

    def __init__(self, plan: UpPlan, log_dir: Path, progress: Progress) -> None:
        self.plan = plan
        self.log_dir = log_dir
        self.progress = progress
        self.children: list[tuple[Role, subprocess.Popen[bytes]]] = []
        self._started_at: dict[int, float] = {}

    def start_all(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = self.plan.environment()
        for role in self.plan.roles():
            self._start(role, env)

    def _start(self, role: Role, env: dict[str, str]) -> None:
        log_path = self.log_dir / f"{role.name}.log"
        with log_path.open("ab") as log:
            child = subprocess.Popen(  # noqa: S603 - our own CLI, fixed argv
                [sys.executable, "-m", "journeylens.cli.main", *role.argv],
                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self.children.append((role, child))
        self._started_at[child.pid] = time.monotonic()
        self.progress(f"starting {role.name} (pid {child.pid}, log {log_path})")
        waited = wait_until(
            lambda: self._ready(role, child, log_path), 90.0, role.name, self.progress
        )
        self.progress(f"{role.name} ready after {waited:.1f}s")

    def _ready(self, role: Role, child: subprocess.Popen[bytes], log: Path) -> bool:
        if child.poll() is not None:
            tail = log.read_text(errors="replace").splitlines()[-15:]
            raise RuntimeError(
                f"{role.name} exited with {child.returncode}; last lines of {log}:\n"
                + "\n".join(tail)
            )
        if role.ready_url is None:
            return time.monotonic() - self._started_at[child.pid] > 3.0
        return _answers(role.ready_url)

    def failed(self) -> tuple[Role, int] | None:
        for role, child in self.children:
            if child.poll() is not None:
                return role, child.returncode
        return None

    def stop_all(self) -> None:
        for role, child in reversed(self.children):
            if child.poll() is None:
                self.progress(f"stopping {role.name} (pid {child.pid})")
                terminate(child.pid, 20.0)
            child.wait(timeout=5)
        self.children.clear()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
            return int(response.status) < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except OSError:
        return False


def run_up(plan: UpPlan, progress: Progress, announce: Callable[[str], None]) -> int:
    """Start everything, announce the dashboard, wait for Ctrl-C or a child's death."""
    stopping = False

    def on_signal(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    supervisor = Supervisor(plan, plan.stack.stack.data_dir.resolve() / "logs", progress)
    code = 0
    try:
        plan.stack.up(progress)
        supervisor.start_all()
        token = plan.environment()["JOURNEYLENS_API_DEV_TOKEN"]
        ports = plan.ports
        announce(f"dashboard: http://127.0.0.1:{ports.api}/  (token: {token})")
        announce(f"demo shop: http://127.0.0.1:{ports.shop}/")
        announce(f"collector: http://127.0.0.1:{ports.collector}/")
        announce("press Ctrl-C to stop everything")
        while not stopping:
            dead = supervisor.failed()
            if dead is not None:
                progress(f"{dead[0].name} exited with {dead[1]}; stopping (see its log)")
                code = 1
                break
            time.sleep(0.5)
    finally:
        progress("stopping …")
        supervisor.stop_all()
        plan.stack.down(progress)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code
