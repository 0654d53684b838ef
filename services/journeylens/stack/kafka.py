"""The local Apache Kafka broker: real jars from Maven Central, KRaft single node, detached JVM.

Layout (``StackSettings.data_dir / "kafka"``)::

    server.properties   rendered from infra/kafka/server.properties.template
    log4j2.properties   broker logging -> stdout, which goes to broker.log
    broker.log          the JVM's stdout and stderr
    broker.pid          pid of the running JVM
    cluster.id          the KRaft cluster id the storage was formatted with
    log/                Kafka's log.dirs (metadata log and topic partitions)

Jars live in ``StackSettings.cache_dir / f"kafka-{KAFKA_VERSION}" / "libs"``, resolved by Maven
from infra/kafka/pom.xml only when missing.
"""

from __future__ import annotations

import base64
import ctypes
import os
import shutil
import signal
import socket
import struct
import subprocess
import uuid
from pathlib import Path

from journeylens.settings import KafkaSettings, StackSettings
from journeylens.stack.process import (
    ComponentStatus,
    Progress,
    WaitTimeout,
    no_progress,
    pid_alive,
    port_answers,
    port_is_free,
    process_runs,
    read_pid,
    tail,
    terminate,
    wait_until,
    write_pid,
)

KAFKA_VERSION = "4.1.1"
"""Must equal ``kafka.version`` in infra/kafka/pom.xml (a unit test checks)."""

HOST = "127.0.0.1"
JVM_OPTS = (
    "-Xms256m",
    "-Xmx512m",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-Djava.awt.headless=true",
)
MAVEN_TIMEOUT_S = 900.0
_PR_SET_PDEATHSIG = 1
FORMAT_TIMEOUT_S = 120.0

_LOG4J2 = """\
status = warn
shutdownHook = disable
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.out.ref = out
logger.request.name = kafka.request.logger
logger.request.level = warn
logger.clients.name = org.apache.kafka.clients
logger.clients.level = warn
"""


class KafkaStackError(RuntimeError):
    """The local broker could not be fetched, started or stopped; the message says why."""


def repo_root() -> Path:
    """The source tree this package is installed from (editable install, Docker image)."""
    return Path(__file__).resolve().parents[3]


