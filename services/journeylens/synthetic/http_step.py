"""One HTTP probe step with httpx: request, timing phases, assertions, extracted variables.

Timing phases come from httpcore's trace events (``extensions={"trace": ...}``), back to back:
DNS (resolving the host ourselves with ``loop.getaddrinfo`` just before each request), connect
(until ``connection.connect_tcp.complete``), TLS (until ``connection.start_tls.complete``), TTFB
(request sent until ``receive_response_headers.complete``) and transfer (body read). Each step
opens its own connection (no keep-alive between steps) so every step reports every phase.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import json
import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from journeylens.contracts.common import TimingPhases
from journeylens.contracts.synthetic_results_v1 import FailedAssertion, StepResult, StepStatus
from journeylens.synthetic.outcome import (
    HTTP_USER_AGENT,
    PROBE_HEADER,
    StepOutcome,
    utc_now,
    with_probe_token,
)
from journeylens.synthetic.plan import (
    BodyContainsCheck,
    Check,
    HeaderCheck,
    HttpStepPlan,
    JsonPath,
    JsonPathCheck,
    MaxResponseCheck,
    format_json_path,
    render_value,
)

MAX_REDIRECTS = 10
NETWORK_ERRORS: tuple[type[Exception], ...] = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
    TimeoutError,
    socket.gaierror,
)
"""Failures of the network, not of the journey: only these are retried."""

NOT_SENT_ERRORS: tuple[type[Exception], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    socket.gaierror,
)
"""Network failures before the request left the probe (DNS, connect): always safe to retry."""

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
"""RFC 9110 §9.2.2: sending these twice has the effect of sending them once."""

_MISSING = object()


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """Built once: loading the CA bundle costs tens of ms, which every run would pay."""
    return httpx.create_ssl_context()


def probe_client(run_id: str) -> httpx.AsyncClient:
    """The HTTP client of one run: marked requests, cookies kept, a new connection per step."""
    return httpx.AsyncClient(
        verify=_tls_context(),
        headers={"User-Agent": HTTP_USER_AGENT, PROBE_HEADER: run_id},
        limits=httpx.Limits(max_keepalive_connections=0),
        follow_redirects=False,
    )


# --- timing --------------------------------------------------------------------------------


@dataclass
class _Phases:
    dns: float = 0.0
    connect: float = 0.0
    tls: float = 0.0
    ttfb: float = 0.0
    transfer: float = 0.0
    saw: set[str] = field(default_factory=set)

    def timings(self) -> TimingPhases:
        def ms(name: str, seconds: float) -> float | None:
            return round(seconds * 1000, 3) if name in self.saw else None

        return TimingPhases(
            dns_ms=ms("dns", self.dns),
            connect_ms=ms("connect", self.connect),
            tls_ms=ms("tls", self.tls),
            ttfb_ms=ms("ttfb", self.ttfb),
            transfer_ms=ms("transfer", self.transfer),
        )


class _TraceRecorder:
    """Collects httpcore trace events of one request (one hop)."""

    def __init__(self) -> None:
        self.marks: dict[str, float] = {}

    async def __call__(self, event: str, info: Mapping[str, Any]) -> None:
        # "http11.send_request_headers.started" → "send_request_headers.started"
        name = event.split(".", 1)[1] if event.startswith(("http11.", "http2.")) else event
        self.marks.setdefault(name, time.perf_counter())

    def add_to(self, phases: _Phases, resolved: float, body_done: float) -> None:
        """Add this hop's phases, back to back from the end of DNS to the end of the body.

        Each phase runs from where the previous one ended, so the client's own work between
        network events (pool, scheduling) is counted in the phase it delays and the phases of a
        step add up to its duration.
        """
        cursor = resolved
        for name, event in (
            ("connect", "connection.connect_tcp.complete"),
            ("tls", "connection.start_tls.complete"),
            ("ttfb", "receive_response_headers.complete"),
        ):
            mark = self.marks.get(event)
            if mark is None:
                continue
            setattr(phases, name, getattr(phases, name) + max(0.0, mark - cursor))
            phases.saw.add(name)
            cursor = max(cursor, mark)
        if "receive_response_headers.complete" in self.marks:
            phases.transfer += max(0.0, body_done - cursor)
            phases.saw.add("transfer")
        if "connect" in phases.saw:
            phases.saw.add("tls")  # plain HTTP: TLS took 0 ms


async def _resolve(url: httpx.URL, phases: _Phases) -> float:
    """Time the DNS lookup of the URL's host (0 ms for an IP literal); returns when it ended."""
    phases.saw.add("dns")
    started = time.perf_counter()
    try:
        ipaddress.ip_address(url.host)
        return started
    except ValueError:
        pass
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        await asyncio.get_running_loop().getaddrinfo(url.host, port, type=socket.SOCK_STREAM)
    finally:
        phases.dns += time.perf_counter() - started
    return time.perf_counter()


