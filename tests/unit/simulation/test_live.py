"""The live simulator speaks the collector's real formats, and drills map to model faults."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from journeylens.collector.formats import journeylens as beacon_format
from journeylens.collector.formats import web_vitals as web_vitals_format
from journeylens.collector.formats.base import RequestMeta
from journeylens.contracts.catalog import load_catalog
from journeylens.demo_shop.drills import DRILLS
from journeylens.simulation.live import beacon_for_page, faults_from_rules, web_vitals_for_page
from journeylens.simulation.scenarios import SCENARIOS
from journeylens.simulation.traffic import (
    CdnSlowness,
    PaymentOutage,
    SlowInteractionDeploy,
    ThirdPartyScriptErrors,
    TrafficModel,
)

CATALOG = load_catalog(Path(__file__).resolve().parents[3] / "infra/catalog/demo-shop.yaml")
START = 1_795_600_800.0  # 2026-11-25T10:00:00Z


def _pages() -> dict[str, list[dict[str, object]]]:
    events, _ = TrafficModel(CATALOG, seed=5).minute(START)
    pages: dict[str, list[dict[str, object]]] = {}
    for event in events:
        pages.setdefault(str(event["page_id"]), []).append(event)
    return pages


def _meta() -> RequestMeta:
    return RequestMeta(app="demo-shop", received_at=datetime.fromtimestamp(START + 61, UTC))


def test_beacons_parse_back_to_the_same_views_and_vitals() -> None:
    pages = _pages()
    views = 0
    for page in pages.values():
        result = beacon_format.parse(beacon_for_page(page), _meta())
        assert result.rejected == []
        for sent in page:
            if sent["kind"] in ("page_view", "soft_navigation"):
                views += 1
                got = next(e for e in result.events if e.kind.value == sent["kind"])
                assert got.vitals.model_dump(exclude_none=True) == sent["vitals"]
                assert got.session_id == sent["session_id"]
    assert views > 50


def test_web_vitals_reports_carry_the_page_vitals() -> None:
    page = next(p for p in _pages().values() if p[0]["kind"] == "page_view")
    result = web_vitals_format.parse(web_vitals_for_page(page[0]), _meta())
    vitals = page[0]["vitals"]
    assert isinstance(vitals, dict)
    assert len(result.events) == len(vitals)
    assert {e.page_id for e in result.events} == {page[0]["page_id"]}


def test_drills_are_the_scenarios_of_the_detection_bench() -> None:
    assert set(DRILLS) == {s.name for s in SCENARIOS}


def test_drill_fault_rules_become_user_side_model_faults() -> None:
    by_drill = {
        name: {
            type(f)
            for f in faults_from_rules(
                {s.value: [r.model_dump()] for s, r in DRILLS[name].faults}, START
            )
        }
        for name in DRILLS
    }
    assert by_drill["payment-outage"] == {PaymentOutage}
    assert by_drill["cdn-slow-country"] == {CdnSlowness}
    assert by_drill["login-probes-broken"] == set()  # probes only: users are fine
    assert by_drill["mobile-inp-deploy"] == {SlowInteractionDeploy}
    assert by_drill["third-party-errors"] == {ThirdPartyScriptErrors}
