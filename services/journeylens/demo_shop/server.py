"""Serve the four demo services in one process: uvicorn servers sharing one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable, Generator, Iterator

import uvicorn
from fastapi import FastAPI

from journeylens.demo_shop.cdn import cdn_app
from journeylens.demo_shop.faults import FaultRegistry
from journeylens.demo_shop.payment import payment_app
from journeylens.demo_shop.settings import DemoShopSettings, Service
from journeylens.demo_shop.shop import shop_app
from journeylens.demo_shop.sso import sso_app

STARTUP_TIMEOUT_S = 20.0


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals to its owner (several share one loop)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def build_apps(settings: DemoShopSettings) -> dict[Service, FastAPI]:
    registries = {service: FaultRegistry(service.value) for service in Service}
    return {
        Service.SHOP: shop_app(registries[Service.SHOP], settings),
        Service.PAYMENT: payment_app(registries[Service.PAYMENT]),
        Service.CDN: cdn_app(registries[Service.CDN]),
        Service.SSO: sso_app(registries[Service.SSO], settings),
    }


async def serve(
    settings: DemoShopSettings,
    stop: asyncio.Event,
    on_ready: Callable[[], None] | None = None,
    log_level: str = "warning",
) -> None:
    """Run every service until ``stop`` is set; ``on_ready`` is called once all listen."""
    servers = {
        service: _Server(
            uvicorn.Config(
                app,
                host=settings.host,
                port=settings.port(service),
                log_level=log_level,
                access_log=False,
                lifespan="off",
            )
        )
        for service, app in build_apps(settings).items()
    }
    sockets: dict[Service, socket.socket] = {}
    try:
        for service in servers:
            sockets[service] = _bind(settings.host, settings.port(service), service)
    except RuntimeError:
        for sock in sockets.values():
            sock.close()
        raise
    tasks = {
        service: asyncio.create_task(server.serve(sockets=[sockets[service]]))
        for service, server in servers.items()
    }
    try:
        await _wait_started(servers, tasks)
        if on_ready is not None:
            on_ready()
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait([stopping, *tasks.values()], return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
    finally:
        for server in servers.values():
            server.should_exit = True
        await asyncio.gather(*tasks.values(), return_exceptions=True)
        for sock in sockets.values():
            sock.close()


def _bind(host: str, port: int, service: Service) -> socket.socket:
    """Listen before uvicorn starts, so a busy port is a clear error (not a SystemExit)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise RuntimeError(
            f"demo {service.value} service cannot listen on {host}:{port}: {exc.strerror}"
        ) from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


async def _wait_started(
    servers: dict[Service, _Server], tasks: dict[Service, asyncio.Task[None]]
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STARTUP_TIMEOUT_S
    while not all(server.started for server in servers.values()):
        for service, task in tasks.items():
            if task.done():
                raise RuntimeError(f"demo {service.value} service stopped while starting")
        if loop.time() > deadline:
            raise RuntimeError(f"demo shop did not start within {STARTUP_TIMEOUT_S:g} s")
        await asyncio.sleep(0.02)


@contextlib.contextmanager
def running_in_thread(settings: DemoShopSettings) -> Iterator[DemoShopSettings]:
    """Serve the demo shop from a background thread (its own event loop) while in the block."""
    ready = threading.Event()
    failure: list[BaseException] = []
    loop_box: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    async def main() -> None:
        stop = asyncio.Event()
        loop_box.append((asyncio.get_running_loop(), stop))
        await serve(settings, stop, on_ready=ready.set)

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # noqa: BLE001 - reported to the caller's thread
            failure.append(exc)
        finally:
            ready.set()

    thread = threading.Thread(target=run, name="demo-shop", daemon=True)
    thread.start()
    ready.wait(STARTUP_TIMEOUT_S + 5)
    if failure:
        raise RuntimeError(f"demo shop failed to start: {failure[0]}") from failure[0]
    try:
        yield settings
    finally:
        if loop_box:
            loop, stop = loop_box[0]
            loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=15)
