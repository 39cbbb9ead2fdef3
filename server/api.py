"""The internal HTTP API the marketplace backend calls (aiohttp).

Bound to loopback by default and guarded by ``Authorization: Bearer <api_key>``.
JSON in and out; errors are ``{"error": {"code", "message"}}`` with the same
stable codes as the WebSocket protocol. The backend reports members, listings,
listing changes (R3) and orders (R9); an order opens its private room at once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

import orjson
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from parley.protocol.errors import ErrorCode, ParleyError
from parley.server.config import Config
from parley.server.core.clock import Clock, to_ms
from parley.server.core.mentions import MAX_USERNAME, is_valid_username
from parley.server.core.model import (
    ID_RE,
    LISTING_STATUSES,
    Draft,
    Listing,
    ListingId,
    Money,
    Order,
    OrderId,
    User,
    UserId,
)
from parley.server.core.offers import to_wire as offer_wire
from parley.server.core.order_status import (
    CARRIERS,
    ENDED,
    check_report,
    status_data,
    status_text,
    tracking_url,
)
from parley.server.core.roomevents import listing_change, order_opened
from parley.server.core.rooms import listing_room, order_room
from parley.server.core.usernames import check_username
from parley.server.mail.outbox import queue_order_confirmation
from parley.server.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from parley.server.metrics import Metrics
from parley.server.negotiations import EVENTS_ROOM, Negotiations
from parley.server.notify import Notice, Notifier
from parley.server.openapi import spec as openapi_spec
from parley.server.retention import RoomRetention
from parley.server.stoppoints import stop_point
from parley.server.store.base import Store

log = logging.getLogger("parley.api")

STATUS_OF: Final[dict[ErrorCode, int]] = {
    ErrorCode.bad_request: 400,
    ErrorCode.bad_frame: 400,
    ErrorCode.username_contact_details: 400,
    ErrorCode.too_large: 413,
    ErrorCode.unauthorized: 401,
    ErrorCode.forbidden: 403,
    ErrorCode.not_found: 404,
    ErrorCode.conflict: 409,
    ErrorCode.unavailable: 503,
    ErrorCode.offer_exists: 409,
    ErrorCode.offer_closed: 409,
}
MAX_BODY: Final = 64 * 1024
PUBLIC_PATHS: Final = ("/healthz", "/readyz", "/v1/openapi.json")  # served without the API key
MAX_EVENTS: Final = 1000  # events one GET /v1/events returns at most
MAX_EVENTS_WAIT: Final = 30  # seconds GET /v1/events may long-poll
EVENTS_POLL: Final = 0.2  # seconds between looks while it long-polls

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def _error(exc: ParleyError) -> web.Response:
    return _json({"error": exc.to_wire()}, STATUS_OF.get(exc.code, 500))


def _bad(message: str) -> ParleyError:
    return ParleyError(ErrorCode.bad_request, message)


class Body:
    """Typed access to a JSON object body; each mistake names the field."""

    def __init__(self, data: Any) -> None:
        if not isinstance(data, dict):
            raise _bad("the body must be a JSON object")
        self.data: dict[str, Any] = data

    def text(self, name: str, *, max_len: int = 256, optional: bool = False) -> str | None:
        value = self.data.get(name)
        if value is None and optional:
            return None
        if not isinstance(value, str) or not value or len(value) > max_len:
            raise _bad(f"{name} must be a string of 1..{max_len} characters")
        return value

    def id(self, name: str) -> str:
        value = self.data.get(name)
        if not isinstance(value, str) or ID_RE.fullmatch(value) is None:
            raise _bad(f"{name} must be an id of [A-Za-z0-9_.-]{{1,64}}")
        return value

    def flag(self, name: str, default: bool) -> bool:
        value = self.data.get(name, default)
        if not isinstance(value, bool):
            raise _bad(f"{name} must be true or false")
        return value

    def money(self, name: str) -> Money:
        value = self.data.get(name)
        if not isinstance(value, dict) or set(value) != {"amount", "currency"}:
            raise _bad(f"{name} must be {{amount, currency}} in integer minor units")
        amount, currency = value["amount"], value["currency"]
        if type(amount) is not int or amount < 0:
            raise _bad(f"{name}.amount must be a non-negative integer of minor units")
        if not isinstance(currency, str) or len(currency) != 3 or not currency.isupper():
            raise _bad(f"{name}.currency must be an ISO 4217 code such as CAD")
        return Money(amount, currency)

    def choice(self, name: str, choices: frozenset[str], default: str | None = None) -> str:
        value = self.data.get(name, default)
        if not isinstance(value, str) or value not in choices:
            raise _bad(f"{name} must be one of {', '.join(sorted(choices))}")
        return str(value)


def _path_id(request: web.Request, key: str = "id") -> str:
    value = request.match_info[key]
    if ID_RE.fullmatch(value) is None:
        raise _bad("the id in the path must be of [A-Za-z0-9_.-]{1,64}")
    return value


async def _body(request: web.Request) -> Body:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise ParleyError(ErrorCode.too_large, f"the body is over {MAX_BODY} bytes")
    raw = await request.read()
    try:
        return Body(orjson.loads(raw))
    except orjson.JSONDecodeError:
        raise _bad("the body is not valid JSON") from None


def _event_key(body: Body) -> str | None:
    """The backend's optional ``event_id`` makes a report idempotent.

    Namespaced so that no event id can collide with Parley's own keys
    (``order-opened``), whose entries share the room's author-less key space.
    """
    event_id = body.text("event_id", max_len=64, optional=True)
    return None if event_id is None else f"event:{event_id}"


def _order_wire(order: Order) -> dict[str, Any]:
    return {
        "id": order.id,
        "listing_id": order.listing_id,
        "buyer_id": order.buyer_id,
        "seller_id": order.seller_id,
        "status": order.status,
        "room": order_room(order.id),
    }


class InternalApi:
    def __init__(
        self,
        config: Config,
        store: Store,
        clock: Clock,
        notifier: Notifier | None = None,
        negotiations: Negotiations | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.notifier = notifier or Notifier(config, store, clock, None)
        self.negotiations = negotiations or Negotiations(config, store, clock, self.notifier)
        self.extra_routes: list[web.RouteDef] = []
        self.retention: RoomRetention | None = None  # records ended orders, deleted listings
        self.on_mail_queued: Callable[[], None] = lambda: None  # wakes this hub's sender
        # The app's hub says when SIGTERM's drain has begun: /readyz then answers 503.
        self.draining: Callable[[], bool] = lambda: False
        self.metrics = Metrics(store)  # GET /metrics; the app adds its hub, outbox and mail
        self._key = f"Bearer {config.api_key}".encode()
        self.runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard], client_max_size=MAX_BODY)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        app.router.add_put("/v1/users/{id}", self.put_user)
        app.router.add_put("/v1/listings/{id}", self.put_listing)
        app.router.add_post("/v1/listings/{id}/events", self.listing_event)
        app.router.add_put("/v1/orders/{id}", self.put_order)
        app.router.add_post("/v1/orders/{id}/status", self.order_status)
        app.router.add_put("/v1/listings/{id}/likers/{user_id}", self.put_like)
        app.router.add_delete("/v1/listings/{id}/likers/{user_id}", self.delete_like)
        app.router.add_get("/v1/offers/{id}", self.get_offer)
        app.router.add_get("/v1/events", self.events)
        app.router.add_get("/v1/openapi.json", self.openapi)
        app.router.add_get("/metrics", self.scrape)  # behind the API key: Prometheus sends it
        app.router.add_routes(self.extra_routes)
        return app

    async def start(self, host: str, port: int, *, reuse_port: bool = False) -> int:
        hide_bad_request_lines()
        self.runner = web.AppRunner(self.app(), access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, host, port, reuse_port=reuse_port or None)
        await site.start()
        server = site._server  # aiohttp keeps the asyncio server here
        bound: int = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        log.info("internal API listening on %s:%d", host, bound)
        return bound

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path not in PUBLIC_PATHS:
            given = request.headers.get("Authorization", "").encode()
            if not hmac.compare_digest(given, self._key):
                return _error(ParleyError(ErrorCode.unauthorized, "a valid API key is required"))
        try:
            return await handler(request)
        except ParleyError as exc:
            return _error(exc)
        except web.HTTPException as exc:
            if exc.status == 413:
                return _error(
                    ParleyError(ErrorCode.too_large, f"the body is over {MAX_BODY} bytes")
                )
            code = ErrorCode.not_found if exc.status == 404 else ErrorCode.bad_request
            return _json({"error": {"code": code, "message": exc.reason}}, exc.status)

    async def openapi(self, request: web.Request) -> web.Response:
        return _json(openapi_spec())

    async def scrape(self, request: web.Request) -> web.Response:
        body = await self.metrics.scrape()
        return web.Response(body=body, headers={"Content-Type": METRICS_CONTENT_TYPE})

    async def healthz(self, request: web.Request) -> web.Response:
        return _json({"status": "ok"})

    async def readyz(self, request: web.Request) -> web.Response:
        if self.draining():
            # A load balancer stops routing here while members are being moved off.
            return _error(ParleyError(ErrorCode.unavailable, "draining: the hub is shutting down"))
        try:
            await self.store.check()
        except ParleyError as exc:
            return _error(exc)
        return _json({"status": "ready"})

    async def put_user(self, request: web.Request) -> web.Response:
        user_id = _path_id(request)
        body = await _body(request)
        email = body.text("email", max_len=254, optional=True)
        if email is not None and "@" not in email:
            raise _bad("email must be an e-mail address")
        name = body.text("name", max_len=MAX_USERNAME) or ""
        if not is_valid_username(name):
            raise _bad("name must be a username: letters, digits and _, with single . or - inside")
        check_username(name, region=self.config.phone_region)
        user = User(
            UserId(user_id),
            name,
            body.text("locale", max_len=16, optional=True) or "en",
            email,
        )
        await self.store.put_user(user)
        return _json({"user": {"id": user.id, "name": user.name, "locale": user.locale}})

    async def put_listing(self, request: web.Request) -> web.Response:
        listing_id = _path_id(request)
        body = await _body(request)
        before = await self.store.get_listing(ListingId(listing_id))
        listing = Listing(
            ListingId(listing_id),
            UserId(body.id("seller_id")),
            body.text("title", max_len=200) or "",
            body.money("price"),
            body.text("photo_url", max_len=2048, optional=True),
            # The seller's own switch (``offers_enable``) stands unless the backend says.
            body.flag("offers_enabled", before is not None and before.offers_enabled),
            body.choice("status", LISTING_STATUSES, "active"),
        )
        await self.store.put_listing(listing)
        stop_point("listing.stored")
        # From the room's state, not the listing's: a retry after a crash between
        # the two writes finds the listing deleted and the room still open.
        if (listing.status == "deleted") != await self.store.room_closed(listing_room(listing.id)):
            if self.retention is not None:
                # Before the close, for the same reason: the retry finds the room open.
                await self.retention.listing_changed(listing, was_deleted=False)
            await self._close_or_reopen(listing)
        return _json({"listing": {"id": listing.id, "room": listing_room(listing.id)}})

    async def _close_or_reopen(self, listing: Listing) -> None:
        """A deleted listing closes its room on every hub; restoring it reopens it."""
        closing = listing.status == "deleted"
        draft = Draft(
            kind="close" if closing else "reopen",
            text="",
            ts=to_ms(self.clock.now()),
            data={"reason": "listing_deleted" if closing else "listing_restored"},
        )
        await self.store.append(listing_room(listing.id), draft)
        log.info("listing room %s listing=%s", "closed" if closing else "reopened", listing.id)

    async def listing_event(self, request: web.Request) -> web.Response:
        """R3: the seller edited the listing or added photos; the room sees it."""
        listing_id = _path_id(request)
        body = await _body(request)
        if await self.store.get_listing(ListingId(listing_id)) is None:
            raise ParleyError(ErrorCode.not_found, f"no listing {listing_id}")
        change = listing_change(body.data)
        draft = Draft(
            kind="system",
            text=change.text,
            ts=to_ms(self.clock.now()),
            client_msg_id=_event_key(body),
            data=change.data,
        )
        appended = await self.store.append(listing_room(listing_id), draft)
        return _json({"room": appended.entry.room, "seq": appended.entry.seq}, 201)

    async def put_order(self, request: web.Request) -> web.Response:
        """R9: an order opens its private room at once, with a system message first."""
        order_id = _path_id(request)
        body = await _body(request)
        order = Order(
            OrderId(order_id),
            ListingId(body.id("listing_id")),
            UserId(body.id("buyer_id")),
            UserId(body.id("seller_id")),
            created_ts=to_ms(self.clock.now()),
        )
        if order.buyer_id == order.seller_id:
            raise _bad("buyer_id and seller_id must differ")
        listing = await self.store.get_listing(order.listing_id)
        if listing is not None and listing.seller_id != order.seller_id:
            raise ParleyError(ErrorCode.conflict, "seller_id is not the listing's seller")
        stored, created = await self.store.put_order(order)
        stop_point("order.stored")
        # Idempotent by its client_msg_id: a retry after a crash between the two
        # writes still opens the room, and never twice.
        opened = order_opened(stored)
        await self.store.append(
            order_room(stored.id),
            Draft(
                kind="system",
                text=opened.text,
                ts=stored.created_ts,
                client_msg_id="order-opened",
                data=opened.data,
            ),
        )
        # R11: one confirmation e-mail per party, idempotent by its key like the room.
        if await queue_order_confirmation(self.store, stored, stored.created_ts):
            self.on_mail_queued()
        title = None if listing is None else listing.title
        await self.notifier.send(
            Notice(
                party,
                {
                    "kind": "order_opened",
                    "order_id": stored.id,
                    "room": order_room(stored.id),
                    "listing_id": stored.listing_id,
                    "listing_title": title,
                    "role": role,
                },
                f"order_opened:{stored.id}",
            )
            for party, role in ((stored.buyer_id, "buyer"), (stored.seller_id, "seller"))
        )
        # The item is sold: every negotiation still open on it closes (on a retry
        # too, in case the first attempt stopped before this).
        await self.negotiations.close_for_sale(stored.listing_id)
        if created:
            log.info("order opened order=%s listing=%s", stored.id, stored.listing_id)
        return _json({"order": _order_wire(stored), "created": created}, 201 if created else 200)

    async def order_status(self, request: web.Request) -> web.Response:
        """R9: shipped (carrier, tracking), delivered, returns... shown in the room."""
        order_id = OrderId(_path_id(request))
        body = await _body(request)
        report = check_report(
            body.data.get("status"),
            body.data.get("tracking_number"),
            body.data.get("carrier"),
            body.data.get("reason"),
        )
        before = await self.store.get_order(order_id)
        if before is None:
            raise ParleyError(ErrorCode.not_found, f"no order {order_id}")
        if self.retention is not None:
            # Before the status: a retry after a crash in between finds it unchanged and
            # records again (harmless), where after it the retry would see no change.
            changed = dataclasses.replace(before, status=report.status)
            await self.retention.order_status_changed(changed, before.status)
        order = await self.store.set_order_status(order_id, report.status)
        if order is None:
            raise ParleyError(ErrorCode.not_found, f"no order {order_id}")
        stop_point("order_status.stored")
        event_key = _event_key(body)
        appended = await self.store.append(
            order_room(order_id),
            Draft(
                kind="system",
                text=status_text(report, "en"),
                ts=to_ms(self.clock.now()),
                client_msg_id=event_key,
                data=status_data(report),
            ),
        )
        await self._end_or_resume(order, event_key)
        payload: dict[str, Any] = {
            "kind": "order_status",
            "order_id": order.id,
            "room": order_room(order.id),
            "status": report.status,
        }
        if report.tracking_number is not None:
            payload["tracking_number"] = report.tracking_number
        if report.carrier is not None:
            payload["carrier"] = CARRIERS[report.carrier].name
            if report.tracking_number is not None:
                payload["tracking_url"] = tracking_url(report.carrier, report.tracking_number)
        if report.reason is not None:
            payload["reason"] = report.reason
        key = f"order_status:{order.id}:{appended.entry.seq}"
        await self.notifier.send(
            Notice(party, payload, key) for party in (order.buyer_id, order.seller_id)
        )
        return _json({"order": _order_wire(order), "seq": appended.entry.seq})

    async def _end_or_resume(self, order: Order, event_key: str | None) -> None:
        """With ``order_room_after_end: read_only``, an ended order's room takes no
        more messages (it stays readable); a status after the end opens it again."""
        if self.config.order_room_after_end != "read_only":
            return
        # From the room's state, as for a listing: a retry completes a close that
        # a crash cut off after the status was stored.
        ended = order.status in ENDED
        if ended == await self.store.room_closed(order_room(order.id)):
            return
        await self.store.append(
            order_room(order.id),
            Draft(
                kind="close" if ended else "reopen",
                text="",
                ts=to_ms(self.clock.now()),
                client_msg_id=None if event_key is None else f"{event_key}:end",
                data={"reason": f"order_{order.status}" if ended else "order_resumed"},
            ),
        )

    # Likes (R6), negotiations and the backend's event feed.

    async def put_like(self, request: web.Request) -> web.Response:
        listing_id = ListingId(_path_id(request))
        user_id = UserId(_path_id(request, "user_id"))
        ts = to_ms(self.clock.now())
        if request.can_read_body:
            given = (await _body(request)).data.get("ts", ts)
            if type(given) is not int or given < 0:
                raise _bad("ts must be a non-negative integer of ms since the epoch")
            ts = given
        created = await self.store.put_like(listing_id, user_id, ts)
        return _json({"listing_id": listing_id, "user_id": user_id, "created": created},
                     201 if created else 200)  # fmt: skip

    async def delete_like(self, request: web.Request) -> web.Response:
        listing_id = ListingId(_path_id(request))
        user_id = UserId(_path_id(request, "user_id"))
        deleted = await self.store.delete_like(listing_id, user_id)
        return _json({"listing_id": listing_id, "user_id": user_id, "deleted": deleted})

    async def get_offer(self, request: web.Request) -> web.Response:
        offer_id = _path_id(request)
        negotiation = await self.store.get_negotiation(offer_id)
        if negotiation is None:
            raise ParleyError(ErrorCode.not_found, f"no offer {offer_id}")
        return _json({"offer": offer_wire(negotiation, None, now_ms=to_ms(self.clock.now()))})

    async def events(self, request: web.Request) -> web.Response:
        """The backend's feed, oldest first after ``after``; long-polls up to ``wait`` s."""
        after = _query_int(request, "after", 0, 0, 2**62)
        limit = _query_int(request, "limit", 100, 1, MAX_EVENTS)
        wait = _query_int(request, "wait", 0, 0, MAX_EVENTS_WAIT)
        loop = asyncio.get_running_loop()
        until = loop.time() + wait
        while True:
            entries = await self.store.entries_after(EVENTS_ROOM, after, limit)
            if entries or loop.time() >= until:
                break
            await asyncio.sleep(min(EVENTS_POLL, max(until - loop.time(), 0.0)))
        head = await self.store.head(EVENTS_ROOM)
        events = [{"seq": e.seq, "ts": e.ts, **(e.data or {})} for e in entries]
        return _json(
            {"events": events, "next": entries[-1].seq if entries else after, "epoch": head.epoch}
        )


def _query_int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _bad(f"{name} must be an integer") from None
    if not low <= value <= high:
        raise _bad(f"{name} must be between {low} and {high}")
    return value


class _BadRequestLine(logging.Filter):
    """aiohttp logs a request its parser refuses with the offending header line,
    ``Authorization: Bearer <api key>`` included: keep the reason, drop the line."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            reason = str(exc.message).split(":", 1)[0].strip()
            record.msg = f"{record.getMessage()}: {exc.code} {reason}"
            record.args = ()
            record.exc_info = None
            record.exc_text = None
        return True


_BAD_REQUEST_LINE: Final = _BadRequestLine()


def hide_bad_request_lines() -> None:
    """Install the filter on aiohttp's server logger (once)."""
    logging.getLogger("aiohttp.server").addFilter(_BAD_REQUEST_LINE)
