"""Forward-only ClickHouse migrations from ``infra/clickhouse/migrations/NNNN_name.sql``.

Rules for a migration file:

- ``NNNN`` is its version (applied in ascending order); ``name`` says what it does.
- Statements end with ``;`` at the end of a line; the runner splits on that and runs each one.
- ``{database}`` stands for the target database (``journeylens`` in production, one per test
  module in the suite), so write ``CREATE TABLE IF NOT EXISTS {database}.rum_events ...``.
- Every statement is idempotent (``IF NOT EXISTS``, ``ADD COLUMN IF NOT EXISTS`` ...): a file
  that failed half-way is recorded only when it completes, and is re-run whole next time.
- An applied file is never edited: the runner records its sha256 in
  ``{database}.schema_migrations`` and refuses to go on when the file on disk differs.
  Change the schema with a new file.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from journeylens.storage.client import Client

Progress = Callable[[str], None]
MIGRATIONS_TABLE = "schema_migrations"
_FILE_NAME = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")
_STATEMENT_END = re.compile(r";[ \t]*(?:\r?\n|$)")
_DATABASE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class MigrationError(RuntimeError):
    """The migrations cannot be applied as they are; the message says what to fix."""


@dataclass(frozen=True, slots=True)
class Migration:
    """One migration file."""

    version: int
    name: str
    sql: str
    checksum: str

    @property
    def label(self) -> str:
        """``0001_initial``, as in the file name."""
        return f"{self.version:04d}_{self.name}"

    def statements(self, database: str) -> list[str]:
        """The file's statements with ``{database}`` filled in."""
        return split_statements(self.sql.replace("{database}", database))


@dataclass(frozen=True, slots=True)
class AppliedMigration:
    """A row of ``schema_migrations``."""

    version: int
    name: str
    checksum: str


def _no_progress(_line: str) -> None:
    """Drop progress lines."""


def default_migrations_dir() -> Path:
    """``infra/clickhouse/migrations`` of the source tree this package is installed from."""
    return Path(__file__).resolve().parents[3] / "infra" / "clickhouse" / "migrations"


def split_statements(sql: str) -> list[str]:
    """Split on ``;`` at the end of a line, dropping whole-line ``--`` comments and blanks."""
    pieces = (_without_comment_lines(piece) for piece in _STATEMENT_END.split(sql))
    return [piece for piece in pieces if piece]


def _without_comment_lines(piece: str) -> str:
    lines = (line for line in piece.splitlines() if not line.lstrip().startswith("--"))
    return "\n".join(lines).strip()


def load_migrations(migrations_dir: Path | None = None) -> list[Migration]:
    """Every ``NNNN_name.sql`` of the directory, by version; other names are an error."""
    directory = migrations_dir or default_migrations_dir()
    if not directory.is_dir():
        raise MigrationError(f"migrations directory {directory} does not exist")
    migrations = [_read_migration(path) for path in sorted(directory.glob("*.sql"))]
    _check_unique_versions(migrations)
    return sorted(migrations, key=lambda migration: migration.version)


def _read_migration(path: Path) -> Migration:
    match = _FILE_NAME.match(path.name)
    if match is None:
        raise MigrationError(
            f"migration file {path} must be named NNNN_name.sql (4 digits, lowercase name)"
        )
    data = path.read_bytes()
    return Migration(
        version=int(match["version"]),
        name=match["name"],
        sql=data.decode("utf-8"),
        checksum=hashlib.sha256(data).hexdigest(),
    )


def _check_unique_versions(migrations: Iterable[Migration]) -> None:
    seen: dict[int, str] = {}
    for migration in migrations:
        if migration.version in seen:
            raise MigrationError(
                f"two migrations have version {migration.version:04d}: "
                f"{seen[migration.version]} and {migration.label}"
            )
        seen[migration.version] = migration.label


def apply_migrations(
    client: Client,
    database: str,
    progress: Progress = _no_progress,
    migrations_dir: Path | None = None,
) -> list[str]:
    """Apply the migrations not yet recorded in ``database``; return their labels in order.

    Safe to run twice: applied versions are skipped. Raises `MigrationError` when an applied
    file changed since (checksum or name differ) and before running anything.
    """
    if not _DATABASE.match(database):
        raise MigrationError(f"database name {database!r} must match {_DATABASE.pattern}")
    migrations = load_migrations(migrations_dir)
    _ensure_migrations_table(client, database)
    applied = applied_migrations(client, database)
    _check_unchanged(migrations, applied)
    pending = [migration for migration in migrations if migration.version not in applied]
    for migration in pending:
        _apply_one(client, database, migration, progress)
    if not pending:
        progress(f"{database}: schema up to date ({len(applied)} migrations applied)")
    return [migration.label for migration in pending]


def _ensure_migrations_table(client: Client, database: str) -> None:
    client.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    client.command(
        f"CREATE TABLE IF NOT EXISTS {database}.{MIGRATIONS_TABLE} ("
        " version UInt32, name String, checksum String,"
        " applied_at DateTime64(3, 'UTC')"
        ") ENGINE = MergeTree ORDER BY version"
    )


def applied_migrations(client: Client, database: str) -> dict[int, AppliedMigration]:
    """What ``schema_migrations`` records, by version."""
    table = f"{database}.{MIGRATIONS_TABLE}"
    result = client.query(f"SELECT version, name, checksum FROM {table} ORDER BY version")  # noqa: S608 - identifiers, no values
    return {
        int(version): AppliedMigration(int(version), str(name), str(checksum))
        for version, name, checksum in result.result_rows
    }


def _check_unchanged(migrations: list[Migration], applied: dict[int, AppliedMigration]) -> None:
    for migration in migrations:
        recorded = applied.get(migration.version)
        if recorded is None:
            continue
        if recorded.checksum != migration.checksum or recorded.name != migration.name:
            raise MigrationError(
                f"migration {migration.label} was applied as {recorded.version:04d}_"
                f"{recorded.name} with checksum {recorded.checksum[:12]}, but the file now has "
                f"checksum {migration.checksum[:12]}: applied migrations are never edited; "
                "restore the file and put the change in a new migration"
            )


def _apply_one(client: Client, database: str, migration: Migration, progress: Progress) -> None:
    statements = migration.statements(database)
    progress(f"{database}: applying {migration.label} ({len(statements)} statements)")
    for number, statement in enumerate(statements, start=1):
        try:
            client.command(statement)
        except Exception as exc:
            raise MigrationError(
                f"{migration.label}, statement {number} of {len(statements)} failed: {exc}"
            ) from exc
    client.insert(
        f"{database}.{MIGRATIONS_TABLE}",
        [[migration.version, migration.name, migration.checksum, datetime.now(UTC)]],
        column_names=["version", "name", "checksum", "applied_at"],
    )
