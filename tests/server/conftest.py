"""A real hub on real sockets (port 0), the internal API, clients and tokens."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from parley.client import ParleyClient
from parley.server.app import App
from parley.server.auth import mint_token
from parley.server.config import Config, load_config
from parley.server.core.clock import Clock, FakeClock
from parley.server.store import Store
from tests.support.hubproc import API_KEY, test_settings

ROOT = Path(__file__).resolve().parents[2]
GATEWAY = ROOT / "examples" / "push_gateway.py"
GATEWAY_TIMEOUT = 60.0  # seconds the example gateway subprocess may take at most


async def start_gateway(api: str, key: str, *args: str) -> asyncio.subprocess.Process:
    """``examples/push_gateway.py`` as a process: group ``fcm``, consumer ``gw-1``."""
    return await asyncio.create_subprocess_exec(
        sys.executable, str(GATEWAY), "--api", api, "--key", key,
        "--group", "fcm", "--consumer", "gw-1", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def finish_gateway(gateway: asyncio.subprocess.Process) -> bytes:
    """Wait for the gateway to end (bounded; killed past it); its stderr."""
    try:
        _, err = await asyncio.wait_for(gateway.communicate(), GATEWAY_TIMEOUT)
    finally:
        if gateway.returncode is None:
            gateway.kill()
            await gateway.wait()
    return err


@dataclass
class RunningHub:
    app: App
    config: Config
    http: aiohttp.ClientSession
    clients: list[ParleyClient] = field(default_factory=list)

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.app.ws_port}/"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.app.api_port}"

    def token(self, user: str, name: str | None = None, **kw: Any) -> str:
        """A token valid on the hub's clock (a test's FakeClock, or the wall clock)."""
        kw.setdefault("now", self.app.clock.now())
        return mint_token(self.config, user, name or user, **kw)

    async def client(
        self, user: str, name: str | None = None, *, locale: str = "en", **options: Any
    ) -> ParleyClient:
        options.setdefault("reconnect", False)
        token = self.token(user, name, locale=locale)
        client = await ParleyClient.connect(self.ws_url, token, **options)
        self.clients.append(client)
        return client

    async def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.http.request(method, self.api_url + path, json=body) as response:
            return response.status, await response.json()

    async def listing(self, listing_id: str, seller: str = "seller", **fields: Any) -> None:
        body = {
            "seller_id": seller,
            "title": "Wool coat",
            "price": {"amount": 5000, "currency": "CAD"},
            **fields,
        }
        status, reply = await self.api("PUT", f"/v1/listings/{listing_id}", body)
        assert status == 200, reply

    async def order(self, order_id: str, listing_id: str, buyer: str, seller: str) -> Any:
        body = {"listing_id": listing_id, "buyer_id": buyer, "seller_id": seller}
        status, reply = await self.api("PUT", f"/v1/orders/{order_id}", body)
        assert status in (200, 201), reply
        return reply


async def notification_kinds(client: ParleyClient) -> list[str]:
    """The kinds of the member's notifications, oldest first."""
    reply = await client.notifications()
    return [n["notification"]["kind"] for n in reversed(reply["notifications"])]


async def start_hub(
    store: str, *, clock: Clock | None = None, backend: Store | None = None, **overrides: Any
) -> RunningHub:
    """A hub on ``store`` (a URL); ``backend``: a store object of the test's for that URL."""
    config = load_config(None, {}, **test_settings(store, **overrides))
    app = App(config, clock=clock, store=backend)
    await app.start()
    http = aiohttp.ClientSession(headers={"Authorization": f"Bearer {API_KEY}"})
    return RunningHub(app, config, http)


async def stop_hub(hub: RunningHub) -> None:
    for client in hub.clients:
        await client.close()
    await hub.http.close()
    await hub.app.stop()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'parley.sqlite3'}"


@pytest.fixture(params=["sqlite", "redis"])
async def store_url(request: pytest.FixtureRequest, sqlite_url: str) -> str:
    """Each store's URL, empty; Redis is started here if a test left it stopped."""
    if request.param == "redis":
        redis_server = request.getfixturevalue("redis_server")
        redis_server.start()
        await redis_server.flushall()
        return str(redis_server.url)
    return sqlite_url


@pytest.fixture
def clock() -> FakeClock:
    """A clock that moves only when a test says so."""
    return FakeClock()


@pytest.fixture
async def hub(store_url: str) -> AsyncIterator[RunningHub]:
    """The same hub on each store: every behaviour is proven on both."""
    running = await start_hub(store_url)
    try:
        yield running
    finally:
        await stop_hub(running)


@pytest.fixture(params=["sqlite", "redis", "redis-cluster"])
async def every_store_hub(
    request: pytest.FixtureRequest, sqlite_url: str
) -> AsyncIterator[RunningHub]:
    """The same hub on SQLite, one Redis and a Redis Cluster, for what involves keys on
    several slots; pushes go out whether members are online or not."""
    url = sqlite_url
    if request.param != "sqlite":
        server = request.getfixturevalue(
            "redis_server" if request.param == "redis" else "redis_cluster"
        )
        await server.flushall()
        url = server.url
    running = await start_hub(url, push_when="always")
    try:
        yield running
    finally:
        await stop_hub(running)


# A push provider (FCM, APNs) is outside the system: a mock stands for it.


@dataclass
class MockProvider:
    """Stands for FCM/APNs: records what it accepts; fails the first request once."""

    received: list[dict[str, Any]] = field(default_factory=list)
    requests: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        if self.requests == 1:
            return web.json_response({"error": "try again"}, status=503)
        self.received.append(await request.json())
        return web.json_response({"ok": True})


@pytest.fixture
async def provider() -> AsyncIterator[tuple[MockProvider, str]]:
    mock = MockProvider()
    app = web.Application()
    app.router.add_post("/send", mock.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    try:
        yield mock, f"http://{host}:{port}/send"
    finally:
        await runner.cleanup()
