"""The journey catalog loads from YAML; every error names the journey, the step and the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from journeylens.contracts.catalog import CatalogError, load_catalog, parse_catalog

DEMO = Path(__file__).resolve().parents[3] / "infra" / "catalog" / "demo-shop.yaml"


def _journey(**overrides: object) -> dict[str, object]:
    journey: dict[str, object] = {
        "id": "checkout",
        "name": "Checkout",
        "steps": [{"id": "cart", "rum": {"path": "^/cart$"}}, {"id": "pay", "rum": {"event": "p"}}],
    }
    journey.update(overrides)
    return journey


def test_demo_catalog_loads() -> None:
    catalog = load_catalog(DEMO)
    checkout = catalog.journey("checkout")
    assert checkout is not None
    assert checkout.value_per_completion == 85.0
    assert [s.id for s in checkout.steps] == ["cart", "checkout-page", "payment", "confirmation"]
    assert checkout.thresholds_for("payment").error_rate == 0.02


def test_error_names_journey_step_and_field() -> None:
    journey = _journey()
    journey["steps"] = [{"id": "cart", "probe": {"http": {"url": "{shop}/cart", "methd": "GET"}}}]
    with pytest.raises(CatalogError) as err:
        parse_catalog({"journeys": [journey]})
    assert "journey 'checkout' step 'cart': probe.http.methd" in str(err.value)


def test_bad_regex_is_named() -> None:
    journey = _journey(steps=[{"id": "cart", "rum": {"path": "^/cart($"}}])
    with pytest.raises(CatalogError) as err:
        parse_catalog({"journeys": [journey]})
    assert "journey 'checkout' step 'cart': rum" in str(err.value)
    assert "regular expression" in str(err.value)


def test_unknown_dependency_and_duplicate_steps() -> None:
    journey = _journey(steps=[{"id": "a", "dependencies": ["stripe"]}, {"id": "a"}])
    with pytest.raises(CatalogError) as err:
        parse_catalog({"journeys": [journey]})
    assert "journey 'checkout'" in str(err.value)
    assert "used twice" in str(err.value)


def test_invalid_category_names_journey_field() -> None:
    with pytest.raises(CatalogError, match=r"journey 'checkout': category"):
        parse_catalog({"journeys": [_journey(category="shopping")]})


def test_missing_file_says_which_setting(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="JOURNEYLENS_CATALOG_PATH"):
        load_catalog(tmp_path / "nope.yaml")


def test_invalid_yaml_names_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("journeys: [\n")
    with pytest.raises(CatalogError, match=str(path)):
        load_catalog(path)


def test_roundtrip_of_demo_yaml_is_stable() -> None:
    raw = yaml.safe_load(DEMO.read_text())
    assert parse_catalog(raw) == parse_catalog(raw)
