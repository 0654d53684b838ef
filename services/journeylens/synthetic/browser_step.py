"""Browser probe steps: Playwright (async) driving Debian's Chromium.

One `BrowserSession` (a headless Chromium) serves every run of a probe process; each run gets
a fresh browser context (`JourneyBrowser`) whose cookies last for the run's steps. An init
script observes the page with PerformanceObserver (LCP, CLS, FCP, event timing for INP) so each
step reports the Core Web Vitals and the navigation timing of the page it ends on. An input the
page navigated away from before the browser reported its event timing entry (which comes after
the next paint: a busy machine delays it) counts until the first frame after it, or until the
page went. A failed step leaves a screenshot under ``ProbeSettings.screenshot_dir``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, BrowserContext, Frame, Page, Playwright, async_playwright
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeout

from journeylens.contracts.common import TimingPhases, WebVitals
from journeylens.contracts.synthetic_results_v1 import FailedAssertion, StepResult, StepStatus
from journeylens.synthetic.outcome import PROBE_HEADER, PROBE_UA_TOKEN, StepOutcome, utc_now
from journeylens.synthetic.plan import (
    Action,
    AssertText,
    AssertUrl,
    BrowserStepPlan,
    Click,
    Fill,
    Goto,
    WaitFor,
)

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SETTLE_TIMEOUT_MS = 10_000
"""How long a step waits at its end for a navigation it started to load."""
VIEWPORT = {"width": 1280, "height": 800}
_NETWORK_ERROR = re.compile(r"net::ERR_|NS_ERROR_|ECONNREFUSED")

VITALS_SCRIPT = """
(() => {
  if (window.__journeylensProbe) { return; }
  const state = { lcp: null, fcp: null, cls: 0, inp: null, session: 0, entries: [] };
  window.__journeylensProbe = state;
  const observers = [];
  const observe = (type, onEntry, extra) => {
    try {
      const observer = new PerformanceObserver((list) => list.getEntries().forEach(onEntry));
      observer.observe(Object.assign({ type: type, buffered: true }, extra || {}));
      observers.push([observer, onEntry]);
    } catch (e) { /* entry type not supported */ }
  };
  observe("largest-contentful-paint", (e) => { state.lcp = e.startTime; });
  observe("paint", (e) => {
    if (e.name === "first-contentful-paint") { state.fcp = e.startTime; }
  });
  observe("layout-shift", (e) => {
    if (e.hadRecentInput) { return; }
    const first = state.entries[0];
    const last = state.entries[state.entries.length - 1];
    if (last && e.startTime - last.startTime < 1000 && e.startTime - first.startTime < 5000) {
      state.session += e.value; state.entries.push(e);
    } else {
      state.session = e.value; state.entries = [e];
    }
    state.cls = Math.max(state.cls, state.session);
  });
  // Inputs the browser has not reported an event timing entry for yet: time stamp -> time to
  // the first frame after the input (null until that frame).
  const pending = new Map();
  const interaction = (e) => {
    state.inp = Math.max(state.inp || 0, e.duration);
    pending.forEach((_, at) => { if (at <= e.startTime + 1) { pending.delete(at); } });
  };
  observe("event", (e) => { if (e.interactionId) { interaction(e); } }, { durationThreshold: 16 });
  observe("first-input", interaction);
  const input = (e) => {
    const at = e.timeStamp;
    pending.set(at, null);
    requestAnimationFrame(() => setTimeout(() => {
      if (pending.has(at)) { pending.set(at, performance.now() - at); }
    }, 0));
  };
  addEventListener("pointerdown", input, true);
  addEventListener("keydown", input, true);
  state.pending = pending;
  state.flush = () => observers.forEach(([o, onEntry]) => o.takeRecords().forEach(onEntry));
  // An interaction that navigates away (a submit, a link) belongs to the step: carry it over.
  addEventListener("pagehide", () => {
    observers.forEach(([observer, onEntry]) => observer.takeRecords().forEach(onEntry));
    // The page went before the browser reported an input (its entry comes after the next
    // paint): it kept the user waiting until the first frame after it, or until now.
    pending.forEach((frame, at) => {
      state.inp = Math.max(state.inp || 0, frame === null ? performance.now() - at : frame);
    });
    try {
      if (state.inp !== null) {
        const carried = Number(sessionStorage.getItem("__journeylensInp") || 0);
        sessionStorage.setItem("__journeylensInp", String(Math.max(carried, state.inp)));
      }
    } catch (e) { /* storage unavailable */ }
  });
})();
"""

SNAPSHOT_SCRIPT = """
async () => {
  const state = window.__journeylensProbe || {};
  for (let waited = 0; state.fcp === null && waited < 1000; waited += 50) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  if (state.flush) {
    // Inputs of this page not reported yet (an entry comes after the next paint): wait for
    // their entries a little, then count an input without one until the frame after it.
    for (let waited = 0; state.pending.size && waited < 1000; waited += 25) {
      state.flush();
      let framed = true;
      state.pending.forEach((frame) => { framed = framed && frame !== null; });
      if (framed && waited >= 200) { break; }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    state.flush();
    state.pending.forEach((frame) => {
      if (frame !== null) { state.inp = Math.max(state.inp || 0, frame); }
    });
    state.pending.clear();
  }
  let inp = state.inp === undefined ? null : state.inp;
  try {
    const carried = sessionStorage.getItem("__journeylensInp");
    if (carried !== null) {
      inp = Math.max(inp || 0, Number(carried));
      sessionStorage.removeItem("__journeylensInp");
    }
  } catch (e) { /* storage unavailable */ }
  const nav = performance.getEntriesByType("navigation")[0];
  const vitals = {
    lcp_ms: state.lcp, fcp_ms: state.fcp, cls: state.cls === undefined ? null : state.cls,
    inp_ms: inp,
    ttfb_ms: nav ? Math.max(nav.responseStart - (nav.activationStart || 0), 0) : null,
  };
  let timings = null;
  if (nav) {
    const secure = nav.secureConnectionStart > 0 ? nav.secureConnectionStart : null;
    timings = {
      dns_ms: nav.domainLookupEnd - nav.domainLookupStart,
      connect_ms: (secure || nav.connectEnd) - nav.connectStart,
      tls_ms: secure ? nav.connectEnd - secure : 0,
      ttfb_ms: nav.responseStart - nav.requestStart,
      transfer_ms: nav.responseEnd - nav.responseStart,
    };
  }
  return { vitals: vitals, timings: timings };
}
"""


class BrowserSession:
    """A headless Chromium shared by the runs of a probe process, launched on first use."""

    def __init__(self, chromium_path: Path) -> None:
        self.chromium_path = chromium_path
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self._lock = asyncio.Lock()

    async def browser(self) -> Browser:
        async with self._lock:
            if self._browser is None or not self._browser.is_connected():
                if self._playwright is None:
                    self._playwright = await async_playwright().start()
                self._browser = await self._playwright.chromium.launch(
                    executable_path=str(self.chromium_path), args=CHROMIUM_ARGS, headless=True
                )
            return self._browser

    async def close(self) -> None:
        async with self._lock:
            if self._browser is not None:
                await _quietly(self._browser.close())
                self._browser = None
            if self._playwright is not None:
                await _quietly(self._playwright.stop())
                self._playwright = None


async def _quietly(awaitable: Any) -> None:
    with contextlib.suppress(PlaywrightError):
        await awaitable


def probe_user_agent(browser_version: str) -> str:
    """Chrome's desktop user agent (not "HeadlessChrome") plus the probe token."""
    major = browser_version.split(".", 1)[0]
    return (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        f"Chrome/{major}.0.0.0 Safari/537.36 {PROBE_UA_TOKEN}"
    )


class _StepFailed(Exception):
    def __init__(self, failure: FailedAssertion, network: bool = False) -> None:
        super().__init__(failure.message)
        self.failure = failure
        self.network = network


class JourneyBrowser:
    """The browser side of one run: one context and one page, opened at the first browser step."""

    def __init__(
        self, session: BrowserSession, run_id: str, journey_id: str, screenshot_dir: Path
    ) -> None:
        self.session = session
        self.run_id = run_id
        self.journey_id = journey_id
        self.screenshot_dir = screenshot_dir
        self._context: BrowserContext | None = None
        self._page: Page | None = None
        self._navigations = 0

    async def page(self) -> Page:
        if self._page is None:
            browser = await self.session.browser()
            self._context = await browser.new_context(
                user_agent=probe_user_agent(browser.version),
                extra_http_headers={PROBE_HEADER: self.run_id},
                viewport={"width": VIEWPORT["width"], "height": VIEWPORT["height"]},
            )
            await self._context.add_init_script(VITALS_SCRIPT)
            self._page = await self._context.new_page()
            self._page.on("framenavigated", self._on_navigated)
        return self._page

    def _on_navigated(self, frame: Frame) -> None:
        if self._page is not None and frame == self._page.main_frame:
            self._navigations += 1

    async def close(self) -> None:
        if self._context is not None:
            await _quietly(self._context.close())
        self._context = None
        self._page = None

    async def run_step(self, plan: BrowserStepPlan, variables: Mapping[str, str]) -> StepOutcome:
        """Run one browser step once; network failures are flagged for retry, never raised."""
        page = await self.page()  # launching Chromium is not part of the step's time
        started_at = utc_now()
        started = time.perf_counter()
        navigations = self._navigations
        failure: FailedAssertion | None = None
        network = False
        try:
            for action in plan.actions:
                await _act(page, action, variables)
            await _settle(page)
        except _StepFailed as exc:
            failure, network = exc.failure, exc.network
        except PlaywrightError as exc:
            network = bool(_NETWORK_ERROR.search(str(exc))) or page.url.startswith("chrome-error:")
            failure = FailedAssertion(assertion="browser", message=_first_line(exc))
        duration_ms = (time.perf_counter() - started) * 1000
        vitals, timings = await _measure(page)
        screenshot = await self._screenshot(page, plan.step_id) if failure else None
        return StepOutcome(
            StepResult(
                step=plan.step_id,
                kind="browser",
                status=StepStatus.FAILED if failure else StepStatus.PASSED,
                started_at=started_at,
                duration_ms=duration_ms,
                url=page.url,
                timings=timings if self._navigations != navigations else TimingPhases(),
                vitals=vitals,
                failed_assertions=[failure] if failure else [],
                error=failure.message if failure else None,
                screenshot=screenshot,
            ),
            network_error=network,
        )

    async def _screenshot(self, page: Page, step_id: str) -> str | None:
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        path = self.screenshot_dir / self.journey_id / f"{stamp}-{self.run_id[:12]}-{step_id}.png"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(path), full_page=True, timeout=10_000)
        except (PlaywrightError, OSError):
            return None
        return str(path)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


