"""The browser files the hub serves on its public port: the JS client, the widget, the demo.

``web_response(path)`` answers a plain ``GET`` for ``/parley.js``,
``/parley.d.ts``, ``/widget/...``, ``/demo`` and ``/demo/...`` from the files
shipped in ``server/web_static/`` (package data), or says ``None``: not ours,
let the caller go on (the WebSocket handshake, another page, 404).
``http_response(path)`` is the same as the ``Response`` the WebSocket
server's ``process_request`` hook returns.

Only files under that folder are served, found by their resolved path, with a
known extension: a ``..``, an encoded slash, a backslash, a NUL, a dotfile or
a symlink out of the folder gets ``None`` like any unknown path. Every answer
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
from websockets.http11 import Response

WebResponse = tuple[int, dict[str, str], bytes]

STATIC: Final = Path(str(importlib.resources.files("parley.server") / "web_static"))
DEMO_PAGE: Final = "demo.html"
# URL prefixes served, and the folder under STATIC each maps to.
PREFIXES: Final = {"/widget/": "widget", "/demo/": "demo"}
FILES: Final = {"/parley.js": "parley.js", "/parley.d.ts": "parley.d.ts", "/demo": DEMO_PAGE}
CONTENT_TYPES: Final = {
    ".js": "text/javascript; charset=utf-8",
    ".ts": "application/typescript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".json": "application/json; charset=utf-8",
    ".svg": "image/svg+xml; charset=utf-8",
}
MAX_PATH: Final = 512  # longer paths are not ours
# The demo page: its own scripts, styles and pictures; the hub's WebSocket (same origin).
DEMO_CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'{ws}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def web_response(path: str, *, ws_origin: str | None = None) -> WebResponse | None:
    """``(status, headers, body)`` for a GET of ``path``, or ``None`` when it is not ours.

    ``path`` may carry a query string (``/demo?token=...``): it is ignored.
    ``ws_origin`` (``ws://host:port``) is added to the demo page's ``connect-src``
    when the page is served from another origin than the hub's.
    """
    name = _file_name(path)
    if name is None:
        return None
    found = _read(name)
    if found is None:
        return None
    body, etag = found
    suffix = Path(name).suffix
    headers = {
        "Content-Type": CONTENT_TYPES[suffix],
        "Content-Length": str(len(body)),
        "X-Content-Type-Options": "nosniff",
        "ETag": etag,
    }
    if name == DEMO_PAGE:
        headers["Cache-Control"] = "no-store"  # its URL may carry a member's token
        headers["Referrer-Policy"] = "no-referrer"
        headers["Content-Security-Policy"] = DEMO_CSP.format(
            ws=f" {ws_origin}" if ws_origin else ""
        )
        headers["X-Frame-Options"] = "DENY"
    else:
        headers["Cache-Control"] = "no-cache"  # revalidate: a new hub version shows at once
    return 200, headers, body


def http_response(path: str) -> Response | None:
    """``web_response`` as the WebSocket server's ``process_request`` hook returns it.

    ``None`` lets the hook go on (a WebSocket handshake, another page). The
    server closes the connection after a response of the hook, so it says so.
    """
    found = web_response(path)
    if found is None:
        return None
    status, fields, body = found
    headers = Headers(fields)
    headers["Date"] = email.utils.formatdate(usegmt=True)
    headers["Connection"] = "close"
    return Response(status, http.HTTPStatus(status).phrase, headers, body)


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


def _read(name: str) -> tuple[bytes, str] | None:
    """The file's bytes and ETag; ``None`` unless it is a regular file inside STATIC.

    Read on each request, not cached: the files are small, and an edited
    widget shows on the next reload of a running hub.
    """
    root = STATIC.resolve()
    target = (root / name).resolve()
    if not target.is_relative_to(root) or not target.is_file():
        return None
    body = target.read_bytes()
    return body, f'"{hashlib.sha256(body).hexdigest()[:32]}"'
