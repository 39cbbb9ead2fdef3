"""A real hub, the demo marketplace seeded into it, and the system's Chromium driven by Playwright.

The browser is Debian's ``chromium`` package, launched by its path: Playwright
downloads nothing. Without it the tests fail and say how to install it; they
are never skipped.

The pages come from the hub itself (``/demo``, ``/parley.js``, ``/widget/...``
on its public port) once its HTTP hook serves them; until then from a small
aiohttp server built on the same ``server.web.web_response``, with the hub's
WebSocket named in the page's address and its Content-Security-Policy.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from parley.server.demo import Login, login_links, seed
from parley.server.web import web_response
from tests.server.conftest import RunningHub, start_hub, stop_hub
from tests.support.hubproc import free_port

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("PARLEY_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(os.environ.get("PARLEY_SCREENSHOTS", ROOT / "artifacts" / "screenshots"))


@dataclass
class Demo:
    """The hub, where its pages are served from, and one login per member."""

    hub: RunningHub
    origin: str  # where /demo, /parley.js and /widget/ come from
    hub_serves_pages: bool
    logins: dict[str, Login]
    mail_dir: Path
    catalog: dict[str, Any] = field(default_factory=dict)

    @property
    def hub_origin(self) -> str:
        return f"http://127.0.0.1:{self.hub.app.ws_port}"

    def page_url(self, name: str) -> str:
        """The demo page for one member (by username); the token rides in the fragment."""
        url = self.logins[name].url
        if not self.hub_serves_pages:
            url += f"&ws=ws://127.0.0.1:{self.hub.app.ws_port}/"
        return url


async def _hub_serves_pages(origin: str) -> bool:
    async with aiohttp.ClientSession() as http, http.get(f"{origin}/parley.js") as response:
        return response.status == 200 and "javascript" in response.headers.get("Content-Type", "")


async def _page_server(ws_origin: str) -> tuple[web.AppRunner, str]:
    """``server.web`` behind aiohttp, for as long as the hub does not serve the pages itself.

    Module scripts it serves may be loaded by the hub's landing page (another
    origin), so it allows CORS: a test server only.
    """

    async def handle(request: web.Request) -> web.Response:
        found = web_response(request.path_qs, ws_origin=ws_origin)
        if found is None:
            return web.Response(status=404, text="not found")
        status, headers, body = found
        headers = {k: v for k, v in headers.items() if k != "Content-Length"}
        headers["Access-Control-Allow-Origin"] = "*"
        return web.Response(status=status, headers=headers, body=body)

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[Demo]:
    """A hub on SQLite with the demo marketplace seeded through its internal API."""
    port = free_port()
    mail_dir = tmp_path / "mail"
    hub = await start_hub(
        f"sqlite:///{tmp_path / 'parley.sqlite3'}",
        ws_port=port,
        public_url=f"http://127.0.0.1:{port}",
        mail_backend="files",
        mail_dir=str(mail_dir),
    )
    runner: web.AppRunner | None = None
    try:
        hub_origin = f"http://127.0.0.1:{port}"
        serves = await _hub_serves_pages(hub_origin)
        origin = hub_origin
        if not serves:
            runner, origin = await _page_server(f"ws://127.0.0.1:{port}")
        catalog = await seed(hub.config, api_url=hub.api_url, ws_url=hub.ws_url, public_url=origin)
        logins = {login.name: login for login in login_links(hub.config, origin, catalog)}
        yield Demo(hub, origin, serves, logins, mail_dir, catalog)
    finally:
        if runner is not None:
            await runner.cleanup()
        await stop_hub(hub)


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """Headless Chromium from the system's package; a missing one fails the test with the fix."""
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.fail("Playwright is missing: .venv/bin/pip install -e '.[dev]'")
    if shutil.which(CHROMIUM) is None and not Path(CHROMIUM).exists():
        pytest.fail(
            f"no Chromium at {CHROMIUM}: run scripts/ensure-chromium (Debian's chromium "
            "package) or set PARLEY_CHROMIUM to a Chromium binary"
        )
    async with async_playwright() as playwright:
        try:
            chromium = await playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
            )
        except Exception as exc:  # the reason Chromium could not start, in the failure
            pytest.fail(f"Chromium at {CHROMIUM} did not start: {exc}")
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
def screenshots(request: pytest.FixtureRequest) -> Path:
    """``artifacts/screenshots/<test>/`` (or ``$PARLEY_SCREENSHOTS/<test>/``), emptied first."""
    folder = SCREENSHOTS / str(request.node.name)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder
