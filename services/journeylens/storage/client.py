"""ClickHouse clients from one DSN: the embedded engine (``chdb://``) or a server (``http(s)://``).

Accepted forms of ``JOURNEYLENS_CLICKHOUSE_DSN``::

    chdb:///abs/path                       embedded engine, data in /abs/path
    chdb://relative/path                   embedded engine, data relative to the working dir
    chdb://relative/path?database=name     the database (default ``journeylens``)
    http://user:password@host:port/db      a ClickHouse server (port 8123 by default)
    https://user:password@host:port/db     the same over TLS (port 8443 by default)

Both give a ``clickhouse_connect`` client, so the same SQL and the same code run on either.

chdb's embedded engine (chdb 4.4 / chdb-core 26.9, seen through clickhouse-connect 1.12):

- One engine per process: while any client on ``/a`` is open, connecting to ``/b`` in the same
  process raises (``EmbeddedServer already initialized with path '/a'``). Several clients on the
  same path share one engine. Once every client on ``/a`` is closed the process may open ``/b``,
  and later reopen ``/a`` (its data is still there).
- One process per data path: a second process opening a path in use fails (the engine prints
  ``Cannot lock file <path>/status. Another server instance in same directory is already
  running`` and raises a vague error; `make_client` raises `DataPathBusy` instead). For
  several processes on one machine run the local server (`journeylens.stack.clickhouse_server`)
  and point every process at its ``http://`` DSN.
"""

from __future__ import annotations

import fcntl
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, quote, unquote, urlsplit

import clickhouse_connect

DSN_ENV = "JOURNEYLENS_CLICKHOUSE_DSN"
DEFAULT_DATABASE = "journeylens"
ACCEPTED_FORMS = (
    "chdb:///abs/path",
    "chdb://relative/path[?database=name]",
    "http://user:password@host:port/database",
    "https://user:password@host:port/database",
)
_DEFAULT_PORTS = {"http": 8123, "https": 8443}
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PASSWORD = re.compile(r"(://[^/@:]*:)([^@]*)@")

Client = Any
"""A ``clickhouse_connect`` client (HTTP or chDB-backed); the library ships no stable type."""


class ConfigError(ValueError):
    """A setting has a value we cannot use; the message names the setting and how to fix it."""


class DataPathBusy(RuntimeError):
    """Another process holds the chdb data path (chdb serves one process per path)."""


@dataclass(frozen=True, slots=True)
class ClickHouseTarget:
    """Where a DSN points: an embedded data path or a server, and the database to use."""

    scheme: Literal["chdb", "http", "https"]
    database: str
    path: Path | None = None
    host: str = ""
    port: int = 0
    username: str = "default"
    password: str = ""

    @property
    def embedded(self) -> bool:
        """True for the in-process chDB engine."""
        return self.scheme == "chdb"

    def masked(self) -> str:
        """The DSN with the password hidden, for logs and error messages."""
        return self._render("***" if self.password else "")

    def dsn(self) -> str:
        """The DSN back, password included (parse_dsn(t.dsn()) == t)."""
        return self._render(quote(self.password, safe=""))

    def _render(self, password: str) -> str:
        if self.embedded:
            return f"chdb://{self.path}?database={self.database}"
        user = quote(self.username, safe="")
        return f"{self.scheme}://{user}:{password}@{self.host}:{self.port}/{self.database}"


def mask_dsn(dsn: str) -> str:
    """``dsn`` with anything in the password position replaced by ``***``."""
    return _PASSWORD.sub(lambda match: f"{match.group(1)}***@", dsn)


def parse_dsn(dsn: str) -> ClickHouseTarget:
    """Parse ``JOURNEYLENS_CLICKHOUSE_DSN``; raise `ConfigError` saying what to fix."""
    try:
        parts = urlsplit(dsn.strip())
        if parts.scheme == "chdb":
            return _parse_chdb(parts.netloc, parts.path, parts.query)
        if parts.scheme in _DEFAULT_PORTS:
            return _parse_http(dsn.strip())
        raise ValueError(f"unknown scheme {parts.scheme!r}")
    except ValueError as exc:
        raise ConfigError(
            f"{DSN_ENV} is not a usable ClickHouse DSN ({exc}): got {mask_dsn(dsn)!r}; "
            f"accepted forms: {', '.join(ACCEPTED_FORMS)}"
        ) from exc


