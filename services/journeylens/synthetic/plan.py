"""Compile the probe side of catalog journeys at load time into runnable plans.

Everything that can be checked before the first request is checked here: URL and value
templates (``{var}``) may only name variables that exist at that point of the journey (schedule
variables, CLI overrides, built-ins and the variables extracted by earlier steps), JSON paths and
URL regexes must parse, and the URL of every request must be an absolute http(s) URL once the
known variables are filled in. Each problem names the journey, the step and the field.

A journey with problems is reported and skipped; the others are compiled and run.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
import yaml
from pydantic import ValidationError

from journeylens.contracts.catalog import (
    BrowserAction,
    CatalogError,
    HttpAssertion,
    HttpProbe,
    Journey,
    describe_location,
)

BUILTIN_VARIABLES = ("run_id", "location")
"""Variables every journey can use: the id of the current run and the probe location."""

_VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_JSON_PATH_TOKEN = re.compile(
    r"""\.(?P<name>[A-Za-z_$][\w$-]*)|\[(?P<index>-?\d+)\]|\[(?P<quote>['"])(?P<key>.*?)(?P=quote)\]"""
)
_PLACEHOLDER_VALUE = "placeholder"


class PlanError(ValueError):
    """One load-time problem of a journey: where (journey, step, field) and what."""

    def __init__(self, journey: str, step: str | None, field_name: str, message: str) -> None:
        self.journey = journey
        self.step = step
        self.field_name = field_name
        self.message = message
        where = f"journey {journey!r}" + (f" step {step!r}" if step else "")
        super().__init__(f"{where}: {field_name}: {message}")


class JourneyPlanError(ValueError):
    """A journey cannot be probed; carries every problem found."""

    def __init__(self, journey: str, problems: Sequence[PlanError]) -> None:
        self.journey = journey
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in problems))


# --- templates and paths -------------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    """A string with ``{name}`` placeholders (``{{`` and ``}}`` are literal braces)."""

    source: str
    variables: frozenset[str]

    @classmethod
    def parse(cls, source: str) -> Template:
        names: set[str] = set()
        try:
            parts = list(string.Formatter().parse(source))
        except ValueError as exc:
            raise ValueError(
                f"bad template {source!r}: {exc} (write {{{{ and }}}} for literal braces)"
            ) from None
        for _literal, name, spec, conversion in parts:
            if name is None:
                continue
            if not _VARIABLE_NAME.match(name):
                raise ValueError(
                    f"bad template {source!r}: {{{name}}} is not a variable name "
                    f"(write {{{{ and }}}} for literal braces)"
                )
            if spec or conversion:
                raise ValueError(f"bad template {source!r}: format specs are not supported")
            names.add(name)
        return cls(source, frozenset(names))

    def render(self, variables: Mapping[str, str]) -> str:
        return self.source.format_map(variables)


JsonPath = tuple[str | int, ...]


def parse_json_path(path: str) -> JsonPath:
    """``$.a.b[0]``, ``$['a b']`` → ('a', 'b', 0); raises ValueError on anything else."""
    if not path.startswith("$"):
        raise ValueError(f"JSON path {path!r} must start with '$'")
    segments: list[str | int] = []
    position = 1
    while position < len(path):
        match = _JSON_PATH_TOKEN.match(path, position)
        if match is None:
            raise ValueError(f"JSON path {path!r} is not understood at {path[position:]!r}")
        if match.group("name") is not None:
            segments.append(match.group("name"))
        elif match.group("index") is not None:
            segments.append(int(match.group("index")))
        else:
            segments.append(match.group("key"))
        position = match.end()
    return tuple(segments)


def format_json_path(path: JsonPath) -> str:
    return "$" + "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in path)


# --- compiled steps ------------------------------------------------------------------------


@dataclass(frozen=True)
class StatusCheck:
    expected: tuple[int, ...]


@dataclass(frozen=True)
class JsonPathCheck:
    path: JsonPath
    source: str
    exists: bool
    equals: Any = None
    """A rendered-at-run-time value (templated strings inside) when ``has_equals``."""
    has_equals: bool = False


@dataclass(frozen=True)
class BodyContainsCheck:
    text: Template


@dataclass(frozen=True)
class HeaderCheck:
    name: str
    contains: Template | None


@dataclass(frozen=True)
class MaxResponseCheck:
    max_ms: float


Check = JsonPathCheck | BodyContainsCheck | HeaderCheck | MaxResponseCheck


@dataclass(frozen=True)
class Extraction:
    variable: str
    source: str
    json_path: JsonPath | None = None
    header: str | None = None