# --- the step ------------------------------------------------------------------------------


@dataclass
class _Exchange:
    response: httpx.Response
    body: bytes
    phases: _Phases
    elapsed_ms: float


async def _exchange(
    client: httpx.AsyncClient, plan: HttpStepPlan, variables: Mapping[str, str]
) -> _Exchange:
    headers = {name: template.render(variables) for name, template in plan.headers}
    for name in list(headers):
        if name.lower() == "user-agent":
            headers[name] = with_probe_token(headers[name])
    kwargs: dict[str, Any] = {"headers": headers, "timeout": plan.timeout_s}
    if plan.body is not None:
        kwargs["content"] = plan.body.render(variables).encode()
    elif plan.has_json:
        kwargs["json"] = render_value(plan.json_body, variables)
    request = client.build_request(plan.method, plan.url.render(variables), **kwargs)
    phases = _Phases()
    started = time.perf_counter()
    for _hop in range(MAX_REDIRECTS + 1):
        recorder = _TraceRecorder()
        request.extensions = {**request.extensions, "trace": recorder}
        resolved = await _resolve(request.url, phases)
        response = await client.send(request, stream=True)
        try:
            body = await response.aread()
        finally:
            await response.aclose()
        recorder.add_to(phases, resolved, time.perf_counter())
        if not (plan.follow_redirects and response.next_request is not None):
            break
        request = response.next_request
    else:
        raise httpx.TooManyRedirects(f"more than {MAX_REDIRECTS} redirects", request=request)
    return _Exchange(response, body, phases, (time.perf_counter() - started) * 1000)


async def run_http_step(
    client: httpx.AsyncClient, plan: HttpStepPlan, variables: Mapping[str, str]
) -> StepOutcome:
    """Run one HTTP step once; network failures are flagged for retry, never raised."""
    started_at = utc_now()
    started = time.perf_counter()
    url = plan.url.render(variables)
    base = {
        "step": plan.step_id,
        "kind": "http",
        "started_at": started_at,
        "url": url,
        "method": plan.method,
    }
    try:
        async with asyncio.timeout(plan.timeout_s):
            exchange = await _exchange(client, plan, variables)
    except NETWORK_ERRORS as exc:
        # A POST that timed out may have charged the card: never send it a second time.
        retry_safe = plan.method.upper() in IDEMPOTENT_METHODS or isinstance(exc, NOT_SENT_ERRORS)
        error = describe_network_error(exc, plan.timeout_s)
        if not retry_safe:
            error += f" (not retried: the {plan.method.upper()} may have reached the server)"
        return StepOutcome(
            StepResult(
                **base,
                status=StepStatus.FAILED,
                duration_ms=(time.perf_counter() - started) * 1000,
                error=error,
            ),
            network_error=True,
            retry_safe=retry_safe,
        )
    except httpx.HTTPError as exc:
        return StepOutcome(
            StepResult(
                **base,
                status=StepStatus.FAILED,
                duration_ms=(time.perf_counter() - started) * 1000,
                error=f"{type(exc).__name__}: {exc}",
            )
        )
    failures = check_response(plan, exchange, variables)
    extracted, extract_failures = extract_variables(plan, exchange)
    failures.extend(extract_failures)
    return StepOutcome(
        StepResult(
            **base,
            status=StepStatus.FAILED if failures else StepStatus.PASSED,
            duration_ms=exchange.elapsed_ms,
            http_status=exchange.response.status_code,
            timings=exchange.phases.timings(),
            failed_assertions=failures,
            error=failures[0].message if failures else None,
        ),
        extracted=extracted if not failures else {},
    )


def describe_network_error(exc: BaseException, timeout_s: float) -> str:
    if isinstance(exc, socket.gaierror):
        return f"DNS lookup failed: {exc}"
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return f"timeout after {timeout_s:g} s ({type(exc).__name__})"
    return f"network error ({type(exc).__name__}): {exc}"


# --- assertions and extraction -------------------------------------------------------------


def _json(exchange: _Exchange) -> Any:
    try:
        return json.loads(exchange.body)
    except ValueError:
        return _MISSING


def lookup(document: Any, path: JsonPath) -> Any:
    """The value at ``path`` in a JSON document, or ``_MISSING``."""
    node = document
    for segment in path:
        if isinstance(segment, int) and isinstance(node, list):
            if not -len(node) <= segment < len(node):
                return _MISSING
            node = node[segment]
        elif isinstance(segment, str) and isinstance(node, dict) and segment in node:
            node = node[segment]
        else:
            return _MISSING
    return node


