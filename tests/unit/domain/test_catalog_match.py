"""Catalog matching: path regexes, route templates, custom events, dependency hosts."""

from __future__ import annotations

from pathlib import Path

import pytest

from journeylens.contracts.catalog import Catalog, load_catalog, parse_catalog
from journeylens.contracts.common import UNMAPPED
from journeylens.domain.catalog_match import (
    UNMAPPED_MATCH,
    CatalogMatcher,
    StepMatch,
    route_regex,
)

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def demo() -> CatalogMatcher:
    return CatalogMatcher(load_catalog(REPO / "infra" / "catalog" / "demo-shop.yaml"))


@pytest.mark.parametrize(
    ("path", "event", "expected"),
    [
        ("/login", None, ("login", "login-page")),
        ("/account", None, ("login", "account")),
        ("/search", None, ("search", "search-results")),
        ("/search/lamps", None, ("search", "search-results")),
        ("/product/p-100", None, ("search", "product")),
        ("/product/p-100/", None, ("search", "product")),
        ("/cart", None, ("checkout", "cart")),
        ("/checkout", None, ("checkout", "checkout-page")),
        ("/checkout/confirmation", None, ("checkout", "confirmation")),
        ("/api/products", None, ("products-api", "list-products")),
        ("/static/app.css", None, ("static-assets", "stylesheet")),
        ("/checkout", "checkout:payment", ("checkout", "payment")),
        ("/whatever", "login:sso", ("login", "sso-authorize")),
    ],
)
def test_demo_shop_rules(
    demo: CatalogMatcher, path: str, event: str | None, expected: tuple[str, str]
) -> None:
    assert demo.match("demo-shop", path, event) == StepMatch(*expected)


@pytest.mark.parametrize(
    "path", ["/", "/product", "/product/", "/product/1/reviews", "/login/help", "/carts"]
)
def test_unmatched_paths_are_unmapped(demo: CatalogMatcher, path: str) -> None:
    assert demo.match("demo-shop", path) == UNMAPPED_MATCH
    assert not demo.match("demo-shop", path).mapped


def test_unknown_event_falls_back_to_the_path(demo: CatalogMatcher) -> None:
    assert demo.match("demo-shop", "/cart", "no:such:event") == StepMatch("checkout", "cart")


def test_other_apps_do_not_see_demo_shop_rules(demo: CatalogMatcher) -> None:
    assert demo.match("another-app", "/login") == StepMatch(UNMAPPED, UNMAPPED)
    assert demo.match("another-app", "/x", "checkout:payment") == UNMAPPED_MATCH


def test_first_matching_step_in_catalog_order_wins() -> None:
    catalog = parse_catalog(
        {
            "journeys": [
                {"id": "a", "name": "A", "steps": [{"id": "s1", "rum": {"path": "^/x"}}]},
                {"id": "b", "name": "B", "steps": [{"id": "s2", "rum": {"path": "^/x/y"}}]},
            ]
        }
    )
    matcher = CatalogMatcher(catalog)
    assert matcher.match("default", "/x/y") == StepMatch("a", "s1")


def test_route_templates() -> None:
    pattern = route_regex("/shop/{shop}/item/{id}")
    assert pattern.match("/shop/1/item/abc")
    assert pattern.match("/shop/1/item/abc/")
    assert not pattern.match("/shop/1/item/")
    assert not pattern.match("/shop/1/2/item/abc")
    assert route_regex("/a.b/{id}").match("/a.b/1")
    assert not route_regex("/a.b/{id}").match("/axb/1")


def test_path_lookups_are_cached_and_bounded() -> None:
    catalog = parse_catalog(
        {"journeys": [{"id": "a", "name": "A", "steps": [{"id": "s", "rum": {"path": "^/a"}}]}]}
    )
    matcher = CatalogMatcher(catalog, cache_size=16)
    for _ in range(3):
        matcher.match("default", "/a")
    info = matcher.cache_info()
    assert info["misses"] == 1 and info["hits"] == 2
    for i in range(100):
        matcher.match("default", f"/p/{i}")
    assert matcher.cache_info()["size"] <= 16


def _with_dependencies(hosts: list[str]) -> Catalog:
    return parse_catalog(
        {
            "journeys": [
                {
                    "id": "j",
                    "name": "J",
                    "steps": [{"id": "s", "rum": {"path": "^/"}}],
                    "dependencies": [{"provider": "cdn", "hosts": hosts}],
                }
            ]
        }
    )


def test_dependency_hosts_exact_glob_and_port(demo: CatalogMatcher) -> None:
    assert demo.provider("127.0.0.1:8601") == "payment"
    assert demo.provider("pay.localhost") == "payment"
    assert demo.provider("PAY.localhost") == "payment"
    assert demo.provider("cdn.localhost:443") == "cdn"
    assert demo.provider("127.0.0.1:9999") is None
    assert demo.provider("example.org") is None
    matcher = CatalogMatcher(_with_dependencies(["*.cdn.example.net", "static.example.com"]))
    assert matcher.provider("img.cdn.example.net") == "cdn"
    assert matcher.provider("img.cdn.example.net:8443") == "cdn"
    assert matcher.provider("cdn.example.net") is None
    assert matcher.provider("static.example.com") == "cdn"
    assert matcher.provider("[::1]:80") is None
