"""parse_dsn: the accepted DSN forms, and errors that say what to fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from journeylens.storage.client import ClickHouseTarget, ConfigError, mask_dsn, parse_dsn


@pytest.mark.parametrize(
    ("dsn", "expected"),
    [
        ("chdb:///var/lib/jl", ClickHouseTarget("chdb", "journeylens", path=Path("/var/lib/jl"))),
        ("chdb://.data/ch", ClickHouseTarget("chdb", "journeylens", path=Path(".data/ch"))),
        ("chdb://data?database=other", ClickHouseTarget("chdb", "other", path=Path("data"))),
        (
            "http://default:@127.0.0.1:8123/journeylens",
            ClickHouseTarget("http", "journeylens", host="127.0.0.1", port=8123),
        ),
        (
            "https://ana:s%40cret@ch.example.com/analytics",
            ClickHouseTarget(
                "https",
                "analytics",
                host="ch.example.com",
                port=8443,
                username="ana",
                password="s@cret",
            ),
        ),
        ("http://ch:9123", ClickHouseTarget("http", "journeylens", host="ch", port=9123)),
    ],
)
def test_accepted_forms(dsn: str, expected: ClickHouseTarget) -> None:
    assert parse_dsn(dsn) == expected


@pytest.mark.parametrize(
    "dsn",
    [
        "clickhouse://u:hunter2@host:9000/db",
        "http://u:hunter2@host:notaport/db",
        "http://u:hunter2@/db",
        "http://u:hunter2@host:8123/db/extra",
        "http://u:hunter2@host:8123/bad-name",
        "http://u:hunter2@host:8123/db?secure=1",
        "chdb://",
        "chdb://data?path=x",
        "localhost:8123",
        "",
    ],
)
def test_unusable_dsn_names_the_setting_masks_the_password_and_lists_forms(dsn: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_dsn(dsn)
    message = str(caught.value)
    assert "JOURNEYLENS_CLICKHOUSE_DSN" in message
    assert "hunter2" not in message
    assert "chdb:///abs/path" in message
    assert "http://user:password@host:port/database" in message
    assert isinstance(caught.value, ValueError)


def test_mask_dsn_hides_only_the_password() -> None:
    assert mask_dsn("http://ana:pw@h:1/db") == "http://ana:***@h:1/db"
    assert mask_dsn("chdb:///a/b") == "chdb:///a/b"


def test_masked_and_dsn_round_trip() -> None:
    target = parse_dsn("https://ana:s%40cret@ch.example.com:8443/analytics")
    assert target.masked() == "https://ana:***@ch.example.com:8443/analytics"
    assert parse_dsn(target.dsn()) == target
    assert "s@cret" not in repr(target.masked())
