"""One parser per input format, registered by format name (the collector's route picks one)."""

from __future__ import annotations

from journeylens.collector.formats import (
    boomerang,
    faro,
    journeylens,
    otlp,
    reporting_api,
    web_vitals,
)
from journeylens.collector.formats.base import (
    MalformedBody,
    Parser,
    ParseResult,
    Rejected,
    RequestMeta,
)

PARSERS: dict[str, Parser] = {
    "journeylens": journeylens.parse,
    "web-vitals": web_vitals.parse,
    "boomerang": boomerang.parse,
    "otlp-logs": otlp.parse_logs,
    "otlp-traces": otlp.parse_traces,
    "faro": faro.parse,
    "reporting-api": reporting_api.parse,
}

__all__ = ["PARSERS", "MalformedBody", "ParseResult", "Parser", "Rejected", "RequestMeta"]
