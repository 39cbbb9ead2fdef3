"""The browser files the hub serves on its public port: the JS client, the widget, the demo.

``web_response(path)`` answers a plain ``GET`` (or ``HEAD``) for ``/parley.js``,
``/parley.d.ts``, ``/widget/...``, ``/demo`` and ``/demo/...`` from the files
shipped in ``server/web_static/`` (package data; the client and the widget are
the npm package's own files, ``js/``, linked from there), or says ``None``: not
ours, let the caller go on (the WebSocket handshake, another page, 404).
``http_response(request, policy)`` is the same as the ``Response`` the
WebSocket server's ``process_request`` hook returns.

The client and the widget are ES modules that marketplaces load from their own
pages, on another origin than the hub's: they carry CORS headers that follow
the ``OriginPolicy`` (``server/origins.py``), and a CORS preflight
(``OPTIONS``) of one of them is answered. ``If-None-Match`` with the file's
``ETag`` gets ``304``.

Only files under that folder (or the package's ``js/`` folder it links to) are
served, found by their resolved path, with a known extension: a ``..``, an
encoded slash, a backslash, a NUL, a dotfile or a symlink out of the folder
gets ``None`` like any unknown path. Every answer
says its ``Content-Type`` with a charset and ``nosniff``; the demo page also
carries a Content-Security-Policy that lets it load nothing but its own files
and talk to nothing but its own origin (the hub's WebSocket included).
"""

from __future__ import annotations

import email.utils
import hashlib
import http
import importlib.resources
from pathlib import Path
from typing import Final
from urllib.parse import unquote, urlsplit

from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from parley.server.origins import OriginPolicy

WebResponse = tuple[int, dict[str, str], bytes]

STATIC: Final = Path(str(importlib.resources.files("parley.server") / "web_static"))
DEMO_PAGE: Final = "demo.html"
# URL prefixes served, and the folder under STATIC each maps to.
PREFIXES: Final = {"/widget/": "widget", "/demo/": "demo"}
FILES: Final = {"/parley.js": "parley.js", "/parley.d.ts": "parley.d.ts", "/demo": DEMO_PAGE}
# Links under STATIC to the npm package's files (js/ in a checkout; copies in a wheel).
LINKED: Final = ("parley.js", "widget")
CONTENT_TYPES: Final = {
    ".js": "text/javascript; charset=utf-8",
    ".ts": "application/typescript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".json": "application/json; charset=utf-8",
    ".svg": "image/svg+xml; charset=utf-8",
}
MAX_PATH: Final = 512  # longer paths are not ours
MAX_PREFLIGHT_HEADERS: Final = 256  # characters of Access-Control-Request-Headers echoed
PREFLIGHT_MAX_AGE: Final = "86400"  # seconds a browser may keep a preflight's answer
# The demo page: its own scripts, styles and pictures; the hub's WebSocket (same origin).
DEMO_CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
OPEN_POLICY: Final = OriginPolicy((), "http://localhost")  # no allow-list: any origin


def web_response(
    path: str,
    *,
    method: str = "GET",
    origin: str | None = None,
    if_none_match: str | None = None,
    preflight_headers: str | None = None,
    policy: OriginPolicy = OPEN_POLICY,
) -> WebResponse | None:
    """``(status, headers, body)`` for a request of ``path``, or ``None`` when it is not ours.

    ``path`` may carry a query string (``/demo?token=...``): it is ignored.
    ``method`` is ``GET``, ``HEAD`` (no body) or ``OPTIONS`` (a CORS preflight;
    ``preflight_headers`` is its ``Access-Control-Request-Headers``); another
    method gets 405. ``origin`` (the request's ``Origin``) and ``policy`` give the
    CORS headers of the client and the widget; ``if_none_match`` may get 304.
    """
    name = _file_name(path)
    if name is None:
        return None
    found = _read(name)
    if found is None:
        return None
    body, etag = found
    is_page = name == DEMO_PAGE
    headers = {"X-Content-Type-Options": "nosniff"}
    if not is_page:
        headers.update(policy.cors_headers(origin))
        if "Access-Control-Allow-Origin" in headers:
            # Pages that isolate themselves (COEP) may embed it too.
            headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    if method == "OPTIONS":
        return 204, {**headers, **_preflight(is_page, preflight_headers)}, b""
    if method not in ("GET", "HEAD"):
        return 405, {**headers, "Allow": "GET, HEAD, OPTIONS", "Content-Length": "0"}, b""
    headers["ETag"] = etag
    if is_page:
        headers["Cache-Control"] = "no-store"  # its URL may carry a member's token
        headers["Referrer-Policy"] = "no-referrer"
        headers["Content-Security-Policy"] = DEMO_CSP
        headers["X-Frame-Options"] = "DENY"
    else:
        headers["Cache-Control"] = "no-cache"  # revalidate: a new hub version shows at once
        if if_none_match is not None and etag in (t.strip() for t in if_none_match.split(",")):
            return 304, headers, b""
    headers["Content-Type"] = CONTENT_TYPES[Path(name).suffix]
    headers["Content-Length"] = str(len(body))
    return 200, headers, b"" if method == "HEAD" else body


