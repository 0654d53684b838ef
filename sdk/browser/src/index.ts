/**
 * JourneyLens RUM agent, served by the collector as /rum.js.
 *
 *   <script src="https://collector.example/rum.js" data-key="pk_..."
 *           data-endpoint="https://collector.example" data-sample-rate="0.5" async></script>
 *
 * Sends the JourneyLens beacon JSON (see services/journeylens/collector/formats/journeylens.py)
 * to POST {endpoint}/v1/beacons?k={key} with navigator.sendBeacon (text/plain, no CORS
 * preflight), falling back to fetch keepalive. Items are batched and flushed when the page is
 * hidden (visibilitychange=hidden, pagehide), on soft navigations, when a batch is full, and
 * a few seconds after load.
 *
 * Page API (calls made before the script loaded are replayed from `window.journeylens.q`):
 *   window.journeylens.step("checkout:payment")
 *   window.journeylens.conversion(129.9, "EUR", "order")
 *   window.journeylens.flush()
 */

import { onCLS, onFCP, onINP, onLCP, onTTFB, type Metric } from "web-vitals";

type Item = Record<string, unknown> & { type: string; ts: number };

interface Config {
  key: string;
  endpoint: string;
  sampleRate: number;
  flushDelayMs: number;
}

interface PageState {
  pid: string;
  url: string;
  startedAt: number; // performance.now() at the page (or soft navigation) start
}

interface Api {
  step(name: string): void;
  conversion(value: number, currency?: string, name?: string): void;
  flush(): void;
  sampled: boolean;
  q?: unknown[][];
}

declare global {
  interface Window {
    journeylens?: Partial<Api> & { q?: unknown[][] };
    journeylensConfig?: Partial<Config>;
  }
}

const MAX_ITEMS_PER_BATCH = 20;
const MAX_BEACON_BYTES = 60_000;
const MAX_ERRORS_PER_PAGE = 25;
const SESSION_KEY = "journeylens.sid";
const CARRIES_STEP = new Set(["web_vital", "error", "api_error", "conversion"]);

