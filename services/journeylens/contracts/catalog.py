"""The journey catalog: critical user journeys, their steps, dependencies and thresholds.

Loaded from YAML and validated; errors name the journey, the step and the field to fix.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

_ID = r"^[a-z0-9][a-z0-9_.:-]{0,63}$"


class CatalogError(ValueError):
    """The catalog cannot be used; the message says where and what to fix."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Category(StrEnum):
    AUTHENTICATION = "authentication"
    CONVERSION = "conversion"
    API = "api"
    THIRD_PARTY = "third_party"
    OTHER = "other"


class Thresholds(Strict):
    """Acceptable values, judged at p75 (vitals) or over a window (rates)."""

    lcp_p75_ms: float = 2500
    inp_p75_ms: float = 200
    cls_p75: float = 0.1
    fcp_p75_ms: float = 1800
    ttfb_p75_ms: float = 800
    error_rate: float = Field(default=0.05, ge=0, le=1)
    duration_p95_ms: float | None = None
    apdex_t_ms: float = Field(default=1000, gt=0)
    min_availability: float = Field(default=0.99, ge=0, le=1)


class RumMatch(Strict):
    """How RUM recognises a step: a URL path pattern, a route, or a custom event name."""

    path: str | None = Field(default=None, description="Regex matched against the URL path.")
    route: str | None = Field(default=None, description="Route template such as /product/{id}.")
    event: str | None = Field(default=None, description="Custom step event sent by the page.")

    @model_validator(mode="after")
    def _one_rule(self) -> RumMatch:
        if not (self.path or self.route or self.event):
            raise ValueError("give at least one of path, route or event")
        if self.path is not None:
            try:
                re.compile(self.path)
            except re.error as exc:
                raise ValueError(f"path is not a valid regular expression: {exc}") from exc
        return self


class HttpAssertion(Strict):
    """One check on an HTTP response. Exactly one subject is given."""

    status: int | None = None
    json_path: str | None = None
    equals: Any = None
    exists: bool | None = None
    body_contains: str | None = None
    header: str | None = None
    contains: str | None = None
    max_response_ms: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_subject(self) -> HttpAssertion:
        subjects = [
            self.status is not None,
            self.json_path is not None,
            self.body_contains is not None,
            self.header is not None,
            self.max_response_ms is not None,
        ]
        if sum(subjects) != 1:
            raise ValueError(
                "an assertion checks exactly one of status, json_path, body_contains, header, "
                "max_response_ms"
            )
        return self


class HttpProbe(Strict):
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "GET"
    url: str = Field(description="Template: {name} is replaced by a variable.")
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | None = None
    json_body: Any = Field(default=None, alias="json")
    expect_status: int | list[int] = 200
    assertions: list[HttpAssertion] = Field(default_factory=list, alias="assert")
    extract: dict[str, str] = Field(
        default_factory=dict, description="variable → JSON path ($.a.b[0]) or header:Name"
    )
    timeout_s: float = Field(default=10.0, gt=0)
    follow_redirects: bool = True


class BrowserAction(Strict):
    """One browser action; exactly one verb is given."""

    goto: str | None = None
    click: str | None = None
    fill: dict[str, str] | None = Field(default=None, description="{selector: ..., value: ...}")
    wait_for: str | None = None
    assert_text: dict[str, str] | None = Field(default=None, description="{selector, text}")
    assert_url: str | None = Field(default=None, description="Regex the URL must match.")
    timeout_ms: float = Field(default=10_000, gt=0)

    @model_validator(mode="after")
    def _one_verb(self) -> BrowserAction:
        verbs = [self.goto, self.click, self.fill, self.wait_for, self.assert_text, self.assert_url]
        if sum(v is not None for v in verbs) != 1:
            raise ValueError(
                "a browser action has exactly one of goto, click, fill, wait_for, assert_text, "
                "assert_url"
            )
        if self.fill is not None and set(self.fill) != {"selector", "value"}:
            raise ValueError("fill needs exactly 'selector' and 'value'")
        if self.assert_text is not None and set(self.assert_text) != {"selector", "text"}:
            raise ValueError("assert_text needs exactly 'selector' and 'text'")
        return self


class ProbeStep(Strict):
    http: HttpProbe | None = None
    browser: list[BrowserAction] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> ProbeStep:
        if (self.http is None) == (self.browser is None):
            raise ValueError("a probe step is either 'http' or 'browser' (exactly one)")
        return self

    @property
    def kind(self) -> Literal["http", "browser"]:
        return "http" if self.http is not None else "browser"


class Step(Strict):
    id: str = Field(pattern=_ID)
    name: str | None = None
    rum: RumMatch | None = None
    probe: ProbeStep | None = None
    thresholds: Thresholds | None = Field(
        default=None, description="Overrides the journey's thresholds for this step."
    )
    dependencies: list[str] = Field(
        default_factory=list, description="Providers (catalog dependencies) this step calls."
    )


class Dependency(Strict):
    provider: str = Field(pattern=_ID)
    name: str | None = None
    kind: Literal["cdn", "api", "payment", "sso", "analytics", "other"] = "other"
    hosts: list[str] = Field(min_length=1, description="Host names or glob patterns (*.cdn.net).")