class KafkaBroker:
    """One local KRaft broker+controller process, managed through files in its data dir."""

    name = "kafka"

    def __init__(
        self,
        stack: StackSettings,
        kafka: KafkaSettings | None = None,
        *,
        infra_dir: Path | None = None,
        die_with_parent: bool = False,
    ) -> None:
        """``die_with_parent``: Linux sends the JVM SIGTERM when the thread that started it ends
        (for tests, so a killed test run leaves no broker behind); off for ``stack up``."""
        self.stack = stack
        self.kafka = kafka or KafkaSettings()
        self.infra_dir = (infra_dir or repo_root() / "infra" / "kafka").resolve()
        self.data_dir = (stack.data_dir / "kafka").resolve()
        self.libs_dir = (stack.cache_dir / f"kafka-{KAFKA_VERSION}" / "libs").resolve()
        self.pid_file = self.data_dir / "broker.pid"
        self.log_file = self.data_dir / "broker.log"
        self.die_with_parent = die_with_parent
        self._child: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        """What clients pass as ``JOURNEYLENS_KAFKA_BOOTSTRAP_SERVERS`` to reach this broker."""
        return f"{HOST}:{self.stack.kafka_port}"

    # ----------------------------------------------------------------------------- jars

    def ensure_jars(self, progress: Progress = no_progress) -> Path:
        """Return the directory of broker jars, running Maven once if it is not cached yet."""
        marker = self.libs_dir / ".complete"
        if marker.exists():
            return self.libs_dir
        mvn = shutil.which("mvn")
        if mvn is None:
            raise KafkaStackError(
                "Maven (mvn) not found: install it (apt-get install maven) so the Kafka "
                f"{KAFKA_VERSION} jars can be fetched from Maven Central into {self.libs_dir}"
            )
        progress(f"fetching Kafka {KAFKA_VERSION} jars from Maven Central into {self.libs_dir}")
        staging = self.libs_dir.with_name(f"libs.partial-{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        self._run_maven(mvn, staging)
        (staging / marker.name).write_text(KAFKA_VERSION + "\n", encoding="ascii")
        if marker.exists():  # another process finished first: keep its copy
            shutil.rmtree(staging, ignore_errors=True)
            return self.libs_dir
        shutil.rmtree(self.libs_dir, ignore_errors=True)
        staging.replace(self.libs_dir)
        progress(f"Kafka jars ready ({sum(1 for _ in self.libs_dir.glob('*.jar'))} jars)")
        return self.libs_dir

    def _run_maven(self, mvn: str, output_dir: Path) -> None:
        command = maven_command(self.infra_dir / "pom.xml", output_dir, mvn=mvn)
        try:
            done = subprocess.run(  # noqa: S603 - fixed argv, no shell
                command, capture_output=True, text=True, timeout=MAVEN_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise KafkaStackError(f"Maven took over {MAVEN_TIMEOUT_S:.0f}s: {exc}") from exc
        if done.returncode != 0:
            output = "\n".join((done.stdout + done.stderr).splitlines()[-30:])
            raise KafkaStackError(
                f"Maven failed ({done.returncode}): {' '.join(command)}\n{output}"
            )

    # ---------------------------------------------------------------------------- start

    def start(self, progress: Progress = no_progress) -> None:
        """Start the broker unless it already runs; return once it answers metadata requests."""
        pid = read_pid(self.pid_file)
        if self._runs(pid):
            progress(f"kafka already running (pid {pid}) on {self.bootstrap_servers}")
            self._wait_ready(progress)
            return
        self.pid_file.unlink(missing_ok=True)
        self._check_ports_free()
        java = _find_java()
        libs = self.ensure_jars(progress)
        self._prepare_data_dir()
        self._format_storage(java, libs, progress)
        self._launch(java, libs, progress)
        waited = self._wait_ready(progress)
        progress(f"kafka ready on {self.bootstrap_servers} after {waited:.1f}s")

    def _check_ports_free(self) -> None:
        for port, setting in (
            (self.stack.kafka_port, "JOURNEYLENS_STACK_KAFKA_PORT"),
            (self.stack.kafka_controller_port, "JOURNEYLENS_STACK_KAFKA_CONTROLLER_PORT"),
        ):
            if not port_is_free(HOST, port):
                raise KafkaStackError(
                    f"port {HOST}:{port} is already in use by another process, so the local "
                    f"Kafka broker cannot listen there: stop that process or set {setting} "
                    "to a free port"
                )

    def _prepare_data_dir(self) -> None:
        (self.data_dir / "log").mkdir(parents=True, exist_ok=True)
        (self.data_dir / "server.properties").write_text(self.render_properties(), "utf-8")
        (self.data_dir / "log4j2.properties").write_text(_LOG4J2, encoding="utf-8")

    def render_properties(self) -> str:
        """server.properties for this broker, from the template in infra/kafka."""
        template = (self.infra_dir / "server.properties.template").read_text(encoding="utf-8")
        return template.format(
            host=HOST,
            port=self.stack.kafka_port,
            controller_port=self.stack.kafka_controller_port,
            log_dir=self.data_dir / "log",
        )

    def cluster_id(self) -> str:
        """The KRaft cluster id kept in the data dir (created on first use)."""
        path = self.data_dir / "cluster.id"
        if path.exists():
            return path.read_text(encoding="ascii").strip()
        value = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode("ascii")
        path.write_text(value + "\n", encoding="ascii")
        return value

    def _format_storage(self, java: str, libs: Path, progress: Progress) -> None:
        if (self.data_dir / "log" / "meta.properties").exists():
            return
        cluster_id = self.cluster_id()
        progress(f"formatting Kafka storage in {self.data_dir / 'log'} (cluster {cluster_id})")
        command = [
            *self._java_command(java, libs, "kafka.tools.StorageTool"),
            "format",
            # One argument: a base64 id may start with "-", which argparse would read as a flag.
            f"--cluster-id={cluster_id}",
            "--config",
            str(self.data_dir / "server.properties"),
            "--ignore-formatted",
        ]
        done = subprocess.run(  # noqa: S603 - fixed argv, no shell
            command, capture_output=True, text=True, timeout=FORMAT_TIMEOUT_S, check=False
        )
        if done.returncode != 0:
            output = "\n".join((done.stdout + done.stderr).splitlines()[-20:])
            raise KafkaStackError(f"kafka-storage format failed ({done.returncode}):\n{output}")

    def _java_command(self, java: str, libs: Path, main_class: str) -> list[str]:
        return [
            java,
            *JVM_OPTS,
            f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={self.data_dir}",
            "-cp",
            f"{libs}/*",
            main_class,
        ]

    def _launch(self, java: str, libs: Path, progress: Progress) -> None:
        command = [
            *self._java_command(java, libs, "kafka.Kafka"),
            str(self.data_dir / "server.properties"),
        ]
        progress(f"starting Kafka {KAFKA_VERSION} on {self.bootstrap_servers}, log {self.log_file}")
        with self.log_file.open("ab") as log:
            self._child = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                start_new_session=True,
                preexec_fn=_sigterm_on_parent_death if self.die_with_parent else None,
                env=_jvm_env(),
            )
        write_pid(self.pid_file, self._child.pid)

    def _wait_ready(self, progress: Progress) -> float:
        """Wait for a Metadata answer; on failure stop the JVM and raise with the log's tail."""
        pid = read_pid(self.pid_file)

        def ready() -> bool:
            if not pid_alive(pid):
                raise KafkaStackError("Kafka exited during start-up")
            return broker_is_ready(HOST, self.stack.kafka_port, self.kafka.client_id)

        try:
            return wait_until(ready, self.stack.startup_timeout_s, "Kafka to be ready", progress)
        except WaitTimeout as exc:
            self.stop(timeout_s=10.0, progress=progress)
            reason = f"{exc} (JOURNEYLENS_STACK_STARTUP_TIMEOUT_S)"
            raise KafkaStackError(f"{reason}; {self._log_tail()}") from exc
        except KafkaStackError as exc:
            self.stop(timeout_s=10.0, progress=progress)
            raise KafkaStackError(f"{exc}; {self._log_tail()}") from None

    def _log_tail(self, lines: int = 20) -> str:
        return f"last {lines} lines of {self.log_file}:\n{tail(self.log_file, lines)}"

    # ------------------------------------------------------------------- stop / status

    def stop(self, timeout_s: float = 30.0, progress: Progress = no_progress) -> None:
        """Shut the broker down cleanly (SIGTERM), killing it after ``timeout_s``."""
        pid = read_pid(self.pid_file)
        if pid is not None and self._runs(pid):
            progress(f"stopping kafka (pid {pid})")
            if not terminate(pid, timeout_s):
                progress(f"kafka did not stop within {timeout_s:.0f}s and was killed")
        self.pid_file.unlink(missing_ok=True)
        self._forget_child()

    def _runs(self, pid: int | None) -> bool:
        """True when ``pid`` is this data dir's broker JVM (not a reused pid)."""
        return process_runs(pid, str(self.data_dir / "server.properties"))

    def _forget_child(self) -> None:
        """Collect the exit status of a JVM this object launched (no zombie, no warning)."""
        if self._child is not None:
            self._child.poll()
            self._child = None

    def status(self) -> ComponentStatus:
        """Whether the broker runs and answers, from its pid file and a metadata request."""
        pid = read_pid(self.pid_file)
        if not self._runs(pid):
            detail = "stale pid file" if pid is not None else "not started"
            return ComponentStatus(self.name, False, None, self.bootstrap_servers, detail)
        if broker_is_ready(HOST, self.stack.kafka_port, self.kafka.client_id):
            detail = f"Kafka {KAFKA_VERSION}, ready, data {self.data_dir}"
        elif port_answers(HOST, self.stack.kafka_port):
            detail = f"Kafka {KAFKA_VERSION}, starting (port open, no metadata yet)"
        else:
            detail = f"Kafka {KAFKA_VERSION}, starting (port closed)"
        return ComponentStatus(self.name, True, pid, self.bootstrap_servers, detail)


def maven_command(pom: Path, output_dir: Path, mvn: str = "mvn") -> list[str]:
    """The Maven invocation that copies the broker jars into ``output_dir``."""
    return [
        mvn,
        "-q",
        "-B",
        "-f",
        str(pom),
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-Dkafka.version={KAFKA_VERSION}",
        f"-DoutputDirectory={output_dir}",
    ]


def _find_java() -> str:
    java = shutil.which("java")
    if java is None:
        raise KafkaStackError(
            "Java not found: Kafka needs a Java 17+ runtime on PATH "
            "(apt-get install openjdk-17-jre-headless)"
        )
    return java


def _sigterm_on_parent_death() -> None:
    """In the forked child: ask Linux to SIGTERM it when the launching thread exits."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _jvm_env() -> dict[str, str]:
    """The environment for the JVM, without options that would override the launcher's."""
    env = dict(os.environ)
    for name in ("JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS", "CLASSPATH"):
        env.pop(name, None)
    return env


# ------------------------------------------------------------ readiness: a real Metadata request

_METADATA_API_KEY = 3
_METADATA_VERSION = 4  # Kafka 4.x serves Metadata v4..v13; v4 has the simplest non-flexible form.


def broker_is_ready(
    host: str, port: int, client_id: str = "journeylens", timeout_s: float = 2.0
) -> bool:
    """True when the broker answers a Metadata request listing at least one live broker."""
    try:
        return metadata_broker_count(host, port, client_id, timeout_s) > 0
    except (OSError, ValueError, struct.error):
        return False


def metadata_broker_count(host: str, port: int, client_id: str, timeout_s: float) -> int:
    """Send Metadata v4 (no topics) over plain TCP and return how many brokers it lists."""
    client = client_id.encode("utf-8")
    request = (
        struct.pack(">hhih", _METADATA_API_KEY, _METADATA_VERSION, 1, len(client))
        + client
        + struct.pack(">ib", 0, 0)  # topics: empty array; allow_auto_topic_creation: false
    )
    with socket.create_connection((host, port), timeout=timeout_s) as sock:
        sock.sendall(struct.pack(">i", len(request)) + request)
        size = struct.unpack(">i", _recv_exact(sock, 4))[0]
        body = _recv_exact(sock, size)
    correlation_id, _throttle_ms, broker_count = struct.unpack_from(">iii", body)
    if correlation_id != 1:
        raise ValueError(f"unexpected correlation id {correlation_id}")
    return int(broker_count)


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        chunks.extend(chunk)
    return bytes(chunks)


def main(argv: list[str] | None = None) -> int:
    """``python -m journeylens.stack.kafka jars|start|stop|status|topics`` (CLI stand-in)."""
    import argparse
    import asyncio

    from journeylens.stack.topics import DEFAULT_TOPICS_DIR, ensure_topics, load_topic_specs

    parser = argparse.ArgumentParser(prog="python -m journeylens.stack.kafka")
    parser.add_argument("command", choices=["jars", "start", "stop", "status", "topics"])
    command = parser.parse_args(argv).command
    kafka = KafkaSettings()
    broker = KafkaBroker(StackSettings(), kafka)
    try:
        if command == "jars":
            print(broker.ensure_jars(print))
        elif command == "start":
            broker.start(print)
        elif command == "stop":
            broker.stop(progress=print)
        elif command == "topics":
            asyncio.run(ensure_topics(kafka, load_topic_specs(DEFAULT_TOPICS_DIR), print))
        print(broker.status())
    except KafkaStackError as exc:
        print(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