def _parse_chdb(netloc: str, path: str, query: str) -> ClickHouseTarget:
    if "@" in netloc:
        raise ValueError("a chdb DSN takes no user or password")
    location = unquote(netloc + path)
    if not location:
        raise ValueError("the chdb data path is empty")
    params = parse_qs(query, keep_blank_values=True)
    unknown = sorted(set(params) - {"database"})
    if unknown:
        raise ValueError(f"unknown chdb DSN parameter(s) {', '.join(unknown)}")
    database = params.get("database", [DEFAULT_DATABASE])[-1]
    return ClickHouseTarget("chdb", _database_name(database), path=Path(location))


def _parse_http(dsn: str) -> ClickHouseTarget:
    parts = urlsplit(dsn)
    if not parts.hostname:
        raise ValueError("the host is missing")
    if parts.query or parts.fragment:
        raise ValueError("query parameters are not supported")
    segments = [segment for segment in parts.path.split("/") if segment]
    if len(segments) > 1:
        raise ValueError("the path must be a single database name")
    scheme: Literal["http", "https"] = "https" if parts.scheme == "https" else "http"
    return ClickHouseTarget(
        scheme,
        _database_name(unquote(segments[0]) if segments else DEFAULT_DATABASE),
        host=parts.hostname,
        port=parts.port or _DEFAULT_PORTS[scheme],  # .port raises ValueError when garbled
        username=unquote(parts.username or "default"),
        password=unquote(parts.password or ""),
    )


def _database_name(name: str) -> str:
    if not _IDENTIFIER.match(name):
        raise ValueError(f"database name {name!r} must match {_IDENTIFIER.pattern}")
    return name


def make_client(dsn: str, *, create_database: bool = True) -> Client:
    """A ``clickhouse_connect`` client on the DSN's database (created first unless told not to)."""
    return client_for(parse_dsn(dsn), create_database=create_database)


def client_for(target: ClickHouseTarget, *, create_database: bool = True) -> Client:
    """A client for an already parsed target; see `make_client`."""
    client = _connect(target)
    try:
        if create_database:
            client.command(f"CREATE DATABASE IF NOT EXISTS {target.database}")
        client.database = target.database
    except Exception:
        client.close()
        raise
    return client


def _connect(target: ClickHouseTarget) -> Client:
    if target.embedded:
        assert target.path is not None
        return _connect_embedded(target.path.resolve())
    return clickhouse_connect.get_client(
        interface=target.scheme,
        host=target.host,
        port=target.port,
        username=target.username,
        password=target.password,
        database="default",
    )


def _connect_embedded(path: Path) -> Client:
    path.mkdir(parents=True, exist_ok=True)
    try:
        # interface + path, not dsn=: clickhouse-connect reads chdb://rel/path as netloc "rel"
        # plus database "path".
        return clickhouse_connect.get_client(interface="chdb", path=str(path))
    except Exception as exc:
        holder = _status_lock_holder(path)
        if holder is None:
            raise
        raise DataPathBusy(
            f"the chdb data path {path} is in use by another process ({holder}); chdb serves "
            "one process per path: stop that process, or run the local server "
            "(journeylens.stack.clickhouse_server) and set JOURNEYLENS_CLICKHOUSE_DSN to its "
            "http:// DSN in every process"
        ) from exc


def _status_lock_holder(path: Path) -> str | None:
    """What ClickHouse's ``status`` file says about the process locking it, None if unlocked."""
    status = path / "status"
    try:
        with status.open("rb") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return handle.read(200).decode("utf-8", "replace").splitlines()[0] or "locked"
            fcntl.flock(handle, fcntl.LOCK_UN)
    except OSError:
        return None
    return None
