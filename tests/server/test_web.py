"""The browser files the hub serves: what is served, with which headers, and what never is."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest

from parley.server import web
from parley.server.origins import OriginPolicy
from parley.server.web import STATIC, web_response
from tests.server.conftest import start_hub, stop_hub

ROOT = Path(__file__).resolve().parents[2]


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


async def test_the_hub_serves_pages_and_lets_websockets_through(sqlite_url: str) -> None:
    """On the hub's own public port: pages for plain requests, upgrades untouched."""
    hub = await start_hub(sqlite_url)
    origin = f"http://127.0.0.1:{hub.app.ws_port}"
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{origin}/parley.js") as response:
                assert response.status == 200
                assert response.headers["Content-Type"] == "text/javascript; charset=utf-8"
                assert response.headers["X-Content-Type-Options"] == "nosniff"
                assert await response.read() == (STATIC / "parley.js").read_bytes()
            for path in ("/widget/widget.js", "/widget/widget.css", "/widget/open.js"):
                async with http.get(origin + path) as response:
                    assert response.status == 200, path
                    assert await response.read() == (ROOT / "js" / path[1:]).read_bytes()
            async with http.get(f"{origin}/demo#token=x") as response:
                assert response.status == 200
                assert "connect-src 'self'" in response.headers["Content-Security-Policy"]
                assert "Access-Control-Allow-Origin" not in response.headers
            for path in ("/widget/../server/web.py", "/favicon.ico", "/", "/robots.txt"):
                async with http.get(origin + path) as response:
                    assert response.status == 404, path  # not ours, and not a WebSocket
        client = await hub.client("u1")
        assert (await client.request("ping"))["ts"] > 0  # the WebSocket itself is untouched
    finally:
        await stop_hub(hub)


async def test_the_files_are_served_as_written_by_the_npm_package() -> None:
    """One copy: the hub serves js/, the npm package's own files, not a copy of them."""
    for name in ("parley.js", "parley.d.ts", "widget/widget.js", "widget/widget.css"):
        found = web_response(f"/{name}")
        assert found is not None, name
        assert found[2] == (ROOT / "js" / name).read_bytes(), name
    assert web_response("/widget/widget.d.ts") is not None
    assert web_response("/widget/package.json") is None
    assert web_response("/package.json") is None


MARKETPLACE = "https://www.marketplace.example"


@pytest.mark.parametrize("path", ["/parley.js", "/parley.d.ts", "/widget/widget.js"])
def test_without_an_allow_list_any_page_may_load_the_modules(path: str) -> None:
    found = web_response(path, origin="https://anyone.example")
    assert found is not None
    headers = found[1]
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert headers["Cross-Origin-Resource-Policy"] == "cross-origin"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Cache-Control"] == "no-cache"


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        (MARKETPLACE, True),
        ("https://hub.example", True),  # the hub's own public origin, always
        ("https://evil.example", False),
        ("http://www.marketplace.example", False),
        (None, False),
    ],
)
def test_with_an_allow_list_only_its_origins_may_load_the_modules(
    origin: str | None, allowed: bool
) -> None:
    policy = OriginPolicy((MARKETPLACE,), "https://hub.example/")
    found = web_response("/widget/widget.js", origin=origin, policy=policy)
    assert found is not None
    headers = found[1]
    assert headers["Vary"] == "Origin"  # caches keep one answer per origin
    assert headers.get("Access-Control-Allow-Origin") == (origin if allowed else None)


def test_a_preflight_is_answered() -> None:
    policy = OriginPolicy((MARKETPLACE,), "https://hub.example")
    found = web_response(
        "/parley.js",
        method="OPTIONS",
        origin=MARKETPLACE,
        preflight_headers="x-requested-with",
        policy=policy,
    )
    assert found is not None
    status, headers, body = found
    assert status == 204 and body == b""
    assert headers["Access-Control-Allow-Origin"] == MARKETPLACE
    assert "GET" in headers["Access-Control-Allow-Methods"]
    assert headers["Access-Control-Allow-Headers"] == "x-requested-with"
    assert int(headers["Access-Control-Max-Age"]) > 0


def test_head_and_revalidation() -> None:
    full = web_response("/widget/widget.js")
    assert full is not None
    head = web_response("/widget/widget.js", method="HEAD")
    assert head is not None and head[0] == 200 and head[2] == b""
    assert head[1]["Content-Length"] == str(len(full[2]))
    same = web_response("/widget/widget.js", if_none_match=full[1]["ETag"])
    assert same is not None and same[0] == 304 and same[2] == b""
    other = web_response("/widget/widget.js", if_none_match='"stale"')
    assert other is not None and other[0] == 200
    posted = web_response("/widget/widget.js", method="POST")
    assert posted is not None and posted[0] == 405


async def test_cors_and_preflight_over_the_hubs_port(sqlite_url: str) -> None:
    hub = await start_hub(sqlite_url, allowed_origins=(MARKETPLACE,))
    origin = f"http://127.0.0.1:{hub.app.ws_port}"
    try:
        async with aiohttp.ClientSession() as http:
            headers = {"Origin": MARKETPLACE}
            async with http.get(f"{origin}/widget/widget.js", headers=headers) as response:
                assert response.status == 200
                assert response.headers["Access-Control-Allow-Origin"] == MARKETPLACE
            preflight = {**headers, "Access-Control-Request-Method": "GET"}
            async with http.options(f"{origin}/widget/widget.js", headers=preflight) as response:
                assert response.status == 204
                assert response.headers["Access-Control-Allow-Origin"] == MARKETPLACE
            evil = {"Origin": "https://evil.example"}
            async with http.get(f"{origin}/widget/widget.js", headers=evil) as response:
                assert response.status == 200  # the code is public; the browser keeps it
                assert "Access-Control-Allow-Origin" not in response.headers
    finally:
        await stop_hub(hub)
