"""The migration runner: file rules (pure) and applying to a real ClickHouse (marked)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tests.fixtures.clickhouse import RunningClickHouse, unique_database

from journeylens.storage.client import client_for
from journeylens.storage.migrations import (
    MigrationError,
    apply_migrations,
    default_migrations_dir,
    load_migrations,
    split_statements,
)

TABLES = {"rum_events", "synthetic_results", "journey_aggregates", "anomalies", "alerts"}
ROLLUPS = {
    "journey_rollup_hourly",
    "journey_rollup_daily",
    "journey_rollup_hourly_mv",
    "journey_rollup_daily_mv",
    "rum_vitals_hourly",
    "rum_vitals_daily",
    "rum_vitals_hourly_mv",
    "rum_vitals_daily_from_hourly_mv",
    "journey_window_counters",
    "journey_window_counters_mv",
    "rum_events_landing",
    "rum_events_landing_mv",
    "rum_events_input",
    "rum_events_input_mv",
}


def test_split_on_semicolon_at_end_of_line_only() -> None:
    sql = (
        "-- header; with a semicolon\n"
        "CREATE TABLE a (s String DEFAULT ';') ENGINE = Memory;\n"
        "\n"
        "-- comment only;\n"
        "CREATE TABLE b (x UInt8)\n"
        "  ENGINE = Memory ;  \n"
        "SELECT 1"
    )
    assert split_statements(sql) == [
        "CREATE TABLE a (s String DEFAULT ';') ENGINE = Memory",
        "CREATE TABLE b (x UInt8)\n  ENGINE = Memory",
        "SELECT 1",
    ]


def test_the_shipped_migrations_load_in_order() -> None:
    migrations = load_migrations()
    assert default_migrations_dir().is_dir()
    versions = [migration.version for migration in migrations]
    assert versions == sorted(versions) == list(range(1, len(versions) + 1))
    sql = "\n".join(migration.sql for migration in migrations)
    for table in TABLES:
        assert f"{{database}}.{table}" in sql


def test_bad_file_names_and_duplicate_versions_are_refused(tmp_path: Path) -> None:
    (tmp_path / "1_short.sql").write_text("SELECT 1;\n")
    with pytest.raises(MigrationError, match="NNNN_name.sql"):
        load_migrations(tmp_path)
    (tmp_path / "1_short.sql").unlink()
    (tmp_path / "0001_a.sql").write_text("SELECT 1;\n")
    (tmp_path / "0001_b.sql").write_text("SELECT 2;\n")
    with pytest.raises(MigrationError, match="two migrations have version 0001"):
        load_migrations(tmp_path)


def test_missing_directory_is_named(tmp_path: Path) -> None:
    with pytest.raises(MigrationError, match="does not exist"):
        load_migrations(tmp_path / "nope")


def _schema(client: object, database: str) -> dict[str, str]:
    rows = client.query(  # type: ignore[attr-defined]
        "SELECT name, create_table_query FROM system.tables WHERE database = {db:String}",
        parameters={"db": database},
    ).result_rows
    return dict(rows)


@pytest.mark.clickhouse
def test_applying_twice_gives_the_same_schema(clickhouse_server: RunningClickHouse) -> None:
    target = clickhouse_server.target_for(unique_database("migrate_twice"))
    client = client_for(target)
    try:
        applied = apply_migrations(client, target.database)
        first = _schema(client, target.database)
        again = apply_migrations(client, target.database)
        assert again == []
        assert _schema(client, target.database) == first
        assert applied == [migration.label for migration in load_migrations()]
        assert set(first) == TABLES | ROLLUPS | {"schema_migrations"}
        recorded = client.query(f"SELECT count() FROM {target.database}.schema_migrations")
        assert recorded.result_rows == [(len(applied),)]
    finally:
        client.command(f"DROP DATABASE IF EXISTS {target.database}")
        client.close()


@pytest.mark.clickhouse
def test_changed_applied_migration_is_refused_and_new_ones_apply(
    clickhouse_server: RunningClickHouse, tmp_path: Path
) -> None:
    migrations = tmp_path / "migrations"
    shutil.copytree(default_migrations_dir(), migrations)
    target = clickhouse_server.target_for(unique_database("migrate_checksum"))
    client = client_for(target)
    try:
        apply_migrations(client, target.database, migrations_dir=migrations)
        (migrations / "0099_extra.sql").write_text(
            "ALTER TABLE {database}.alerts ADD COLUMN IF NOT EXISTS note String;\n"
        )
        assert apply_migrations(client, target.database, migrations_dir=migrations) == [
            "0099_extra"
        ]
        first = migrations / "0001_raw_events.sql"
        first.write_text(first.read_text() + "\n-- an innocent edit\n")
        with pytest.raises(MigrationError, match="0001_raw_events.*never edited"):
            apply_migrations(client, target.database, migrations_dir=migrations)
    finally:
        client.command(f"DROP DATABASE IF EXISTS {target.database}")
        client.close()


@pytest.mark.clickhouse
def test_a_failing_statement_is_reported_and_not_recorded(
    clickhouse_server: RunningClickHouse, tmp_path: Path
) -> None:
    (tmp_path / "0001_broken.sql").write_text("CREATE TABLE {database}.x (a Nope) ENGINE = Log;\n")
    target = clickhouse_server.target_for(unique_database("migrate_broken"))
    client = client_for(target)
    try:
        with pytest.raises(MigrationError, match="0001_broken, statement 1 of 1 failed"):
            apply_migrations(client, target.database, migrations_dir=tmp_path)
        recorded = client.query(f"SELECT count() FROM {target.database}.schema_migrations")
        assert recorded.result_rows == [(0,)]
    finally:
        client.command(f"DROP DATABASE IF EXISTS {target.database}")
        client.close()