async def _act(page: Page, action: Action, variables: Mapping[str, str]) -> None:
    timeout = action.timeout_ms
    try:
        if isinstance(action, Goto):
            await _goto(page, action.url.render(variables), timeout)
        elif isinstance(action, Click):
            await page.locator(action.selector).first.click(timeout=timeout)
        elif isinstance(action, Fill):
            await page.locator(action.selector).first.fill(
                action.value.render(variables), timeout=timeout
            )
        elif isinstance(action, WaitFor):
            await page.locator(action.selector).first.wait_for(state="visible", timeout=timeout)
        elif isinstance(action, AssertText):
            await _assert_text(page, action, action.text.render(variables))
        elif isinstance(action, AssertUrl):
            await _assert_url(page, action)
    except PlaywrightTimeout as exc:
        raise _StepFailed(_timeout_failure(page, action), network=_on_error_page(page)) from exc


def _on_error_page(page: Page) -> bool:
    return page.url.startswith("chrome-error:")


def _timeout_failure(page: Page, action: Action) -> FailedAssertion:
    if _on_error_page(page):
        return FailedAssertion(assertion="page loads", message="the page failed to load")
    within = f"within {action.timeout_ms:g} ms"
    if isinstance(action, Goto):
        return FailedAssertion(assertion="goto", message=f"goto: page did not load {within}")
    verb = type(action).__name__.lower().replace("waitfor", "wait_for")
    selector = getattr(action, "selector", "")
    return FailedAssertion(
        assertion=f"{verb} {selector}",
        message=f"{verb} {selector!r}: no matching visible element {within}",
    )


async def _goto(page: Page, url: str, timeout: float) -> None:
    try:
        response = await page.goto(url, timeout=timeout, wait_until="load")
    except PlaywrightTimeout as exc:
        raise _StepFailed(
            FailedAssertion(assertion=f"goto {url}", message=f"goto {url}: timeout"), network=True
        ) from exc
    except PlaywrightError as exc:
        network = bool(_NETWORK_ERROR.search(str(exc)))
        raise _StepFailed(
            FailedAssertion(assertion=f"goto {url}", message=f"goto {url}: {_first_line(exc)}"),
            network=network,
        ) from exc
    if response is not None and response.status >= 400:
        raise _StepFailed(
            FailedAssertion(
                assertion=f"goto {url} status < 400",
                expected="< 400",
                actual=str(response.status),
                message=f"goto {url}: HTTP {response.status}",
            )
        )


async def _assert_text(page: Page, action: AssertText, text: str) -> None:
    locator = page.locator(action.selector).first
    deadline = time.monotonic() + action.timeout_ms / 1000
    actual: str | None = None
    while True:
        try:
            actual = await locator.inner_text(timeout=250)
        except PlaywrightError:
            actual = None
        if actual is not None and text in actual:
            return
        if time.monotonic() >= deadline:
            break
        await asyncio.sleep(0.1)
    shown = "no element" if actual is None else repr(actual.strip()[:120])
    raise _StepFailed(
        FailedAssertion(
            assertion=f"text of {action.selector} contains {text!r}",
            expected=text,
            actual=actual,
            message=f"assert_text {action.selector!r}: expected {text!r}, got {shown}",
        ),
        network=_on_error_page(page),
    )


