"""Load-time checks of probe plans: every problem names the journey, the step and the field."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from journeylens.contracts.synthetic_results_v1 import RunStatus, SyntheticResult
from journeylens.synthetic.outcome import utc_now
from journeylens.synthetic.plan import (
    HttpStepPlan,
    JourneyPlan,
    Template,
    compile_journeys,
    load_plans,
    parse_json_path,
)
from journeylens.synthetic.runner import JourneyRunner
from journeylens.synthetic.scheduler import ProbeScheduler

CATALOG = Path(__file__).resolve().parents[3] / "infra" / "catalog" / "demo-shop.yaml"


def journey(journey_id: str, *steps: dict[str, Any], **variables: str) -> dict[str, Any]:
    return {
        "id": journey_id,
        "name": journey_id,
        "probe": {"variables": {"shop": "http://127.0.0.1:8600", **variables}},
        "steps": list(steps),
    }


def http(step_id: str, **probe: Any) -> dict[str, Any]:
    return {"id": step_id, "probe": {"http": probe}}


def problems_of(*journeys: dict[str, Any], **overrides: str) -> list[str]:
    return compile_journeys({"journeys": list(journeys)}, overrides).problems


def test_the_demo_catalog_compiles() -> None:
    loaded = load_plans(CATALOG)
    assert loaded.problems == []
    assert {p.journey_id for p in loaded.plans} >= {"login", "search", "checkout"}
    assert any(p.uses_browser for p in loaded.plans)


def test_missing_variable_in_url_names_journey_step_and_field() -> None:
    (problem,) = problems_of(journey("j", http("s1", url="{shop}/x/{nope}")))
    assert problem.startswith("journey 'j' step 's1': probe.http.url: unknown variable 'nope'")
    assert "available here: location, run_id, shop" in problem


def test_variable_extracted_by_a_later_step_is_not_available_yet() -> None:
    (problem,) = problems_of(
        journey(
            "j",
            http("first", url="{shop}/cart/{cart_id}"),
            http("second", url="{shop}/api/cart", extract={"cart_id": "$.cart_id"}),
        )
    )
    assert problem.startswith("journey 'j' step 'first': probe.http.url: unknown variable")


def test_variable_extracted_by_an_earlier_step_is_available() -> None:
    loaded = compile_journeys(
        {
            "journeys": [
                journey(
                    "j",
                    http("a", url="{shop}/api/cart", extract={"cart_id": "$.items[0].id"}),
                    http("b", url="{shop}/cart/{cart_id}", json={"id": "{cart_id}", "n": 1}),
                )
            ]
        }
    )
    assert loaded.problems == []
    second = loaded.plans[0].steps[1]
    assert isinstance(second, HttpStepPlan) and second.url.variables == {"shop", "cart_id"}


def test_assertion_and_body_templates_are_checked() -> None:
    problems = problems_of(
        journey(
            "j",
            http(
                "s",
                url="{shop}/",
                json={"user": "{who}"},
                headers={"X-Trace": "{trace}"},
                **{"assert": [{"body_contains": "Hello {name}"}]},
            ),
        )
    )
    fields = sorted(p.split(": ")[1] for p in problems)
    assert fields == [
        "probe.http.assert[0].body_contains",
        "probe.http.headers.X-Trace",
        "probe.http.json.user",
    ]


def test_unknown_step_type_is_reported_and_other_journeys_still_compile() -> None:
    bad = journey("bad", {"id": "call", "probe": {"grpc": {"url": "{shop}"}}})
    loaded = compile_journeys({"journeys": [bad, journey("good", http("s", url="{shop}/"))]})
    assert [p.journey_id for p in loaded.plans] == ["good"]
    assert loaded.problems == [
        "journey 'bad' step 'call': probe.grpc: unknown probe step type 'grpc' "
        "(a probe step is 'http' or 'browser')"
    ]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("{shop", "bad template"),
        ("{shop}/{0}", "is not a variable name"),
        ("{shop:>10}/", "format specs are not supported"),
        ("127.0.0.1:8600/x", "not an absolute http(s) URL"),
        ("ftp://{shop}", "not an absolute http(s) URL"),
    ],
)
def test_bad_url_template(url: str, message: str) -> None:
    (problem,) = problems_of(journey("j", http("s", url=url)))
    assert problem.startswith("journey 'j' step 's': probe.http.url:")
    assert message in problem


def test_variable_that_is_not_a_url_is_caught_once_filled_in() -> None:
    (problem,) = problems_of(journey("j", http("s", url="{shop}/x"), shop="127.0.0.1:8600"))
    assert "probe.http.url" in problem and "'127.0.0.1:8600/x'" in problem


def test_overrides_supply_variables() -> None:
    step = http("s", url="{api}/v1")
    assert problems_of(journey("j", step)) != []
    assert problems_of(journey("j", step), api="http://127.0.0.1:9000") == []


def test_bad_json_paths_and_regexes() -> None:
    problems = problems_of(
        journey(
            "j",
            http(
                "s", url="{shop}/", extract={"x": "items[0]"}, **{"assert": [{"json_path": "$.a["}]}
            ),
            {"id": "b", "probe": {"browser": [{"goto": "{shop}/"}, {"assert_url": "(unclosed"}]}},
        )
    )
    fields = sorted(p.split(": ")[1] for p in problems)
    assert fields == [
        "probe.browser[1].assert_url",
        "probe.http.assert[0].json_path",
        "probe.http.extract.x",
    ]


def test_first_browser_step_must_open_a_page() -> None:
    (problem,) = problems_of(journey("j", {"id": "b", "probe": {"browser": [{"click": "#go"}]}}))
    assert problem.startswith("journey 'j' step 'b': probe.browser[0]:")


def test_journeys_without_probes_are_not_errors() -> None:
    rum_only = {"id": "rum", "name": "r", "steps": [{"id": "s", "rum": {"path": "^/$"}}]}
    loaded = compile_journeys({"journeys": [rum_only]})
    assert loaded.problems == [] and loaded.plans == [] and loaded.not_probed == ["rum"]


def test_templates_and_json_paths() -> None:
    assert Template.parse("{{literal}} {a}").render({"a": "1"}) == "{literal} 1"
    assert parse_json_path("$.a.b[0]['c d']") == ("a", "b", 0, "c d")
    with pytest.raises(ValueError):
        parse_json_path("a.b")


class _RecordingRunner(JourneyRunner):
    def __init__(self) -> None:
        super().__init__(location="unit")
        self.ran: list[str] = []

    async def run(self, plan: JourneyPlan, run_id: str | None = None) -> SyntheticResult:
        self.ran.append(plan.journey_id)
        now = utc_now()
        return SyntheticResult(
            run_id="r",
            journey=plan.journey_id,
            location=self.location,
            status=RunStatus.PASSED,
            started_at=now,
            finished_at=now,
            duration_ms=0,
            steps=[],
        )


class _ListSink:
    def __init__(self) -> None:
        self.results: list[SyntheticResult] = []

    async def publish(self, result: SyntheticResult) -> None:
        self.results.append(result)


def test_valid_journeys_still_run() -> None:
    bad = journey("bad", http("s", url="{shop}/{missing}"))
    loaded = compile_journeys({"journeys": [bad, journey("good", http("s", url="{shop}/"))]})
    runner, sink = _RecordingRunner(), _ListSink()
    asyncio.run(ProbeScheduler(loaded.plans, runner, sink).run_once())
    assert runner.ran == ["good"]
    assert [r.journey for r in sink.results] == ["good"]
