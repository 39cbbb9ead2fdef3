"""The browser files the hub serves: what is served, with which headers, and what never is."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response

from parley.server import web
from parley.server.web import STATIC, http_response, web_response


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/parley.js", "text/javascript; charset=utf-8"),
        ("/parley.d.ts", "application/typescript; charset=utf-8"),
        ("/widget/widget.js", "text/javascript; charset=utf-8"),
        ("/widget/strings.js", "text/javascript; charset=utf-8"),
        ("/widget/open.js", "text/javascript; charset=utf-8"),
        ("/widget/widget.css", "text/css; charset=utf-8"),
        ("/demo", "text/html; charset=utf-8"),
        ("/demo/demo.js", "text/javascript; charset=utf-8"),
        ("/demo/catalog.json", "application/json; charset=utf-8"),
        ("/demo/photos/coat.svg", "image/svg+xml; charset=utf-8"),
    ],
)
def test_each_file_has_its_content_type_with_a_charset(path: str, content_type: str) -> None:
    found = web_response(path)
    assert found is not None
    status, headers, body = found
    assert status == 200
    assert headers["Content-Type"] == content_type
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Length"] == str(len(body))
    assert headers["Cache-Control"]
    assert body


def test_the_client_is_served_as_written() -> None:
    found = web_response("/parley.js")
    assert found is not None
    assert found[2] == (STATIC / "parley.js").read_bytes()
    assert b"export class ParleyClient" in found[2]


def test_a_query_string_is_ignored() -> None:
    plain, with_query = web_response("/demo"), web_response("/demo?token=abc#x")
    assert plain is not None and with_query is not None
    assert with_query[2] == plain[2]


def test_the_demo_page_is_locked_down() -> None:
    found = web_response("/demo")
    assert found is not None
    headers = found[1]
    csp = headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"  # no inline script, no other origin
    assert directives["connect-src"] == "'self'"  # the hub's own WebSocket
    assert directives["frame-ancestors"] == "'none'"
    assert headers["Cache-Control"] == "no-store"  # its address may carry a token
    assert headers["Referrer-Policy"] == "no-referrer"


def test_the_demo_page_may_name_the_hubs_websocket_when_served_elsewhere() -> None:
    found = web_response("/demo", ws_origin="ws://127.0.0.1:9999")
    assert found is not None
    assert "connect-src 'self' ws://127.0.0.1:9999;" in found[1]["Content-Security-Policy"]


def test_only_the_demo_page_has_a_policy_of_its_own() -> None:
    found = web_response("/widget/widget.js")
    assert found is not None
    assert "Content-Security-Policy" not in found[1]
    assert found[1]["Cache-Control"] == "no-cache"


def test_the_catalogue_the_page_shows_is_the_one_the_demo_seeds() -> None:
    found = web_response("/demo/catalog.json")
    assert found is not None
    catalog = json.loads(found[2])
    assert {"users", "listings", "likes", "comments", "orders"} <= catalog.keys()
    for listing in catalog["listings"]:
        assert web_response(f"/demo/photos/{listing['photo']}") is not None


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/open",
        "/parley",
        "/parley.js/",
        "/widget",
        "/widget/",
        "/widget/missing.js",
        "/widget/../parley.js",
        "/widget/%2e%2e/parley.js",
        "/widget/..%2fparley.js",
        "/widget/%2e%2e%2f%2e%2e%2fweb.py",
        "/demo/../../web.py",
        "/demo/..%2F..%2Fweb.py",
        "/demo/photos/..%5c..%5cdemo.html",
        "/widget/.hidden.js",
        "/widget//widget.js",
        "/widget/widget.js%00.css",
        "/demo/demo.html",  # the page is /demo, with its policy, only
        "/demo/photos",
        "/web.py",
        "/server/web.py",
        "/widget/widget.py",
        "/%2e%2e/server/web.py",
        "/widget/" + "a" * 600 + ".js",
        "//etc/passwd",
        "/demo/../../../../etc/passwd",
    ],
)
def test_unknown_and_escaping_paths_are_not_served(path: str) -> None:
    assert web_response(path) is None


def test_a_symlink_out_of_the_folder_is_not_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "static"
    (root / "widget").mkdir(parents=True)
    secret = tmp_path / "secret.js"
    secret.write_text("secret")
    (root / "widget" / "leak.js").symlink_to(secret)
    (root / "widget" / "ok.js").write_text("ok")
    monkeypatch.setattr(web, "STATIC", root)
    assert web_response("/widget/ok.js") is not None
    assert web_response("/widget/leak.js") is None


async def test_the_hook_serves_pages_and_lets_websockets_through() -> None:
    """On a WebSocket server's port, as the hub wires it: pages for GETs, upgrades untouched."""

    def hook(conn: ServerConnection, request: Request) -> Response | None:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return None
        return http_response(request.path)

    async def echo(ws: ServerConnection) -> None:
        async for frame in ws:
            await ws.send(frame)

    async with serve(echo, "127.0.0.1", 0, process_request=hook) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/parley.js") as response:
                assert response.status == 200
                assert response.headers["Content-Type"] == "text/javascript; charset=utf-8"
                assert response.headers["X-Content-Type-Options"] == "nosniff"
                assert await response.read() == (STATIC / "parley.js").read_bytes()
            async with http.get(f"http://127.0.0.1:{port}/demo#token=x") as response:
                assert response.status == 200
                assert "connect-src 'self'" in response.headers["Content-Security-Policy"]
            async with http.get(f"http://127.0.0.1:{port}/widget/../server/web.py") as response:
                assert response.status == 426  # not ours: the server's own answer
        async with connect(f"ws://127.0.0.1:{port}/demo") as ws:
            await ws.send("still a WebSocket")
            assert await ws.recv() == "still a WebSocket"