@dataclass(frozen=True)
class HttpStepPlan:
    step_id: str
    method: str
    url: Template
    headers: tuple[tuple[str, Template], ...]
    body: Template | None
    json_body: Any
    """The JSON body with every string replaced by a `Template` (rendered per run)."""
    has_json: bool
    status: StatusCheck
    checks: tuple[Check, ...]
    extractions: tuple[Extraction, ...]
    timeout_s: float
    follow_redirects: bool
    kind: Literal["http"] = "http"


@dataclass(frozen=True)
class Goto:
    url: Template
    timeout_ms: float


@dataclass(frozen=True)
class Click:
    selector: str
    timeout_ms: float


@dataclass(frozen=True)
class Fill:
    selector: str
    value: Template
    timeout_ms: float


@dataclass(frozen=True)
class WaitFor:
    selector: str
    timeout_ms: float


@dataclass(frozen=True)
class AssertText:
    selector: str
    text: Template
    timeout_ms: float


@dataclass(frozen=True)
class AssertUrl:
    pattern: re.Pattern[str]
    timeout_ms: float


Action = Goto | Click | Fill | WaitFor | AssertText | AssertUrl


@dataclass(frozen=True)
class BrowserStepPlan:
    step_id: str
    actions: tuple[Action, ...]
    kind: Literal["browser"] = "browser"


StepPlan = HttpStepPlan | BrowserStepPlan


@dataclass(frozen=True)
class JourneyPlan:
    journey_id: str
    name: str
    interval_s: float
    locations: tuple[str, ...]
    variables: Mapping[str, str]
    """Schedule variables with the overrides applied (built-ins are added per run)."""
    steps: tuple[StepPlan, ...]

    @property
    def uses_browser(self) -> bool:
        return any(isinstance(step, BrowserStepPlan) for step in self.steps)


@dataclass
class LoadedPlans:
    """What a catalog yields for the probe: runnable plans, and why the others are not."""

    plans: list[JourneyPlan] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    """Invalid journeys (each line names the journey, step and field)."""
    not_probed: list[str] = field(default_factory=list)
    """Valid journeys that have nothing to probe (no schedule or no probe step)."""


# --- compilation ---------------------------------------------------------------------------


