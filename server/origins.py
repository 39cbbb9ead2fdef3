"""Which browser origins may use the hub's public port: its WebSocket and its files.

``OriginPolicy`` is built from ``allowed_origins`` and ``public_url``:

- **WebSocket handshakes.** With ``allowed_origins`` empty, any origin may open
  one (the token in ``connect`` is the credential). With a list, a handshake
  whose ``Origin`` is neither in it nor the hub's own public origin (the origin
  of ``public_url``, which serves the e-mail link's landing page and the demo)
  is refused with 403. A handshake without ``Origin`` goes on: browsers always
  send one, so a page cannot leave it out, while native apps send none.
- **The files** (``/parley.js``, ``/parley.d.ts``, ``/widget/...``): ES modules,
  which a browser loads across origins only with CORS. They are public code and
  carry no credential, so with ``allowed_origins`` empty any page may load them
  (``Access-Control-Allow-Origin: *``); with a list, the same origins as the
  WebSocket may, and others are told nothing (``Vary: Origin``).

Origins are compared as browsers send them: ``scheme://host[:port]``, in
lower case, without the default port.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit

DEFAULT_PORTS: Final = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def origin_of(url: str) -> str:
    """The origin of an absolute URL, as a browser writes it (``https://a.example:8443``)."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    port = parts.port
    if port is None or DEFAULT_PORTS.get(scheme) == port:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


class OriginPolicy:
    """The allow-list of origins, with the hub's own public origin always in it."""

    __slots__ = ("allowed", "own")

    def __init__(self, allowed_origins: tuple[str, ...], public_url: str) -> None:
        self.own = origin_of(public_url)
        # Empty: no check at all. Otherwise the list and the hub's own pages' origin.
        self.allowed: frozenset[str] | None = (
            frozenset({*(origin_of(o) for o in allowed_origins), self.own})
            if allowed_origins
            else None
        )

    @property
    def checks(self) -> bool:
        return self.allowed is not None

    def allows_websocket(self, origin: str | None) -> bool:
        """Whether a handshake with this ``Origin`` header (``None``: none) may go on."""
        if self.allowed is None or origin is None:
            return True
        return origin.strip().lower() in self.allowed

    def cors_headers(self, origin: str | None) -> dict[str, str]:
        """The CORS headers of a file's answer to a request with this ``Origin``."""
        if self.allowed is None:
            return {"Access-Control-Allow-Origin": "*"}
        if origin is not None and origin.strip().lower() in self.allowed:
            return {"Access-Control-Allow-Origin": origin.strip(), "Vary": "Origin"}
        return {"Vary": "Origin"}
