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

The page names the item, the other party and the order, in the member's
language, and loads the widget (``/widget/open.js``), which replaces that
first view with the conversation, or with what went wrong and what to do.

The same hook answers every other plain request on the public port: the
client's and the widget's files (``server/web.py``), 404 for anything else,
and 403 for a WebSocket handshake from an origin ``allowed_origins`` refuses
(``server/origins.py``).
"""

from __future__ import annotations

import logging
from typing import Final
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from parley.protocol.errors import ParleyError
from parley.server.config import Config
from parley.server.core.clock import Clock
from parley.server.core.mail_words import LANDING_WORDS, LinkProblem, mail_locale
from parley.server.core.notices import excerpt
from parley.server.core.ratelimit import TokenBucket
from parley.server.links import LinkError, LinkExpired, Links
from parley.server.origins import OriginPolicy
from parley.server.rendering import templates
from parley.server.store.base import Store
from parley.server.web import build_response, http_response

log = logging.getLogger("parley.landing")

OPEN_PATH: Final = "/open"
_STATUS: Final[dict[LinkProblem, int]] = {
    "invalid": 403,
    "expired": 410,
    "not_yours": 403,
    "unavailable": 503,
}
_TITLE_LIMIT: Final = 120
REFUSALS_LOGGED: Final = 10  # log lines a minute for handshakes refused by their Origin


class LandingPage:
    def __init__(self, config: Config, store: Store, clock: Clock) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.links = Links(config, clock)
        self.origins = OriginPolicy(config.allowed_origins, config.public_url)
        self._refusal_lines = TokenBucket(REFUSALS_LOGGED / 60, REFUSALS_LOGGED, clock.now())
        self._refusals_unlogged = 0
        scheme, _, rest = config.public_url.rstrip("/").partition("://")
        self.ws_url = f"{'wss' if scheme == 'https' else 'ws'}://{rest}/"

    async def process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        """websockets' hook: pages and files for plain requests; ``None`` lets a handshake go on.

        A WebSocket handshake from a browser origin the policy refuses gets 403
        here, with a log line an operator can act on.
        """
        if request.headers.get("Upgrade", "").lower() == "websocket":
            origin = request.headers.get("Origin")
            if self.origins.allows_websocket(origin):
                return None
            self._log_refused(origin or "", conn)
            return build_response(
                403,
                {"Content-Type": "text/plain; charset=utf-8"},
                b"This origin may not open a WebSocket here (allowed_origins).\n",
            )
        url = urlsplit(request.path)
        if url.path.rstrip("/") != OPEN_PATH:
            # The JS client, the widget and the demo; anything else: 404.
            return http_response(request, self.origins) or _not_found()
        if request.method not in ("GET", "HEAD"):
            return build_response(405, {"Allow": "GET, HEAD"}, b"")
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

    def _log_refused(self, origin: str, conn: ServerConnection) -> None:
        """One line per refusal, at most ``REFUSALS_LOGGED`` a minute, counting the rest."""
        if not self._refusal_lines.take(self.clock.now()):
            self._refusals_unlogged += 1
            return
        unlogged, self._refusals_unlogged = self._refusals_unlogged, 0
        address = conn.remote_address[0] if conn.remote_address else ""
        log.warning(
            "WebSocket refused: origin %r is not in allowed_origins (nor public_url's %s) "
            "address=%s%s",
            origin[:200],
            self.origins.own,
            address,
            f" ({unlogged} more refused, not logged)" if unlogged else "",
        )

    async def _open(self, token: str) -> Response:
        try:
            link = self.links.open(token)
        except LinkExpired as exc:
            # Genuine, only late: say it in the member's language alone.
            member = await self.store.get_user(exc.user_id)
            return self._problem("expired", locale=member.locale if member else None)
        except LinkError:
            return self._problem("invalid")
        order = await self.store.get_order(link.order_id)
        user = await self.store.get_user(link.user_id)
        if order is None or user is None or not order.is_party(link.user_id):
            log.info("link refused: not a party order=%s user=%s", link.order_id, link.user_id)
            return self._problem("not_yours")
        listing = await self.store.get_listing(order.listing_id)
        other_id = order.seller_id if link.user_id == order.buyer_id else order.buyer_id
        other = await self.store.get_user(other_id)
        locale = mail_locale(user.locale, self.config.mail_default_locale)
        words = LANDING_WORDS[locale]
        title = excerpt(listing.title, _TITLE_LIMIT) if listing is not None else order.listing_id
        photo = listing.photo_url if listing is not None else None
        body = (
            templates()
            .get_template("pages/open.html")
            .render(
                w=words,
                locale=locale,
                session=self.links.session_token(user, link.room),
                room=link.room,
                ws_url=self.ws_url,
                title=title,
                photo_url=photo if photo and photo.startswith(("https://", "http://")) else "",
                order_id=order.id,
                counterpart_id=other_id,
                counterpart=other.name if other is not None else "",
                role="buyer" if link.user_id == order.buyer_id else "seller",
                with_line=words.with_line.format(
                    name=other.name if other is not None else words.member
                ),
                order_line=words.order_line.format(order=order.id),
                opening=words.opening.format(title=title),
                app_url=self.config.app_url,
            )
        )
        log.info("link opened order=%s user=%s", order.id, user.id)
        return _html(200, body)

    def _problem(
        self, problem: LinkProblem, *, status: int | None = None, locale: str | None = None
    ) -> Response:
        """The problem page: in the member's language when the link says who, else in both."""
        pages = (
            (LANDING_WORDS[mail_locale(locale, self.config.mail_default_locale)],)
            if locale is not None
            else (LANDING_WORDS["fr-CA"], LANDING_WORDS["en"])
        )
        body = (
            templates()
            .get_template("pages/link_problem.html")
            .render(
                pages=pages,
                problem=problem,
                app_url=self.config.app_url,
            )
        )
        return _html(status or _STATUS[problem], body)


def _html(status: int, body: str) -> Response:
    return build_response(
        status,
        {
            "Content-Type": "text/html; charset=utf-8",
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
        },
        body.encode(),
    )


def _not_found() -> Response:
    """Any other plain request (``/favicon.ico``, ``/``): not a page of the hub's."""
    return build_response(
        404,
        {"Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff"},
        b"Not found. This is a Parley hub: members connect over WebSocket.\n",
    )