class _Compiler:
    """Compiles one journey, collecting every problem instead of stopping at the first."""

    def __init__(self, journey: Journey, overrides: Mapping[str, str]) -> None:
        self.journey = journey
        schedule_vars = dict(journey.probe.variables) if journey.probe else {}
        self.static: dict[str, str] = {**schedule_vars, **overrides}
        self.available: set[str] = set(self.static) | set(BUILTIN_VARIABLES)
        self.problems: list[PlanError] = []
        self.step_id: str | None = None
        self.page_open = False
        """A browser step before this one opened the page (later ones may continue on it)."""

    def problem(self, field_name: str, message: str) -> None:
        self.problems.append(PlanError(self.journey.id, self.step_id, field_name, message))

    def template(self, field_name: str, source: str) -> Template:
        try:
            template = Template.parse(source)
        except ValueError as exc:
            self.problem(field_name, str(exc))
            return Template(source, frozenset())
        missing = sorted(template.variables - self.available)
        if missing:
            names = ", ".join(repr(m) for m in missing)
            self.problem(
                field_name,
                f"unknown variable {names} in {source!r} "
                f"(available here: {', '.join(sorted(self.available)) or 'none'})",
            )
        return template

    def url(self, field_name: str, source: str) -> Template:
        known_problems = len(self.problems)
        template = self.template(field_name, source)
        if len(self.problems) > known_problems:
            return template
        sample = {name: self.static.get(name, _PLACEHOLDER_VALUE) for name in template.variables}
        rendered = template.render(sample)
        try:
            url = httpx.URL(rendered)
        except (httpx.InvalidURL, ValueError) as exc:
            self.problem(field_name, f"{source!r} does not give a valid URL ({rendered!r}: {exc})")
            return template
        if url.scheme not in ("http", "https") or not url.host:
            self.problem(
                field_name,
                f"{source!r} gives {rendered!r}, not an absolute http(s) URL "
                f"(check the schedule variables or --var overrides)",
            )
        return template

    def value(self, field_name: str, value: Any) -> Any:
        """Templates for every string inside a JSON-like value (keys stay literal)."""
        if isinstance(value, str):
            return self.template(field_name, value)
        if isinstance(value, list):
            return [self.value(f"{field_name}[{i}]", item) for i, item in enumerate(value)]
        if isinstance(value, dict):
            return {key: self.value(f"{field_name}.{key}", item) for key, item in value.items()}
        return value

    def json_path(self, field_name: str, source: str) -> JsonPath:
        try:
            return parse_json_path(source)
        except ValueError as exc:
            self.problem(field_name, str(exc))
            return ()

    def compile(self) -> JourneyPlan:
        steps: list[StepPlan] = []
        for step in self.journey.steps:
            self.step_id = step.id
            if step.probe is None:
                continue
            if step.probe.http is not None:
                steps.append(self.http_step(step.id, step.probe.http))
            elif step.probe.browser is not None:
                steps.append(self.browser_step(step.id, step.probe.browser))
            else:  # pragma: no cover - the catalog model forbids it
                self.problem("probe", "unknown probe step type")
        self.step_id = None
        if self.problems:
            raise JourneyPlanError(self.journey.id, self.problems)
        schedule = self.journey.probe
        assert schedule is not None
        return JourneyPlan(
            journey_id=self.journey.id,
            name=self.journey.name,
            interval_s=schedule.interval_s,
            locations=tuple(schedule.locations),
            variables=dict(self.static),
            steps=tuple(steps),
        )

    def http_step(self, step_id: str, http: HttpProbe) -> HttpStepPlan:
        url = self.url("probe.http.url", http.url)
        headers = tuple(
            (name, self.template(f"probe.http.headers.{name}", value))
            for name, value in http.headers.items()
        )
        body = self.template("probe.http.body", http.body) if http.body is not None else None
        has_json = "json_body" in http.model_fields_set
        if body is not None and has_json:
            self.problem("probe.http.json", "give either body or json, not both")
        json_body = self.value("probe.http.json", http.json_body) if has_json else None
        expected = (
            http.expect_status if isinstance(http.expect_status, list) else [http.expect_status]
        )
        checks: list[Check] = []
        for index, assertion in enumerate(http.assertions):
            check = self.assertion(f"probe.http.assert[{index}]", assertion)
            if isinstance(check, StatusCheck):
                expected = list(check.expected)
            elif check is not None:
                checks.append(check)
        if not expected or any(not 100 <= code <= 599 for code in expected):
            self.problem("probe.http.expect_status", f"not HTTP status codes: {expected}")
        extractions = tuple(
            self.extraction(variable, source) for variable, source in http.extract.items()
        )
        # Later steps may use what this step extracts.
        self.available.update(e.variable for e in extractions)
        return HttpStepPlan(
            step_id=step_id,
            method=http.method,
            url=url,
            headers=headers,
            body=body,
            json_body=json_body,
            has_json=has_json,
            status=StatusCheck(tuple(expected)),
            checks=tuple(checks),
            extractions=extractions,
            timeout_s=http.timeout_s,
            follow_redirects=http.follow_redirects,
        )

    def assertion(self, field_name: str, assertion: HttpAssertion) -> Check | StatusCheck | None:
        given = assertion.model_fields_set
        if assertion.status is not None:
            return StatusCheck((assertion.status,))
        if assertion.max_response_ms is not None:
            return MaxResponseCheck(assertion.max_response_ms)
        if assertion.body_contains is not None:
            return BodyContainsCheck(
                self.template(f"{field_name}.body_contains", assertion.body_contains)
            )
        if assertion.header is not None:
            contains = (
                self.template(f"{field_name}.contains", assertion.contains)
                if assertion.contains is not None
                else None
            )
            return HeaderCheck(assertion.header, contains)
        assert assertion.json_path is not None
        path = self.json_path(f"{field_name}.json_path", assertion.json_path)
        has_equals = "equals" in given
        if has_equals and assertion.exists is False:
            self.problem(field_name, "equals and exists: false contradict each other")
        return JsonPathCheck(
            path=path,
            source=assertion.json_path,
            exists=assertion.exists if assertion.exists is not None else True,
            equals=self.value(f"{field_name}.equals", assertion.equals) if has_equals else None,
            has_equals=has_equals,
        )

    def extraction(self, variable: str, source: str) -> Extraction:
        field_name = f"probe.http.extract.{variable}"
        if not _VARIABLE_NAME.match(variable):
            self.problem(field_name, f"{variable!r} is not a variable name")
        if source.lower().startswith("header:"):
            header = source.split(":", 1)[1].strip()
            if not header:
                self.problem(field_name, "header: needs a header name (header:Location)")
            return Extraction(variable, source, header=header)
        return Extraction(variable, source, json_path=self.json_path(field_name, source))

    def browser_step(self, step_id: str, actions: list[BrowserAction]) -> BrowserStepPlan:
        compiled: list[Action] = []
        if not actions:
            self.problem("probe.browser", "a browser step needs at least one action")
        for index, action in enumerate(actions):
            field_name = f"probe.browser[{index}]"
            timeout = action.timeout_ms
            if action.goto is not None:
                compiled.append(Goto(self.url(f"{field_name}.goto", action.goto), timeout))
            elif action.click is not None:
                compiled.append(Click(action.click, timeout))
            elif action.fill is not None:
                value = self.template(f"{field_name}.fill.value", action.fill["value"])
                compiled.append(Fill(action.fill["selector"], value, timeout))
            elif action.wait_for is not None:
                compiled.append(WaitFor(action.wait_for, timeout))
            elif action.assert_text is not None:
                text = self.template(f"{field_name}.assert_text.text", action.assert_text["text"])
                compiled.append(AssertText(action.assert_text["selector"], text, timeout))
            elif action.assert_url is not None:
                try:
                    compiled.append(AssertUrl(re.compile(action.assert_url), timeout))
                except re.error as exc:
                    self.problem(f"{field_name}.assert_url", f"not a valid regex: {exc}")
        if compiled and not self.page_open and not isinstance(compiled[0], Goto):
            self.problem(
                "probe.browser[0]", "the journey's first browser step must start with goto"
            )
        self.page_open = True
        return BrowserStepPlan(step_id=step_id, actions=tuple(compiled))


