"""The metrics the API answers together are the ones the journey page charts together."""

from __future__ import annotations

import re
from pathlib import Path

from journeylens.api.metrics import CHART_METRICS, METRICS

APP_JS = Path(__file__).resolve().parents[3] / "services/journeylens/api/dashboard/app.js"


def test_chart_metrics_are_the_dashboard_charts() -> None:
    charts = re.search(r"const CHARTS = \[(.*?)\n\];", APP_JS.read_text(), re.S)
    assert charts is not None
    names = tuple(re.findall(r'^\s*\["([a-z_.0-9]+)"', charts.group(1), re.M))
    assert names == CHART_METRICS
    assert all(name in METRICS for name in CHART_METRICS)