class Slo(Strict):
    name: str
    sli: Literal["availability", "latency", "error_rate"] = "availability"
    objective: float = Field(gt=0, lt=1, description="e.g. 0.995")
    window_days: int = Field(default=30, ge=1, le=90)


class ProbeSchedule(Strict):
    interval_s: float = Field(default=60, gt=0)
    locations: list[str] = Field(default_factory=lambda: ["local-1"])
    variables: dict[str, str] = Field(default_factory=dict)


class Journey(Strict):
    id: str = Field(pattern=_ID)
    name: str
    category: Category = Category.OTHER
    app: str = "default"
    criticality: Literal["low", "medium", "high", "critical"] = "medium"
    value_per_completion: float = Field(default=0.0, ge=0)
    currency: str = "EUR"
    thresholds: Thresholds = Field(default_factory=Thresholds)
    steps: list[Step] = Field(min_length=1)
    dependencies: list[Dependency] = Field(default_factory=list)
    slos: list[Slo] = Field(default_factory=list)
    probe: ProbeSchedule | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Journey:
        seen: set[str] = set()
        for step in self.steps:
            if step.id in seen:
                raise ValueError(f"step id {step.id!r} is used twice")
            seen.add(step.id)
        providers = {d.provider for d in self.dependencies}
        for step in self.steps:
            unknown = sorted(set(step.dependencies) - providers)
            if unknown:
                raise ValueError(
                    f"step {step.id!r} names unknown dependencies {unknown}; "
                    f"declare them under the journey's dependencies"
                )
        return self

    def thresholds_for(self, step_id: str) -> Thresholds:
        for step in self.steps:
            if step.id == step_id and step.thresholds is not None:
                return step.thresholds
        return self.thresholds


class App(Strict):
    """A site sending RUM: its public site key and the origins allowed to send."""

    id: str = Field(pattern=_ID)
    site_key: str = Field(min_length=8)
    allowed_origins: list[str] = Field(default_factory=lambda: ["*"])
    sample_rate: float = Field(default=1.0, gt=0, le=1)


class Maintenance(Strict):
    journey: str = Field(description="A journey id, or '*' for all.")
    start: str = Field(description="ISO 8601 start (UTC when no offset).")
    end: str

    @field_validator("start", "end")
    @classmethod
    def _iso(cls, value: str) -> str:
        from datetime import datetime

        datetime.fromisoformat(value)
        return value


class Catalog(Strict):
    version: Literal[1] = 1
    apps: list[App] = Field(default_factory=list)
    journeys: list[Journey] = Field(min_length=1)
    maintenance: list[Maintenance] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> Catalog:
        ids = [j.id for j in self.journeys]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"journey ids used twice: {dupes}")
        return self

    def journey(self, journey_id: str) -> Journey | None:
        return next((j for j in self.journeys if j.id == journey_id), None)


def describe_location(loc: tuple[int | str, ...], raw: dict[str, Any]) -> str:
    """Turn a pydantic error location into 'journey 'x' step 'y': field.path'."""
    parts: list[str] = []
    fields: list[str] = []
    node: Any = raw
    i = 0
    while i < len(loc):
        key = loc[i]
        if (
            key in ("journeys", "steps", "apps")
            and i + 1 < len(loc)
            and isinstance(loc[i + 1], int)
        ):
            index = loc[i + 1]
            assert isinstance(index, int)
            items = node.get(key, []) if isinstance(node, dict) else []
            node = items[index] if index < len(items) else {}
            ident = node.get("id", f"#{index + 1}") if isinstance(node, dict) else f"#{index + 1}"
            label = {"journeys": "journey", "steps": "step", "apps": "app"}[str(key)]
            parts.append(f"{label} {ident!r}")
            i += 2
            continue
        fields.append(str(key))
        node = node.get(key, {}) if isinstance(node, dict) else {}
        i += 1
    where = " ".join(parts) or "catalog"
    return f"{where}: {'.'.join(fields)}" if fields else where


def parse_catalog(raw: Any, *, origin: str = "<catalog>") -> Catalog:
    if not isinstance(raw, dict):
        raise CatalogError(f"{origin}: the catalog must be a mapping with a 'journeys' list")
    try:
        return Catalog.model_validate(raw)
    except ValidationError as exc:
        lines = [f"- {describe_location(err['loc'], raw)}: {err['msg']}" for err in exc.errors()]
        raise CatalogError(
            f"{origin}: invalid journey catalog ({len(lines)} problem(s)):\n" + "\n".join(lines)
        ) from None


def load_catalog(path: Path) -> Catalog:
    """Read and validate a catalog file; every problem names the journey, step and field."""
    if not path.is_file():
        raise CatalogError(
            f"journey catalog not found: {path} (set JOURNEYLENS_CATALOG_PATH to your catalog "
            f"YAML, e.g. infra/catalog/demo-shop.yaml)"
        )
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise CatalogError(f"{path}: not valid YAML: {exc}") from None
    return parse_catalog(raw, origin=str(path))