def compile_journey(journey: Journey, overrides: Mapping[str, str] | None = None) -> JourneyPlan:
    """The probe plan of a validated journey; raises `JourneyPlanError` naming every problem.

    The journey must have a probe schedule and at least one probe step.
    """
    if journey.probe is None:
        raise JourneyPlanError(
            journey.id, [PlanError(journey.id, None, "probe", "the journey has no probe schedule")]
        )
    if not any(step.probe is not None for step in journey.steps):
        raise JourneyPlanError(
            journey.id, [PlanError(journey.id, None, "steps", "no step has a probe")]
        )
    return _Compiler(journey, overrides or {}).compile()


def compile_journeys(
    raw_catalog: Any, overrides: Mapping[str, str] | None = None, *, origin: str = "<catalog>"
) -> LoadedPlans:
    """Validate and compile each journey of a raw (parsed YAML) catalog on its own.

    One bad journey (an unknown step type, a template on a missing variable...) is reported in
    ``problems`` and skipped; the valid journeys are compiled.
    """
    if not isinstance(raw_catalog, dict) or not isinstance(raw_catalog.get("journeys"), list):
        raise CatalogError(f"{origin}: the catalog must be a mapping with a 'journeys' list")
    loaded = LoadedPlans()
    seen: set[str] = set()
    for index, raw_journey in enumerate(raw_catalog["journeys"]):
        try:
            journey = Journey.model_validate(raw_journey)
        except ValidationError as exc:
            loaded.problems.extend(
                describe_location(("journeys", index, *err["loc"]), raw_catalog)
                + f": {_explain(err['type'], err['loc'], err['msg'])}"
                for err in exc.errors()
            )
            continue
        if journey.id in seen:
            loaded.problems.append(f"journey {journey.id!r}: id: used twice, second one skipped")
            continue
        seen.add(journey.id)
        if journey.probe is None or not any(step.probe for step in journey.steps):
            loaded.not_probed.append(journey.id)
            continue
        try:
            loaded.plans.append(compile_journey(journey, overrides))
        except JourneyPlanError as exc:
            loaded.problems.extend(str(problem) for problem in exc.problems)
    return loaded


def _explain(kind: str, loc: tuple[int | str, ...], message: str) -> str:
    if kind == "extra_forbidden" and len(loc) >= 2 and loc[-2] == "probe":
        return f"unknown probe step type {loc[-1]!r} (a probe step is 'http' or 'browser')"
    if kind == "extra_forbidden":
        return f"unknown field {loc[-1]!r}"
    return message


def load_plans(path: Path, overrides: Mapping[str, str] | None = None) -> LoadedPlans:
    """Read a catalog file and compile the probe plans of its journeys (see `compile_journeys`)."""
    if not path.is_file():
        raise CatalogError(
            f"journey catalog not found: {path} (set JOURNEYLENS_CATALOG_PATH to your catalog)"
        )
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise CatalogError(f"{path}: not valid YAML: {exc}") from None
    return compile_journeys(raw, overrides, origin=str(path))


def for_location(plans: Iterable[JourneyPlan], location: str) -> list[JourneyPlan]:
    """The plans scheduled at a probe location."""
    return [plan for plan in plans if location in plan.locations]


def render_value(value: Any, variables: Mapping[str, str]) -> Any:
    """Render every `Template` inside a compiled JSON-like value."""
    if isinstance(value, Template):
        return value.render(variables)
    if isinstance(value, list):
        return [render_value(item, variables) for item in value]
    if isinstance(value, dict):
        return {key: render_value(item, variables) for key, item in value.items()}
    return value
