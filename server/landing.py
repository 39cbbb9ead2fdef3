"""The landing page of the e-mail's links, on the hub's public port (R11).

``GET /open?t=<link token>`` is answered by the WebSocket server's
``process_request`` hook, before any upgrade: a valid link of a member who is
a party of the order gives an HTML page carrying a session token limited to
that conversation and that member (``<meta name="parley-session">``, the room
in ``<meta name="parley-room">``, the WebSocket URL in ``<meta name="parley-ws">``),
for the widget to connect with. Anything else gives a page in both languages
saying what to do instead: open the conversation from "My orders".

Statuses: 400 no token, 403 a token that is not a valid link or a link of a
member who is not a party, 410 an expired link, 503 the store cannot answer.
No page says more about a token than that; none shows a stack trace. The page
carries a credential: it is never cached and sends no referrer.
"""

from __future__ import annotations

import email.utils
import http
import logging
from typing import Final
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from parley.protocol.errors import ParleyError
from parley.server.config import Config
from parley.server.core.clock import Clock
from parley.server.core.mail_words import LANDING_WORDS, LinkProblem, mail_locale
from parley.server.core.notices import excerpt
from parley.server.links import LinkError, LinkExpired, Links
from parley.server.rendering import templates
from parley.server.store.base import Store
from parley.server.web import http_response

log = logging.getLogger("parley.landing")

OPEN_PATH: Final = "/open"
_STATUS: Final[dict[LinkProblem, int]] = {
    "invalid": 403,
    "expired": 410,
    "not_yours": 403,
    "unavailable": 503,
}
_TITLE_LIMIT: Final = 120


class LandingPage:
    def __init__(self, config: Config, store: Store, clock: Clock) -> None:
        self.config = config
        self.store = store
        self.links = Links(config, clock)
        scheme, _, rest = config.public_url.rstrip("/").partition("://")
        self.ws_url = f"{'wss' if scheme == 'https' else 'ws'}://{rest}/"

    async def process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        """websockets' hook: a page for ``GET /open``; ``None`` lets a handshake go on."""
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return None
        url = urlsplit(request.path)
        if url.path.rstrip("/") != OPEN_PATH:
            # The JS client, the widget and the demo; anything else: None, and
            # websockets answers 426 Upgrade Required.
            return http_response(request.path)
        tokens = parse_qs(url.query).get("t", [])
        try:
            if len(tokens) != 1:
                return self._problem("invalid", status=400)
            return await self._open(tokens[0])
        except ParleyError as exc:
            log.warning("landing page unavailable: %s", exc.message)
            return self._problem("unavailable")
        except Exception:
            # The edge: a bug gives a page and a log line, never a trace to the member.
            log.exception("landing page failed")
            return self._problem("unavailable", status=500)

    async def _open(self, token: str) -> Response:
        try:
            link = self.links.open(token)
        except LinkExpired:
            return self._problem("expired")
        except LinkError:
            return self._problem("invalid")
        order = await self.store.get_order(link.order_id)
        user = await self.store.get_user(link.user_id)
        if order is None or user is None or not order.is_party(link.user_id):
            log.info("link refused: not a party order=%s user=%s", link.order_id, link.user_id)
            return self._problem("not_yours")
        listing = await self.store.get_listing(order.listing_id)
        words = LANDING_WORDS[mail_locale(user.locale, self.config.mail_default_locale)]
        title = excerpt(listing.title, _TITLE_LIMIT) if listing is not None else order.listing_id
        body = (
            templates()
            .get_template("pages/open.html")
            .render(
                w=words,
                session=self.links.session_token(user, link.room),
                room=link.room,
                ws_url=self.ws_url,
                opening=words.opening.format(title=title),
                order_line=words.order_line.format(order=order.id),
                app_url=self.config.app_url,
            )
        )
        log.info("link opened order=%s user=%s", order.id, user.id)
        return _html(200, body)

    def _problem(self, problem: LinkProblem, *, status: int | None = None) -> Response:
        body = (
            templates()
            .get_template("pages/link_problem.html")
            .render(
                pages=(LANDING_WORDS["fr-CA"], LANDING_WORDS["en"]),
                problem=problem,
                app_url=self.config.app_url,
            )
        )
        return _html(status or _STATUS[problem], body)


def _html(status: int, body: str) -> Response:
    data = body.encode()
    headers = Headers(
        [
            ("Date", email.utils.formatdate(usegmt=True)),
            ("Connection", "close"),
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", str(len(data))),
            ("Cache-Control", "no-store"),
            ("Referrer-Policy", "no-referrer"),
            ("X-Content-Type-Options", "nosniff"),
        ]
    )
    return Response(status, http.HTTPStatus(status).phrase, headers, data)
