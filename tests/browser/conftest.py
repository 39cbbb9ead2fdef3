"""A real hub, the demo marketplace seeded into it, marketplace pages on another origin, Chromium.

The hub serves what it serves (``/parley.js``, ``/widget/...``, ``/demo``, the
e-mail link's ``/open``) on its public port, with ``allowed_origins`` on. The
marketplace's pages come from a plain static server on another origin that adds
no header of its own: they embed the widget exactly as ``docs/widget.md`` shows,
importing it from the hub (``marketplace.html``), or bundle it from the npm
package (``npm_app/``, built once per run by ``npm_bundle``). If the hub did not
send the CORS headers a browser needs, the widget would not start.

The browser is Debian's ``chromium`` package, launched by its path: Playwright
downloads nothing. Without it the tests fail and say how to install it; they
are never skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Any

import pytest
from aiohttp import web

from parley.server.demo import seed
from tests.server.conftest import RunningHub, start_hub, stop_hub
from tests.support.front_door import FrontDoor

ROOT = Path(__file__).resolve().parents[2]
PAGES = Path(__file__).resolve().parent / "pages"
NPM_APP = Path(__file__).resolve().parent / "npm_app"
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
NPM_TIMEOUT = 300  # seconds npm may take to install the tarball, esbuild and TypeScript


@dataclass
class Demo:
    """The hub, the marketplace's pages on their own origin, and a token per member."""

    hub: RunningHub
    public: str  # the hub's public_url: its address in front of it, as members reach it
    pages_origin: str  # the marketplace's static server: nothing added to what it sends
    page: str  # the marketplace page the members open: "marketplace.html" or "bundle/index.html"
    mail_dir: Path
    catalog: dict[str, Any] = field(default_factory=dict)

    @property
    def hub_origin(self) -> str:
        return self.public

    @property
    def ws_url(self) -> str:
        return self.public.replace("http://", "ws://", 1) + "/"

    def user(self, name: str) -> dict[str, Any]:
        return next(u for u in self.catalog["users"] if u["name"] == name)

    def token(self, name: str, **kw: Any) -> str:
        user = self.user(name)
        return self.hub.token(user["id"], user["name"], locale=user["locale"], **kw)

    def page_url(self, name: str) -> str:
        """The marketplace page for one member (by username); the token rides in the fragment."""
        return f"{self.pages_origin}/{self.page}#token={self.token(name)}"


def write_pages(folder: Path, hub_origin: str, ws_url: str, catalog: dict[str, Any]) -> None:
    """The marketplace's pages, naming this hub, and its catalogue (what the page knows)."""
    folder.mkdir(parents=True, exist_ok=True)
    for page in PAGES.glob("*.html"):
        text = Template(page.read_text(encoding="utf-8")).substitute(hub=hub_origin, ws=ws_url)
        (folder / page.name).write_text(text, encoding="utf-8")
    listings = [
        {**listing, "photo_url": f"{hub_origin}/demo/photos/{listing['photo']}"}
        for listing in catalog["listings"]
        if listing.get("status", "active") == "active"
    ]
    shop = json.dumps({"listings": listings, "users": catalog["users"]})
    (folder / "catalog.json").write_text(shop, encoding="utf-8")


async def serve_static(folder: Path) -> tuple[web.AppRunner, str]:
    """A plain static file server on its own origin: it adds no CORS or other header."""
    app = web.Application()
    app.router.add_static("/", folder, show_index=False)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"


def run_npm(*args: str, cwd: Path) -> str:
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is missing: install Node.js and npm (Debian: apt-get install nodejs npm)")
    return run([npm, "--no-audit", "--no-fund", "--loglevel=error", *args], cwd=cwd)


def run(command: list[str], *, cwd: Path) -> str:
    done = subprocess.run(
        command,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=NPM_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, f"{' '.join(command)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="session")
def npm_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The npm tarball of js/, installed into a tiny app, type-checked and bundled by esbuild."""
    work = tmp_path_factory.mktemp("npm")
    packed = json.loads(run_npm("pack", "--json", "--pack-destination", str(work), cwd=ROOT / "js"))
    tarball = work / packed[0]["filename"]
    app = work / "app"
    shutil.copytree(NPM_APP, app)
    run_npm("install", str(tarball), cwd=app)
    tools = app / "node_modules" / ".bin"
    run([str(tools / "tsc"), "-p", "."], cwd=app)  # the package's declarations hold
    run([str(tools / "esbuild"), "src/app.js", "--bundle", "--format=esm",
         "--target=es2022", "--outdir=dist"], cwd=app)  # fmt: skip
    assert (app / "dist" / "app.js").is_file() and (app / "dist" / "app.css").is_file()
    return app


@pytest.fixture(params=["snippet"])
async def demo(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Demo]:
    """A hub on SQLite, its allow-list naming the marketplace's origin, the demo seeded.

    ``params`` names the marketplace page: ``snippet`` imports the widget from the
    hub as the docs show; ``bundle`` is the npm package bundled into the page.
    """
    folder = tmp_path / "pages"
    folder.mkdir()
    runner, pages_origin = await serve_static(folder)
    mail_dir = tmp_path / "mail"
    # The hub's public address, in front of it as a load balancer would be: the
    # e-mail's links and the landing page name it, and members' browsers reach it.
    door = FrontDoor()
    await door.open()
    try:
        hub = await start_hub(
            f"sqlite:///{tmp_path / 'parley.sqlite3'}",
            ws_port=0,
            public_url=door.url,
            allowed_origins=(pages_origin,),
            mail_backend="files",
            mail_dir=str(mail_dir),
        )
        door.target = hub.app.ws_port
        try:
            catalog = await seed(
                hub.config, api_url=hub.api_url, ws_url=hub.ws_url, public_url=door.url
            )
            ws_url = door.url.replace("http://", "ws://", 1) + "/"
            write_pages(folder, door.url, ws_url, catalog)
            page = "marketplace.html"
            if request.param == "bundle":
                bundle = request.getfixturevalue("npm_bundle")
                shutil.copytree(bundle / "dist", folder / "bundle")
                index = Template((bundle / "index.html").read_text(encoding="utf-8"))
                (folder / "bundle" / "index.html").write_text(index.substitute(ws=ws_url))
                shutil.copy(folder / "catalog.json", folder / "bundle" / "catalog.json")
                page = "bundle/index.html"
            yield Demo(hub, door.url, pages_origin, page, mail_dir, catalog)
        finally:
            await stop_hub(hub)
    finally:
        await door.close()
        await runner.cleanup()


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