async def _assert_url(page: Page, action: AssertUrl) -> None:
    try:
        await page.wait_for_url(
            lambda url: bool(action.pattern.search(url)),
            timeout=action.timeout_ms,
            wait_until="commit",
        )
    except PlaywrightTimeout as exc:
        raise _StepFailed(
            FailedAssertion(
                assertion=f"url matches {action.pattern.pattern}",
                expected=action.pattern.pattern,
                actual=page.url,
                message=f"assert_url: expected a URL matching {action.pattern.pattern!r}, "
                f"got {page.url!r}",
            ),
            network=_on_error_page(page),
        ) from exc


async def _settle(page: Page) -> None:
    """Let a navigation started by the step's last action finish loading."""
    with contextlib.suppress(PlaywrightTimeout):
        await page.wait_for_load_state("load", timeout=SETTLE_TIMEOUT_MS)


async def _measure(page: Page) -> tuple[WebVitals | None, TimingPhases]:
    """Vitals and navigation timing of the current document (None when unavailable)."""
    try:
        # A frame after the last action lets paint and LCP entries arrive.
        await page.evaluate("() => new Promise((r) => requestAnimationFrame(() => setTimeout(r)))")
        # The snapshot waits (up to 1 s) for the first contentful paint of a fresh page.
        snapshot = await page.evaluate(SNAPSHOT_SCRIPT)
    except PlaywrightError:
        return None, TimingPhases()
    if not isinstance(snapshot, dict):
        return None, TimingPhases()
    vitals = _clean(snapshot.get("vitals"))
    timings = _clean(snapshot.get("timings"))
    return (WebVitals(**vitals) if vitals else None), TimingPhases(**timings)


def _clean(values: Any) -> dict[str, float]:
    if not isinstance(values, dict):
        return {}
    return {
        key: round(max(float(value), 0.0), 3)
        for key, value in values.items()
        if isinstance(value, int | float)
    }