function randomId(prefix: string): string {
  const bytes = new Uint8Array(12);
  (window.crypto || (window as unknown as { msCrypto: Crypto }).msCrypto).getRandomValues(bytes);
  let out = prefix;
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

function readConfig(): Config | null {
  const script =
    (document.currentScript as HTMLScriptElement | null) ||
    document.querySelector<HTMLScriptElement>("script[data-key][src*='rum.js']");
  const given = window.journeylensConfig || {};
  const key = given.key || script?.dataset.key;
  if (!key) return null;
  let endpoint = given.endpoint || script?.dataset.endpoint;
  if (!endpoint && script?.src) endpoint = new URL(script.src, location.href).origin;
  if (!endpoint) return null;
  const rate = Number(given.sampleRate ?? script?.dataset.sampleRate ?? 1);
  const delay = Number(given.flushDelayMs ?? script?.dataset.flushDelay ?? 5000);
  return {
    key,
    endpoint: endpoint.replace(/\/+$/, ""),
    sampleRate: rate > 0 && rate <= 1 ? rate : 1,
    flushDelayMs: delay >= 0 ? delay : 5000,
  };
}

function sessionId(): string {
  try {
    const existing = sessionStorage.getItem(SESSION_KEY);
    if (existing) return existing;
    const created = randomId("s-");
    sessionStorage.setItem(SESSION_KEY, created);
    return created;
  } catch {
    return randomId("s-"); // storage blocked: one session per page
  }
}

function navigationEntry(): PerformanceNavigationTiming | undefined {
  const entries = performance.getEntriesByType?.("navigation") as
    | PerformanceNavigationTiming[]
    | undefined;
  return entries && entries[0];
}

function navigationType(): string {
  const entry = navigationEntry();
  if (document.prerendering || (entry?.activationStart ?? 0) > 0) return "prerender";
  return entry ? entry.type.replace(/_/g, "-") : "navigate";
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}

function positive(value: number): number | undefined {
  return value > 0 && Number.isFinite(value) ? round(value) : undefined;
}

function navigationTiming(): Record<string, number> | undefined {
  const e = navigationEntry();
  if (!e) return undefined;
  const nav: Record<string, number | undefined> = {
    redirect: positive(e.redirectEnd - e.redirectStart),
    dns: positive(e.domainLookupEnd - e.domainLookupStart),
    connect: positive(e.connectEnd - e.connectStart),
    tls: e.secureConnectionStart > 0 ? positive(e.connectEnd - e.secureConnectionStart) : undefined,
    request: positive(e.responseStart - e.requestStart),
    response: positive(e.responseEnd - e.responseStart),
    dom_interactive: positive(e.domInteractive),
    dom_content_loaded: positive(e.domContentLoadedEventEnd),
    load_event: positive(e.loadEventEnd),
    duration: positive(e.loadEventEnd || e.duration),
  };
  const kept: Record<string, number> = {};
  for (const [k, v] of Object.entries(nav)) if (v !== undefined) kept[k] = v;
  return Object.keys(kept).length ? kept : undefined;
}

function hostOf(url: string): string | null {
  try {
    return new URL(url, location.href).host || null;
  } catch {
    return null;
  }
}

/** Resource timings since `since` (performance.now()), grouped per host (host:port). */
function resourcesByHost(since: number, ownHost: string | null): Record<string, unknown>[] {
  const entries = (performance.getEntriesByType?.("resource") || []) as PerformanceResourceTiming[];
  const groups = new Map<string, { n: number; fail: number; dur: number; max: number; bytes: number }>();
  for (const entry of entries) {
    if (entry.startTime < since) continue;
    const host = hostOf(entry.name);
    if (!host || host === ownHost) continue;
    let group = groups.get(host);
    if (!group) groups.set(host, (group = { n: 0, fail: 0, dur: 0, max: 0, bytes: 0 }));
    const status = (entry as PerformanceResourceTiming & { responseStatus?: number })
      .responseStatus;
    group.n += 1;
    if (status !== undefined && status >= 400) group.fail += 1;
    group.dur += entry.duration;
    group.max = Math.max(group.max, entry.duration);
    group.bytes += entry.transferSize || 0;
  }
  return Array.from(groups, ([host, g]) => ({
    host,
    n: g.n,
    fail: g.fail,
    dur: round(g.dur),
    max: round(g.max),
    bytes: g.bytes,
  }));
}

function connection(): Record<string, unknown> | undefined {
  const conn = (navigator as Navigator & {
    connection?: { effectiveType?: string; type?: string; rtt?: number; downlink?: number };
  }).connection;
  if (!conn) return undefined;
  return { type: conn.effectiveType || conn.type, rtt: conn.rtt, downlink: conn.downlink };
}

class Agent {
  private readonly sid = sessionId();
  private readonly beaconUrl: string;
  private readonly ownHost: string | null;
  private readonly nt = navigationType();
  private page: PageState = { pid: randomId("p-"), url: location.href, startedAt: 0 };
  private queue: Item[] = [];
  private pendingVitals: Record<string, number> = {};
  private pageViewSent = false;
  private unsentPageView: Item | null = null; // still in the queue: late vitals join it
  private errorCount = 0;
  private timer: number | undefined;
  private currentStep: string | null = null; // the last step() of this page or soft navigation

  constructor(private readonly config: Config) {
    this.beaconUrl = `${config.endpoint}/v1/beacons?k=${encodeURIComponent(config.key)}`;
    this.ownHost = hostOf(config.endpoint);
  }

  start(): void {
    const report = (metric: Metric): void => this.onVital(metric);
    onTTFB(report);
    onFCP(report);
    onLCP(report);
    onCLS(report);
    onINP(report);
    this.watchErrors();
    this.watchFetch();
    this.watchXhr();
    this.watchHistory();
    const hidden = (): void => this.onHidden();
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "hidden") hidden();
    });
    addEventListener("pagehide", hidden);
    if (document.readyState === "complete") setTimeout(() => this.onLoad(), 0);
    else addEventListener("load", () => setTimeout(() => this.onLoad(), 0));
  }

  // ------------------------------------------------------------------ page API

  step(name: string): void {
    if (typeof name !== "string" || !name) return;
    this.push({ type: "step", name, ts: Date.now() });
    this.currentStep = name; // what happens next on this page belongs to that step
  }

  conversion(value: number, currency?: string, name?: string): void {
    if (typeof value !== "number" || !(value >= 0)) return;
    const item: Item = { type: "conversion", value, ts: Date.now() };
    if (currency) item.currency = String(currency).toUpperCase();
    if (name) item.name = String(name);
    this.push(item);
  }

  flush(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.unsentPageView = null;
    while (this.queue.length) {
      const items = this.queue.splice(0, MAX_ITEMS_PER_BATCH);
      this.send(items);
    }
  }

  // ------------------------------------------------------------------ collection

  private onLoad(): void {
    this.queuePageView();
    if (this.config.flushDelayMs > 0) this.schedule(this.config.flushDelayMs);
  }

  private onHidden(): void {
    this.queuePageView();
    this.flush();
  }

  private queuePageView(): void {
    if (this.pageViewSent) return;
    this.pageViewSent = true;
    const item: Item = { type: "page_view", ts: Date.now() };
    if (Object.keys(this.pendingVitals).length) item.vitals = this.pendingVitals;
    const nav = navigationTiming();
    if (nav) item.nav = nav;
    const res = resourcesByHost(0, this.ownHost);
    if (res.length) item.res = res;
    this.pendingVitals = {};
    this.unsentPageView = item;
    this.push(item);
  }

  private onVital(metric: Metric): void {
    const value = round(metric.value);
    const name = metric.name.toLowerCase();
    if (!this.pageViewSent) {
      this.pendingVitals[name] = value;
      return;
    }
    const view = this.unsentPageView;
    if (view) {
      view.vitals = { ...((view.vitals as Record<string, number>) || {}), [name]: value };
      return;
    }
    this.push({ type: "web_vital", name: metric.name, value, id: metric.id, ts: Date.now() });
  }

  private error(item: Omit<Item, "type" | "ts">): void {
    if (this.errorCount >= MAX_ERRORS_PER_PAGE) return;
    this.errorCount += 1;
    this.push({ type: "error", ts: Date.now(), ...item });
  }

  private apiError(url: string, method: string, status: number, started: number): void {
    if (hostOf(url) === this.ownHost && url.includes("/v1/")) return; // our own beacons
    this.push({
      type: "api_error",
      url: new URL(url, location.href).href,
      method: method.toUpperCase(),
      status,
      dur: round(performance.now() - started),
      ts: Date.now(),
    });
  }

  private watchErrors(): void {
    addEventListener("error", (event: ErrorEvent) => {
      if (!(event instanceof ErrorEvent)) return; // resource load errors (img, script tags)
      const err = event.error as Error | undefined;
      this.error({
        message: String(event.message || err?.message || "Script error"),
        errType: err?.name,
        stack: err?.stack,
        source: event.filename || undefined,
        line: event.lineno || undefined,
        col: event.colno || undefined,
      });
    });
    addEventListener("unhandledrejection", (event: PromiseRejectionEvent) => {
      const reason = event.reason as { message?: string; name?: string; stack?: string } | string;
      const isError = typeof reason === "object" && reason !== null;
      this.error({
        message: String((isError ? reason.message : reason) || "Unhandled rejection"),
        errType: (isError && reason.name) || "UnhandledRejection",
        stack: isError ? reason.stack : undefined,
      });
    });
  }

  private watchFetch(): void {
    const original = window.fetch;
    if (typeof original !== "function") return;
    const agent = this;
    window.fetch = function (input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
      const started = performance.now();
      const url =
        typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
      const method =
        init?.method || (typeof input === "object" && "method" in input ? input.method : "GET");
      return original.call(this, input, init).then(
        (response) => {
          if (response.status >= 400) agent.apiError(url, method, response.status, started);
          return response;
        },
        (error: unknown) => {
          if (!(error instanceof DOMException && error.name === "AbortError"))
            agent.apiError(url, method, 0, started);
          throw error;
        },
      );
    };
  }

  private watchXhr(): void {
    const proto = XMLHttpRequest.prototype;
    const open = proto.open;
    const send = proto.send;
    const agent = this;
    type Tracked = XMLHttpRequest & { __jl?: { method: string; url: string; aborted?: boolean } };
    proto.open = function (this: Tracked, method: string, url: string | URL, ...rest: unknown[]) {
      this.__jl = { method, url: String(url) };
      return (open as (...args: unknown[]) => void).call(this, method, url, ...rest);
    } as typeof proto.open;
    proto.send = function (this: Tracked, body?: Document | XMLHttpRequestBodyInit | null) {
      const info = this.__jl;
      if (info) {
        const started = performance.now();
        this.addEventListener("abort", () => (info.aborted = true));
        this.addEventListener("loadend", () => {
          if (info.aborted) return;
          if (this.status >= 400 || this.status === 0)
            agent.apiError(info.url, info.method, this.status, started);
        });
      }
      return send.call(this, body);
    };
  }

  private watchHistory(): void {
    const push = history.pushState;
    const agent = this;
    history.pushState = function (this: History, ...args: Parameters<History["pushState"]>) {
      const result = push.apply(this, args);
      agent.onSoftNavigation();
      return result;
    };
    addEventListener("popstate", () => this.onSoftNavigation());
  }

  private onSoftNavigation(): void {
    if (location.href === this.page.url) return;
    this.queuePageView();
    this.flush(); // items so far belong to the previous URL and page id
    const startedAt = performance.now();
    this.page = { pid: randomId("p-"), url: location.href, startedAt };
    this.currentStep = null;
    const item: Item = { type: "soft_navigation", ts: Date.now(), url: this.page.url };
    item.pid = this.page.pid;
    this.push(item);
    // resources of the new view are added when it is flushed
    const previous = this.page;
    setTimeout(() => {
      if (this.page !== previous) return;
      const res = resourcesByHost(previous.startedAt, this.ownHost);
      if (res.length) item.res = res;
    }, 1000);
    this.schedule(this.config.flushDelayMs || 5000);
  }

  // ------------------------------------------------------------------ sending

  private push(item: Item): void {
    // Errors, failed calls, late vitals and conversions after a step() marker carry that step
    // (the page's own views are still matched by URL).
    if (this.currentStep && CARRIES_STEP.has(item.type) && item.step === undefined) {
      item.step = this.currentStep;
    }
    this.queue.push(item);
    if (this.queue.length >= MAX_ITEMS_PER_BATCH) this.flush();
  }

  private schedule(delayMs: number): void {
    if (this.timer !== undefined) return;
    this.timer = window.setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, delayMs);
  }

  private send(items: Item[]): void {
    const batch: Record<string, unknown> = {
      v: 1,
      sid: this.sid,
      pid: this.page.pid,
      url: this.page.url,
      ts: Date.now(),
      sr: this.config.sampleRate,
      nt: this.nt,
      items,
    };
    const conn = connection();
    if (conn) batch.conn = conn;
    const body = JSON.stringify(batch);
    if (body.length > MAX_BEACON_BYTES && items.length > 1) {
      const half = Math.ceil(items.length / 2);
      this.send(items.slice(0, half));
      this.send(items.slice(half));
      return;
    }
    if (body.length > MAX_BEACON_BYTES) return; // a single item this large is not sent
    let queued = false;
    try {
      queued = typeof navigator.sendBeacon === "function" && navigator.sendBeacon(this.beaconUrl, body);
    } catch {
      queued = false;
    }
    if (!queued && typeof fetch === "function") {
      const post = (window as Window & { __jlFetch?: typeof fetch }).__jlFetch || fetch;
      post(this.beaconUrl, {
        method: "POST",
        body,
        keepalive: true,
        credentials: "omit",
        headers: { "content-type": "text/plain;charset=UTF-8" },
      }).catch(() => undefined);
    }
  }
}

function install(): void {
  const existing = window.journeylens;
  if (existing && existing.sampled !== undefined) return; // loaded twice
  const config = readConfig();
  const pending = (existing && existing.q) || [];
  const sampled = !!config && Math.random() < config.sampleRate;
  const agent = sampled && config ? new Agent(config) : null;
  const api: Api = {
    sampled,
    step: (name) => agent?.step(name),
    conversion: (value, currency, name) => agent?.conversion(value, currency, name),
    flush: () => agent?.flush(),
  };
  window.journeylens = api;
  if (!agent) return;
  (window as Window & { __jlFetch?: typeof fetch }).__jlFetch = window.fetch.bind(window);
  agent.start();
  for (const call of pending) {
    const [method, ...args] = call as [keyof Api, ...unknown[]];
    const fn = api[method];
    if (typeof fn === "function") (fn as (...a: unknown[]) => void)(...args);
  }
}

install();