def as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _short(value: Any, limit: int = 120) -> str:
    text = as_text(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_response(
    plan: HttpStepPlan, exchange: _Exchange, variables: Mapping[str, str]
) -> list[FailedAssertion]:
    failures: list[FailedAssertion] = []
    status = exchange.response.status_code
    if status not in plan.status.expected:
        wanted = " or ".join(str(code) for code in plan.status.expected)
        failures.append(
            FailedAssertion(
                assertion=f"status in {list(plan.status.expected)}",
                expected=wanted,
                actual=str(status),
                message=f"expected status {wanted}, got {status}",
            )
        )
    for check in plan.checks:
        failure = _check(check, exchange, variables)
        if failure is not None:
            failures.append(failure)
    return failures


def _check(
    check: Check, exchange: _Exchange, variables: Mapping[str, str]
) -> FailedAssertion | None:
    if isinstance(check, MaxResponseCheck):
        if exchange.elapsed_ms <= check.max_ms:
            return None
        return FailedAssertion(
            assertion=f"response time <= {check.max_ms:g} ms",
            expected=f"<= {check.max_ms:g}",
            actual=f"{exchange.elapsed_ms:.0f}",
            message=f"response time {exchange.elapsed_ms:.0f} ms > {check.max_ms:g} ms",
        )
    if isinstance(check, BodyContainsCheck):
        text = check.text.render(variables)
        if text in exchange.body.decode(exchange.response.encoding or "utf-8", "replace"):
            return None
        return FailedAssertion(
            assertion=f"body contains {text!r}",
            expected=text,
            message=f"body does not contain {text!r}",
        )
    if isinstance(check, HeaderCheck):
        return _check_header(check, exchange, variables)
    return _check_json(check, exchange, variables)


def _check_header(
    check: HeaderCheck, exchange: _Exchange, variables: Mapping[str, str]
) -> FailedAssertion | None:
    actual = exchange.response.headers.get(check.name)
    if check.contains is None:
        if actual is not None:
            return None
        return FailedAssertion(
            assertion=f"header {check.name} exists", message=f"header {check.name} is missing"
        )
    wanted = check.contains.render(variables)
    if actual is not None and wanted in actual:
        return None
    return FailedAssertion(
        assertion=f"header {check.name} contains {wanted!r}",
        expected=wanted,
        actual=actual,
        message=f"header {check.name}: expected to contain {wanted!r}, got {actual!r}",
    )


def _check_json(
    check: JsonPathCheck, exchange: _Exchange, variables: Mapping[str, str]
) -> FailedAssertion | None:
    document = _json(exchange)
    if document is _MISSING:
        return FailedAssertion(
            assertion=f"{check.source} (JSON)",
            message=f"{check.source}: the response is not JSON",
        )
    actual = lookup(document, check.path)
    if check.has_equals:
        expected = render_value(check.equals, variables)
        if actual is not _MISSING and (
            actual == expected or (isinstance(expected, str) and as_text(actual) == expected)
        ):
            return None
        shown = "nothing" if actual is _MISSING else _short(actual)
        return FailedAssertion(
            assertion=f"{check.source} == {_short(expected)}",
            expected=_short(expected),
            actual=None if actual is _MISSING else _short(actual),
            message=f"{check.source}: expected {_short(expected)}, got {shown}",
        )
    present = actual is not _MISSING
    if present == check.exists:
        return None
    return FailedAssertion(
        assertion=f"{check.source} {'exists' if check.exists else 'absent'}",
        expected="present" if check.exists else "absent",
        actual="present" if present else "absent",
        message=f"{check.source}: expected to {'exist' if check.exists else 'be absent'}",
    )


def extract_variables(
    plan: HttpStepPlan, exchange: _Exchange
) -> tuple[dict[str, str], list[FailedAssertion]]:
    values: dict[str, str] = {}
    failures: list[FailedAssertion] = []
    document: Any = _MISSING
    for extraction in plan.extractions:
        value: Any = _MISSING
        if extraction.header is not None:
            value = exchange.response.headers.get(extraction.header, _MISSING)
        else:
            assert extraction.json_path is not None
            if document is _MISSING:
                document = _json(exchange)
            if document is not _MISSING:
                value = lookup(document, extraction.json_path)
        if value is _MISSING or value is None:
            where = extraction.header or format_json_path(extraction.json_path or ())
            failures.append(
                FailedAssertion(
                    assertion=f"extract {extraction.variable} from {extraction.source}",
                    message=f"cannot extract {extraction.variable!r}: {where} not in the response",
                )
            )
            continue
        values[extraction.variable] = as_text(value)
    return values, failures