def http_response(request: Request, policy: OriginPolicy) -> Response | None:
    """``web_response`` as the WebSocket server's ``process_request`` hook returns it.

    ``None`` lets the hook go on (a WebSocket handshake, another page). The
    server closes the connection after a response of the hook, so it says so.
    """
    fields = request.headers
    found = web_response(
        request.path,
        method=request.method,
        origin=fields.get("Origin"),
        if_none_match=fields.get("If-None-Match"),
        preflight_headers=fields.get("Access-Control-Request-Headers"),
        policy=policy,
    )
    if found is None:
        return None
    return build_response(*found)


def build_response(status: int, fields: dict[str, str], body: bytes) -> Response:
    """A complete HTTP response for the hook, dated, on a connection that then closes."""
    headers = Headers(fields)
    headers["Date"] = email.utils.formatdate(usegmt=True)
    headers["Connection"] = "close"
    if "Content-Length" not in headers:
        headers["Content-Length"] = str(len(body))
    return Response(status, http.HTTPStatus(status).phrase, headers, body)


def _preflight(is_page: bool, requested: str | None) -> dict[str, str]:
    """The answer to a CORS preflight: GET and HEAD, the headers asked for, cached a day."""
    if is_page:
        return {"Allow": "GET, HEAD, OPTIONS", "Content-Length": "0"}
    headers = {
        "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
        "Access-Control-Max-Age": PREFLIGHT_MAX_AGE,
        "Content-Length": "0",
    }
    # Public files with no credential: any request header may come along.
    if requested and len(requested) <= MAX_PREFLIGHT_HEADERS and requested.isprintable():
        headers["Access-Control-Allow-Headers"] = requested
    return headers


def _file_name(path: str) -> str | None:
    """The file under STATIC that ``path`` names, relative, or ``None``."""
    if len(path) > MAX_PATH:
        return None
    url_path = urlsplit(path).path
    if url_path in FILES:
        return FILES[url_path]
    for prefix, folder in PREFIXES.items():
        if url_path.startswith(prefix):
            rest = unquote(url_path[len(prefix) :])
            parts = rest.split("/")
            if any(not p or p.startswith(".") or "\\" in p or "\0" in p for p in parts):
                return None
            name = f"{folder}/{rest}"
            if Path(name).suffix in CONTENT_TYPES and name != DEMO_PAGE:
                return name
    return None


def _roots() -> tuple[Path, ...]:
    """The folders files may be read from: STATIC, and where its links to ``js/`` lead."""
    root = STATIC.resolve()
    linked = ((root / name).resolve() for name in LINKED)
    return (root, *(p if p.is_dir() else p.parent for p in linked))


def _read(name: str) -> tuple[bytes, str] | None:
    """The file's bytes and ETag; ``None`` unless it is a regular file inside the roots.

    Read on each request, not cached: the files are small, and an edited
    widget shows on the next reload of a running hub.
    """
    target = (STATIC / name).resolve()
    if not any(target.is_relative_to(root) for root in _roots()) or not target.is_file():
        return None
    body = target.read_bytes()
    return body, f'"{hashlib.sha256(body).hexdigest()[:32]}"'
