"""The WebSocket hub: connections, rooms and fan-out.

Each connection negotiates an encoding (``parley.v1.json`` or
``parley.v1.msgpack``), authenticates with a ``connect`` frame, joins its own
``user:<id>`` channel, then sends requests. Requests run concurrently (replies
carry the request's ``id``), at most ``MAX_IN_FLIGHT`` per connection: past
that the hub stops reading, and TCP pushes back on the client.

The hot path is ``_deliver``: an entry announced by the store is encoded once
per encoding into a complete WebSocket frame, and the same bytes are written to
every watcher's transport. No task, future or await per recipient. A watcher
whose send buffer is over ``send_buffer_bytes`` is closed with 4008 instead of
slowing the others; it reconnects and resumes with ``since``.

A member holds at most ``max_connections_per_member`` connections on a hub, a
client address ``max_connections_per_ip``; past either, 4009. Writes spend a
token of their connection (``write_rate``) and one of their member on this hub
(``member_write_rate``), so more connections do not mean more writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
from collections.abc import Awaitable
from functools import partial
from typing import Any, Final

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request as HttpRequest
from websockets.protocol import State

from parley.protocol.codec import CODECS, SUBPROTOCOLS, Codec
from parley.protocol.errors import CloseCode, ErrorCode, ParleyError, ProtocolError
from parley.protocol.messages import (
    Block,
    Connect,
    Delete,
    Edit,
    Limits,
    Mute,
    NotificationsRead,
    OfferMake,
    OfferRespond,
    OffersEnable,
    OfferToLikers,
    Post,
    Read,
    Request,
    Unblock,
    Unmute,
    parse_request,
    reply,
    request_id,
)
from parley.protocol.messages import Report as ReportRequest
from parley.server.auth import AuthError, Principal, TokenVerifier
from parley.server.config import Config
from parley.server.core.buckets import Buckets
from parley.server.core.clock import Clock, to_ms
from parley.server.core.connection_caps import ConnectionCap
from parley.server.core.feed import FeedStep, RoomFeed
from parley.server.core.keepalive import Keepalive, Liveness, keepalive_step, sweep_period
from parley.server.core.model import Entry, Order, User
from parley.server.core.ratelimit import MemberBuckets, TokenBucket
from parley.server.core.restrictions import RESTRICTED_OPS, RESTRICTIONS_ROOM, RestrictionBook
from parley.server.core.rooms import (
    user_room,
)
from parley.server.core.sessions import check_in_scope
from parley.server.core.usernames import check_username
from parley.server.landing import LandingPage
from parley.server.metrics import LAG_BOUNDS, RESULT_SLOT, OpCounts
from parley.server.moderation import Moderation
from parley.server.negotiations import Negotiations
from parley.server.notify import Notifier
from parley.server.ops import HANDLERS, Handler
from parley.server.ops.presence import announce, contradicts
from parley.server.ops.rooms import join_from
from parley.server.store.base import Store

log = logging.getLogger("parley.hub")

MAX_IN_FLIGHT: Final = 32  # concurrent requests per connection before reading pauses
FILL_BATCH: Final = 500  # entries read per gap fill
# Ops under the write rate.
WRITES: Final = (
    Post,
    Edit,
    Delete,
    NotificationsRead,
    OffersEnable,
    OfferMake,
    OfferRespond,
    OfferToLikers,
    Read,
    Block,
    Unblock,
    Mute,
    Unmute,
    ReportRequest,
)
MAX_TRACKED_MEMBERS: Final = 100_000  # members' write and mention buckets, cached orders, per hub
# Rooms whose watchers other hubs ask about (listing rooms: how many, never who).
PRESENCE_ROOMS: Final = ("user:", "order:", "listing:")
TYPING_LAG_FRACTION: Final = 8  # no typing, no presence to one over 1/8 of send_buffer_bytes
CLOSE_TIMEOUT: Final = 5.0  # seconds a closed client has to read its backlog and answer


_HANDSHAKE_DONE: Final = HttpRequest("/", Headers())


class HubConnection(ServerConnection):
    """A ``ServerConnection`` that reference counting frees once it is closed.

    websockets leaves two reference cycles on every closed connection: the
    protocol's ``parser``, a generator suspended for good whose frame holds the
    protocol, and, on a connection lost without a close frame, ``parser_exc``,
    whose traceback holds that frame too. Only a full collection would free them,
    and ``runtime.tune_gc`` makes those rare: under reconnect churn, every closed
    connection's protocol, reader and buffers stayed in memory (about 1 KB each,
    2,400 a minute in the soak). Once the connection is lost nothing steps the
    parser again (``receive_eof`` is idempotent, ``receive_data`` raises), so
    closing it and dropping the traceback (the exception stays, for
    ``close_exc.__cause__``) loses nothing.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The hub's keepalive sweep reads it (``server.core.keepalive``).
        self.liveness = Liveness(quiet_since=self.loop.time())

    def data_received(self, data: bytes) -> None:
        self.liveness.heard = True
        super().data_received(data)

    def forget_handshake(self) -> None:
        """Drop the handshake's request and response, headers and all (~1.5 KB).

        websockets keeps both for the connection's life; the hub reads them only
        during the handshake (``process_request``: the path, ``Origin``). A
        ``request`` must stay set, as websockets takes a connection without one
        for one still in its handshake: one shared, empty request stands in.
        """
        self.request = _HANDSHAKE_DONE
        self.response = None

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        protocol = self.protocol
        if protocol.parser_exc is not None:
            protocol.parser_exc.__traceback__ = None
        protocol.parser.close()


class Conn:
    """One member's connection; kept small, there may be a hundred thousand."""

    __slots__ = (
        "bad_frames",
        "closing",
        "codec",
        "in_flight",
        "pending",
        "principal",
        "rooms",
        "transport",
        "typing_bucket",
        "unpaused",
        "writes",
        "ws",
    )

    def __init__(
        self, ws: ServerConnection, codec: Codec, principal: Principal, writes: TokenBucket
    ) -> None:
        self.ws = ws
        self.transport: asyncio.WriteTransport = ws.transport
        self.codec = codec
        self.principal = principal
        self.rooms: set[str] = set()
        self.bad_frames = 0
        self.closing = False
        self.writes = writes
        self.in_flight = 0  # requests being served; reading pauses at MAX_IN_FLIGHT
        self.unpaused: asyncio.Future[None] | None = None
        self.pending: list[bytes] | None = None  # frames written this loop iteration
        self.typing_bucket: TokenBucket | None = None  # made on the first typing


class Room:
    """The watchers of one room on this hub and the feed that orders its entries."""

    __slots__ = ("feed", "filling", "held", "watchers")

    def __init__(self, feed: RoomFeed) -> None:
        self.feed = feed
        self.watchers: set[Conn] = set()
        self.filling = False
        # Connections catching up (``Hub.hold``): the room's events kept for them.
        self.held: dict[Conn, list[dict[str, Any]]] | None = None


class Hub:
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
        self.moderation = Moderation(config, store, clock, self.notifier)
        # Per hub process, not shared: see ``_take_write``.
        self._member_writes = MemberBuckets(
            config.member_write_rate, config.member_write_burst, MAX_TRACKED_MEMBERS
        )
        self._mentions = MemberBuckets(
            config.mention_rate, config.mention_burst, MAX_TRACKED_MEMBERS
        )
        # Reports a member may file (per hub process, like mentions).
        self.report_allowance = MemberBuckets(
            config.report_rate, config.report_burst, MAX_TRACKED_MEMBERS
        )
        # The moderators' restrictions, in memory: no store read on the post path.
        self.restrictions = RestrictionBook()
        self._restricted = self.restrictions.by_user
        self._orders: dict[str, asyncio.Future[Order | None]] = {}
        # Members whose record this hub has read or claimed: see ``_remember``.
        self._seen_members: set[str] = set()
        self.verifier = TokenVerifier(config, clock)
        self.landing = LandingPage(config, store, clock)  # GET /open: the e-mail's links
        self.limits = Limits(max_text_chars=config.max_text_chars)
        self.rooms: dict[str, Room] = {}
        self._opening: dict[str, asyncio.Future[Room]] = {}
        # Entries announced while their room opens: after its head was read, they
        # would otherwise be dropped and wait for the next entry's gap fill.
        self._announced_early: dict[str, list[tuple[Entry, str]]] = {}
        self.conns: set[Conn] = set()
        self.server: Server | None = None
        self._keepalive_task: asyncio.Future[None] | None = None  # set by start
        self._tasks: set[asyncio.Future[Any]] = set()
        self._unflushed: list[Conn] = []  # connections with pending frames
        # Counted in place on the hot path (plain ints, no lock); GET /metrics reads them.
        self.ops = OpCounts(HANDLERS)
        self._routes = self.ops.routes  # request type -> (handler, its row of ops counts)
        self._unparsed = self.ops.unparsed
        self._unrouted: tuple[Handler | None, list[int]] = (None, self.ops.unparsed)
        self.accepted = 0  # connections authenticated
        self.delivered = 0  # room events queued to watchers: one per watcher per event
        self.closes: dict[int, int] = {}  # closes made by ``_close``, by code
        self.reloads: dict[str, int] = {}  # ``reload`` told to connections, by reason
        self.lag = Buckets(LAG_BOUNDS)  # seconds from an entry's ts to its delivery here
        self.member_cap = ConnectionCap(config.max_connections_per_member)
        self.address_cap = ConnectionCap(config.max_connections_per_ip)
        self.draining = False  # SIGTERM: closing members over drain_window
        store.fanout.listener = self._on_entry
        store.fanout.on_resync = self._on_resync
        store.fanout.ephemeral_listener = self._on_ephemeral

    # Life cycle.

    async def start(self, host: str, port: int, *, reuse_port: bool = False) -> int:
        # Every hub hears restrictions change; what it missed, it reads.
        await self.store.fanout.follow(RESTRICTIONS_ROOM)
        await self._load_restrictions()
        self.server = await serve(
            self._handle,
            host,
            port,
            create_connection=HubConnection,
            subprotocols=[*SUBPROTOCOLS],  # type: ignore[list-item]
            compression=None,  # prebuilt broadcast frames need frames without extensions
            max_size=self.config.max_frame_bytes,
            # One sweep pings quiet connections (_keepalive), not a task per connection.
            ping_interval=None,
            ping_timeout=None,
            close_timeout=CLOSE_TIMEOUT,
            reuse_port=reuse_port,
            # Plain requests get pages and files; a handshake from a refused Origin, 403.
            process_request=self.landing.process_request,
        )
        sock = next(iter(self.server.sockets))
        bound: int = sock.getsockname()[1]
        self._keepalive_task = asyncio.ensure_future(self._keepalive(self.server))
        log.info("hub listening on %s:%d", host, bound)
        return bound

    async def _keepalive(self, server: Server) -> None:
        """Ping connections gone quiet; close those whose ping got no pong (1011)."""
        interval, timeout = self.config.ping_interval, self.config.ping_timeout
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(sweep_period(interval, timeout))
            now = loop.time()
            for ws in list(server.connections):
                if not isinstance(ws, HubConnection) or ws.protocol.state is not State.OPEN:
                    continue
                action = keepalive_step(ws.liveness, now, interval, timeout)
                if action is Keepalive.PING:
                    ws.protocol.send_ping(b"")
                    ws.send_data()
                elif action is Keepalive.CLOSE:
                    ws.liveness.pinged_at = math.inf  # closing: not again
                    log.info("no pong in time: closing address=%s", ws.remote_address)
                    self._track(
                        asyncio.ensure_future(
                            ws.close(CloseCode.internal_error, "keepalive ping timeout")
                        )
                    )

    async def shutdown(self) -> None:
        """Stop accepting at once; close members with 1012 over ``drain_window``.

        Spread out, so that a fleet of clients told to reconnect elsewhere does
        not arrive there all in the same second. Each close goes behind the
        frames already queued for its connection. Then requests in flight and
        closing handshakes get ``shutdown_grace``, and the hub is done.
        """
        if self.server is None:
            return
        self.draining = True
        if self._keepalive_task is not None:
            self._keepalive_task.cancel()
        self.server.close(close_connections=False)  # no new connections from here
        await self._drain(self.config.drain_window)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.config.shutdown_grace):
                await self.server.wait_closed()
                if self._tasks:
                    await asyncio.wait(set(self._tasks))

    async def _drain(self, window: float) -> None:
        members = list(self.conns)
        # Not yet authenticated: nobody's session is lost by closing them now.
        known = {conn.ws for conn in members}
        assert self.server is not None
        for ws in self.server.connections - known:
            self._track(asyncio.ensure_future(ws.close(CloseCode.service_restart, "restarting")))
        log.info("draining %d connections over %.1f s", len(members), window)
        loop = asyncio.get_running_loop()
        start = loop.time()
        for i, conn in enumerate(members):
            delay = start + window * i / len(members) - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self._close(conn, CloseCode.service_restart, "restarting; reconnect")

    # One connection.

    async def _handle(self, ws: ServerConnection) -> None:
        if isinstance(ws, HubConnection):
            ws.forget_handshake()
        if self.draining:  # its handshake crossed the listener's closing
            await ws.close(CloseCode.service_restart, "restarting; reconnect")
            return
        address = ws.remote_address[0] if ws.remote_address else ""
        if not self.address_cap.admit(address):
            log.warning("too many connections address=%s", address)
            await ws.close(CloseCode.too_many_connections, "too many connections from here")
            return
        try:
            await self._serve(ws)
        finally:
            self.address_cap.release(address)

    async def _serve(self, ws: ServerConnection) -> None:
        codec = CODECS[ws.subprotocol or ""]
        connected = await self._authenticate(ws, codec)
        if connected is None:
            return
        conn, request, result = connected
        if not self.member_cap.admit(conn.principal.user_id):
            log.warning("too many connections user=%s", conn.principal.user_id)
            await ws.close(CloseCode.too_many_connections, "too many connections for this member")
            return
        self.conns.add(conn)
        if self._restricted:  # suspended while it authenticated
            self._close_if_suspended(conn)
        loop = asyncio.get_running_loop()
        inbox = user_room(conn.principal.user_id)
        try:
            try:
                if conn.principal.scope is not None:
                    # A session from an e-mail link opens its one room, not the inbox.
                    result["inbox"] = None
                    result["scope"] = conn.principal.scope
                else:
                    result["inbox"] = await join_from(
                        self, conn, inbox, request.since, request.epoch
                    )
            except ParleyError as exc:
                await self._send_reply(ws, codec, request.id, error=exc)
                await ws.close(CloseCode.internal_error, exc.message[:100])
                return
            # Written before anything else can run: no event precedes the reply.
            self._reply(conn, request.id, result=result)
            # This frame lives as long as the connection: hold no more than it needs.
            del connected, request, result
            log.debug("connected user=%s", conn.principal.user_id)
            await self.entered(conn, inbox)
            async for frame in ws:
                conn.in_flight += 1
                task = loop.create_task(self._serve_frame(conn, frame))
                self._tasks.add(task)
                task.add_done_callback(partial(self._request_done, conn))
                del frame, task  # not held while the connection waits for its next frame
                if conn.in_flight >= MAX_IN_FLIGHT:
                    conn.unpaused = loop.create_future()
                    await conn.unpaused
        except ConnectionClosed:
            pass
        finally:
            self.conns.discard(conn)
            self.member_cap.release(conn.principal.user_id)
            for room in list(conn.rooms):
                self.unwatch(conn, room)

    def _request_done(self, conn: Conn, task: asyncio.Future[None]) -> None:
        self._tasks.discard(task)
        conn.in_flight -= 1
        unpaused = conn.unpaused
        if unpaused is not None:
            conn.unpaused = None
            unpaused.set_result(None)

    async def _authenticate(
        self, ws: ServerConnection, codec: Codec
    ) -> tuple[Conn, Connect, dict[str, Any]] | None:
        """Wait for a valid ``connect``; return the connection and its reply, unsent."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.auth_timeout
        bad = 0
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    frame = await ws.recv()
            except TimeoutError:
                await ws.close(CloseCode.auth_timeout, "no connect frame in time")
                return None
            except ConnectionClosed:
                return None
            rid: int | None = None
            try:
                obj = codec.decode(frame)
                rid = request_id(obj)
                request = parse_request(obj, self.limits)
                if not isinstance(request, Connect):
                    raise ParleyError(ErrorCode.not_connected, "send connect with a token first")
            except ParleyError as exc:
                await self._send_reply(ws, codec, rid, error=exc)
                bad += 1
                if bad >= self.config.max_bad_frames:
                    await ws.close(CloseCode.too_many_errors, "too many bad frames")
                    return None
                continue
            try:
                principal = self.verifier.verify(request.token)
            except AuthError as exc:
                err = ParleyError(ErrorCode.unauthorized, str(exc))
                await self._send_reply(ws, codec, request.id, error=err)
                await ws.close(CloseCode.auth_failed, str(exc)[:100])
                return None
            try:
                self.restrictions.check_connect(principal.user_id, to_ms(self.clock.now()))
            except ParleyError as exc:
                await self._send_reply(ws, codec, request.id, error=exc)
                await ws.close(CloseCode.suspended, "suspended by the moderators")
                return None
            try:
                principal = await self._remember(principal)
            except ParleyError as exc:
                await self._send_reply(ws, codec, request.id, error=exc)
                if exc.code is ErrorCode.conflict:
                    await ws.close(CloseCode.auth_failed, "username taken by another member")
                elif exc.code is ErrorCode.username_contact_details:
                    await ws.close(CloseCode.auth_failed, "username holds contact details")
                else:
                    await ws.close(CloseCode.internal_error, exc.message[:100])
                return None
            writes = TokenBucket(self.config.write_rate, self.config.write_burst, self.clock.now())
            conn = Conn(ws, codec, principal, writes)
            self.accepted += 1
            result = {
                "user": {
                    "id": principal.user_id,
                    "name": principal.name,
                    "locale": principal.locale,
                },
                "limits": {
                    "max_frame_bytes": self.config.max_frame_bytes,
                    "max_text_chars": self.config.max_text_chars,
                },
            }
            return conn, request, result

    async def _remember(self, principal: Principal) -> Principal:
        """The member as the store knows them: the backend owns the username.

        The token's ``name`` only seeds the record of a member the backend has
        not registered (under the backend's rules: no contact details in it, no
        look-alike of another member's name); afterwards a token cannot rename
        anyone, nor borrow another member's name. Its ``locale`` stays the
        connection's language.

        A member this hub has found in the store before is read: one round trip,
        and no check of a name that would only seed. Any other goes straight to
        ``claim_user`` once its name passes the check: it reads the record first
        and writes only for a new member, so a new member's connect costs one
        read and one write, not two reads and a write. Which way is taken never
        changes the answer: the store's record decides, whatever
        ``_seen_members`` holds.
        """
        user_id = principal.user_id
        user: User | None = None
        if user_id in self._seen_members:
            user = await self.store.get_user(user_id)  # None: erased since
        if user is None:
            try:
                check_username(principal.name, region=self.config.phone_region)
            except ParleyError:
                # Refused only as a seed: a member the store knows keeps their name.
                user = await self.store.get_user(user_id)
                if user is None:
                    raise
            else:
                user = await self.store.claim_user(user_id, principal.name, principal.locale)
            if len(self._seen_members) >= MAX_TRACKED_MEMBERS:
                self._seen_members.clear()
            self._seen_members.add(user_id)
        if user.name == principal.name:
            return principal
        return dataclasses.replace(principal, name=user.name)

    async def _send_reply(
        self,
        ws: ServerConnection,
        codec: Codec,
        rid: int | None,
        *,
        result: dict[str, Any] | None = None,
        error: ParleyError | None = None,
    ) -> None:
        with contextlib.suppress(ConnectionClosed):
            frame = codec.encode(reply(rid, result=result, error=error))
            await ws.send(frame, text=codec.text_frames)

    async def _serve_frame(self, conn: Conn, frame: str | bytes) -> None:
        rid: int | None = None
        served = self._unparsed  # this op's row of counts, once the frame parses
        try:
            obj = conn.codec.decode(frame)
            rid = request_id(obj)
            request = parse_request(obj, self.limits)
            handler, served = self._routes.get(type(request), self._unrouted)
            result = await self._dispatch(conn, request, handler)
        except ProtocolError as exc:
            served[RESULT_SLOT[exc.code]] += 1
            conn.bad_frames += 1
            self._reply(conn, rid, error=exc)
            if conn.bad_frames >= self.config.max_bad_frames:
                self._close(conn, CloseCode.too_many_errors, "too many bad frames")
            return
        except ParleyError as exc:
            served[RESULT_SLOT[exc.code]] += 1
            self._reply(conn, rid, error=exc)
            return
        except Exception:
            # The one place a bug is caught: the client gets a code, the log the trace.
            served[RESULT_SLOT[ErrorCode.internal]] += 1
            log.exception("internal error serving user=%s", conn.principal.user_id)
            self._reply(conn, rid, error=ParleyError(ErrorCode.internal, "internal error"))
            return
        served[0] += 1
        conn.bad_frames = 0
        self._reply(conn, rid, result=result)

    def _reply(
        self,
        conn: Conn,
        rid: int | None,
        *,
        result: dict[str, Any] | None = None,
        error: ParleyError | None = None,
    ) -> None:
        self._write(conn, conn.codec.frame(reply(rid, result=result, error=error)))

    def _dispatch(
        self, conn: Conn, request: Request, handler: Handler | None
    ) -> Awaitable[dict[str, Any]]:
        if handler is None:  # only Connect: it is valid once, at the start
            raise ParleyError(ErrorCode.already_connected, "this connection is authenticated")
        if conn.principal.scope is not None:
            check_in_scope(conn.principal.scope, request)
        if self._restricted and isinstance(request, RESTRICTED_OPS):
            self.restrictions.check_write(conn.principal.user_id, to_ms(self.clock.now()))
        if isinstance(request, WRITES):
            self._take_write(conn)
        return handler(self, conn, request)

    def _take_write(self, conn: Conn) -> None:
        """Spend one token of the connection and one of its member, or refuse with neither.

        The connection's bucket goes first: a connection over its own limit
        must not drain the budget its member's other devices share. A write
        the member's limit refuses gives the connection its token back. The
        member's bucket is per hub process: sharing it would cost a store
        round trip per write, a member's connections land on few hubs, and
        ``max_connections_per_member`` bounds what each hub lets through.
        A scoped session (an e-mail link) is its member: same ``user_id``.
        """
        now = self.clock.now()
        if not conn.writes.take(now):
            raise ParleyError(
                ErrorCode.rate_limited, "too many writes on this connection; slow down and retry"
            )
        if not self._member_writes.take(conn.principal.user_id, now):
            conn.writes.refund()
            raise ParleyError(
                ErrorCode.rate_limited,
                "too many writes from this member's connections together; slow down and retry",
            )

    def take_mentions(self, user_id: str, count: int) -> bool:
        """Spend ``count`` of the member's mention allowance (per hub process)."""
        return self._mentions.take(user_id, self.clock.now(), count)

    def watched_by_other(self, name: str, user_id: str) -> bool:
        """Whether a member other than ``user_id`` watches ``name`` on this hub."""
        room = self.rooms.get(name)
        return room is not None and any(c.principal.user_id != user_id for c in room.watchers)

    async def order(self, order_id: str) -> Order | None:
        """An order, cached: its listing and parties never change once reported.

        Concurrent askers share one read, so the first posts into thousands of
        order rooms at once do not each take a store connection.
        """
        cached = self._orders.get(order_id)
        if cached is None:
            if len(self._orders) >= MAX_TRACKED_MEMBERS:
                self._orders.clear()
            cached = self._orders[order_id] = asyncio.ensure_future(
                self.store.get_order(order_id)  # type: ignore[arg-type]
            )
        try:
            order = await asyncio.shield(cached)
        except ParleyError:
            self._orders.pop(order_id, None)  # not cached: the next asker tries again
            raise
        if order is None:
            self._orders.pop(order_id, None)  # an order reported later must be found
        return order

    # Rooms on this hub.

    async def open_room(self, name: str) -> Room:
        """The hub's Room for ``name``, following it in the fan-out on first use."""
        room = self.rooms.get(name)
        if room is not None:
            return room
        pending = self._opening.get(name)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Room] = asyncio.get_running_loop().create_future()
        self._opening[name] = future
        early = self._announced_early[name] = []
        try:
            await self.store.fanout.follow(name)
            # Announcements that arrive before the head is read are covered by it;
            # those after it are kept in ``early`` and fed once the room exists.
            head = await self.store.head(name)
            room = Room(RoomFeed(head.epoch, head.seq))
            self.rooms[name] = room
            for entry, epoch in early:
                if self._feed_one(room, name, entry, epoch).fill_after is not None:
                    self._start_fill(name, room)
            future.set_result(room)
            return room
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: concurrent openers re-raise it themselves
            raise
        finally:
            del self._opening[name]
            del self._announced_early[name]

    def join(self, conn: Conn, name: str, room: Room) -> None:
        room.watchers.add(conn)
        conn.rooms.add(name)

    def hold(self, conn: Conn, room: Room) -> None:
        """Keep the room's events for ``conn`` instead of writing them, until ``unhold``."""
        if room.held is None:
            room.held = {}
        room.held[conn] = []

    def unhold(self, conn: Conn, room: Room) -> list[dict[str, Any]]:
        """The events kept for ``conn`` since ``hold``, in order; it is held no more."""
        held = room.held or {}
        events = held.pop(conn, [])
        if not held:
            room.held = None
        return events

    async def entered(self, conn: Conn, name: str) -> None:
        """Tell every hub that the member is here, in the rooms where it matters:
        their own (push only when away), order rooms (``order_message``, and
        ``presence`` to the other party) and listing rooms (counted only)."""
        if name in conn.rooms:
            await self.enter(conn, name)

    async def enter(self, conn: Conn, name: str) -> bool:
        """``entered`` for a room the connection is about to join; ``True`` when it
        counted, and must then be undone with ``left`` if the join fails.

        A subscribe enters before it joins: entering waits until other hubs can
        see it (order rooms, on Redis), and once joined, no await may let the
        room's events precede the reply (they would arrive before what was
        missed, and look repeated)."""
        if not name.startswith(PRESENCE_ROOMS):
            return False
        user_id = conn.principal.user_id
        first = not self.store.presence.here(name, user_id)
        await self.store.presence.enter(name, user_id)
        if first and name.startswith("order:"):
            # Not awaited: a subscribe's reply goes before the room's events.
            self._track(asyncio.ensure_future(announce(self, name, user_id, online=True)))
        return True

    def left(self, conn: Conn, name: str) -> None:
        """Undo ``enter``: the member's connection no longer watches the room."""
        user_id = conn.principal.user_id
        self.store.presence.leave(name, user_id)
        if name.startswith("order:") and not self.store.presence.here(name, user_id):
            self._track(asyncio.ensure_future(announce(self, name, user_id, online=False)))

    def unwatch(self, conn: Conn, name: str) -> None:
        if name in conn.rooms and name.startswith(PRESENCE_ROOMS):
            self.left(conn, name)
        conn.rooms.discard(name)
        room = self.rooms.get(name)
        if room is None:
            return
        room.watchers.discard(conn)
        self._release_if_idle(name, room)

    def _release_if_idle(self, name: str, room: Room) -> None:
        """Forget a room nobody here watches any more, once no gap fill runs."""
        if room.watchers or room.filling or room.held:
            return
        if self.rooms.get(name) is room:
            del self.rooms[name]
            self._track(asyncio.ensure_future(self._unfollow(name)))

    async def _unfollow(self, name: str) -> None:
        if name in self.rooms or name in self._opening:
            return  # somebody joined again meanwhile
        with contextlib.suppress(ParleyError):
            await self.store.fanout.unfollow(name)

    # Fan-out: the hot path.

    def _on_entry(self, entry: Entry, epoch: str) -> None:
        room = self.rooms.get(entry.room)
        if room is None:
            early = self._announced_early.get(entry.room)
            if early is not None:
                early.append((entry, epoch))
            return
        if self._feed_one(room, entry.room, entry, epoch).fill_after is not None:
            self._start_fill(entry.room, room)

    def _broadcast(self, room: Room, event: dict[str, Any]) -> None:
        if room.held:
            for events in room.held.values():
                events.append(event)
        frames: dict[Codec, bytes] = {}
        write = self._write
        self.delivered += len(room.watchers)
        for conn in room.watchers:
            frame = frames.get(conn.codec)
            if frame is None:
                frame = frames[conn.codec] = conn.codec.frame(event)
            write(conn, frame)

    def _on_ephemeral(self, name: str, event: dict[str, Any]) -> None:
        """Typing or presence, from any hub: to this hub's watchers of the room,
        except the connections of the member it is about.

        Typing and presence are the first things a slow client goes without:
        a connection already lagging (``TYPING_LAG_FRACTION``) is skipped, not
        closed; durable events are never skipped (over the bound: 4008).
        """
        if name == RESTRICTIONS_ROOM:
            self._heard_restriction(event)
            return
        room = self.rooms.get(name)
        if room is None:
            return
        about = event.get("user_id")
        lag = self.config.send_buffer_bytes // TYPING_LAG_FRACTION
        frames: dict[Codec, bytes] = {}
        for conn in room.watchers:
            if conn.principal.user_id == about:
                continue
            if conn.transport.get_write_buffer_size() > lag:
                continue
            frame = frames.get(conn.codec)
            if frame is None:
                frame = frames[conn.codec] = conn.codec.frame(event)
            self._write(conn, frame)
        if about is not None and contradicts(self, name, event):
            self._track(asyncio.ensure_future(announce(self, name, about, online=True)))

    def _write(self, conn: Conn, frame: bytes) -> None:
        """Queue a frame for ``conn``; the frames of one loop iteration leave together.

        A poster's own event and its reply, or several events of a busy room,
        then cost one ``send`` instead of one each. Order is kept: frames leave
        in the order they were queued, and ``_close`` sends them first.
        """
        if conn.closing:
            return
        pending = conn.pending
        if pending is not None:
            pending.append(frame)
            return
        conn.pending = [frame]
        if not self._unflushed:
            asyncio.get_running_loop().call_soon(self._flush)
        self._unflushed.append(conn)

    def _flush(self) -> None:
        conns, self._unflushed = self._unflushed, []
        for conn in conns:
            self._send_pending(conn)

    def _send_pending(self, conn: Conn) -> None:
        frames = conn.pending
        if frames is None:
            return
        conn.pending = None
        if conn.closing or conn.ws.protocol.state is not State.OPEN:
            return
        transport = conn.transport
        if transport.get_write_buffer_size() > self.config.send_buffer_bytes:
            log.warning("slow consumer closed user=%s", conn.principal.user_id)
            self._close(conn, CloseCode.slow_consumer, "send buffer full; resume with since")
            return
        transport.write(frames[0] if len(frames) == 1 else b"".join(frames))

    def _close(self, conn: Conn, code: int, reason: str) -> None:
        """Queue a close frame behind what the client has yet to read; abort later.

        ``ServerConnection.close`` would wait for the send buffer to drain, which
        a client that stopped reading never lets happen.
        """
        if conn.closing:
            return
        self.closes[code] = self.closes.get(code, 0) + 1
        self._send_pending(conn)  # what was queued before the close goes first
        conn.closing = True
        ws = conn.ws
        if ws.protocol.state is State.OPEN:
            ws.protocol.send_close(code, reason)
            ws.send_data()
        asyncio.get_running_loop().call_later(CLOSE_TIMEOUT, self._abort, conn)

    @staticmethod
    def _abort(conn: Conn) -> None:
        if conn.ws.protocol.state is not State.CLOSED:
            conn.transport.abort()

    def _start_fill(self, name: str, room: Room) -> None:
        if not room.filling:
            room.filling = True
            self._track(asyncio.ensure_future(self._fill(name, room)))

    async def _fill(self, name: str, room: Room) -> None:
        """Read what the fan-out missed from the log, in order, then deliver it."""
        try:
            head = await self.store.head(name)
            while room.feed.holding or room.feed.last_seq < head.seq:
                entries = await self.store.entries_after(name, room.feed.last_seq, FILL_BATCH)
                if not entries:
                    break
                # Read after the entries: their epoch is at least this recent.
                head = await self.store.head(name)
                for entry in entries:
                    self._feed_one(room, name, entry, head.epoch)
        except ParleyError as exc:
            log.warning("gap fill failed room=%s: %s", name, exc.message)
        finally:
            room.filling = False
            self._release_if_idle(name, room)

    def _feed_one(self, room: Room, name: str, entry: Entry, epoch: str) -> FeedStep:
        """Pass one entry through the room's feed and deliver what it lets out."""
        step = room.feed.accept(entry, epoch)
        if step.reset:
            self.count_reload(name, "reset", len(room.watchers))
            self._broadcast(room, {"event": "reload", "room": name, "epoch": epoch})
        for ready in step.ready:
            self.lag.observe(self.clock.now() - ready.ts * 0.001)
            self._broadcast(room, ready.to_event())
            if ready.kind == "close" and not name.startswith("order:"):
                # The backend closed the room: its watchers are let go on every hub.
                # (An ended order's room stays readable: only writes are refused.)
                for conn in list(room.watchers):
                    self.unwatch(conn, name)
        return step

    def count_reload(self, name: str, reason: str, watchers: int) -> None:
        """Count ``reload`` told to ``watchers`` connections of ``name``, by reason.

        ``too_many`` (a client away for longer than ``resume_max_missed``
        entries) and ``epoch`` (a client resuming a log that was replaced) are
        what a reload is for; any other reason means the hub could not replay
        exactly what it stored, so it is logged.
        """
        self.reloads[reason] = self.reloads.get(reason, 0) + watchers
        if reason not in ("too_many", "epoch"):
            log.info("reload room=%s reason=%s watchers=%d", name, reason, watchers)

    def _on_resync(self) -> None:
        """The fan-out may have lost announcements: check every followed room."""
        self._track(asyncio.ensure_future(self._resync()))
        self._track(asyncio.ensure_future(self._load_restrictions()))

    # The moderators' restrictions, from any hub.

    async def _load_restrictions(self) -> None:
        try:
            found = await self.store.restrictions(to_ms(self.clock.now()))
        except ParleyError as exc:  # the fan-out's next resync loads them again
            log.warning("restrictions not loaded: %s", exc.message)
            return
        self._disconnect_members(set(self.restrictions.replace_all(found)))

    def _heard_restriction(self, event: dict[str, Any]) -> None:
        suspended = self.restrictions.heard(event)
        if suspended is not None:
            self._disconnect_members({suspended})

    def _disconnect_members(self, user_ids: set[str]) -> None:
        if user_ids:  # one pass over the connections, however many members
            for conn in [c for c in self.conns if c.principal.user_id in user_ids]:
                self._close_if_suspended(conn)

    def _close_if_suspended(self, conn: Conn) -> None:
        try:
            self.restrictions.check_connect(conn.principal.user_id, to_ms(self.clock.now()))
        except ParleyError:
            log.info("suspended member disconnected user=%s", conn.principal.user_id)
            self._close(conn, CloseCode.suspended, "suspended by the moderators")

    async def _resync(self) -> None:
        for name, room in list(self.rooms.items()):
            # Before the read: what arrives while it is on its way is newer than it.
            mark = room.feed.mark()
            try:
                head = await self.store.head(name)
            except ParleyError:
                return  # the fan-out calls again once the store is back
            step = room.feed.resync(mark, head.epoch, head.seq)
            if step.reset:
                log.warning(
                    "room log reset room=%s epoch=%s->%s seq=%d->%d",
                    name, mark.epoch, head.epoch, mark.last_seq, head.seq,
                )  # fmt: skip
                self.count_reload(name, "reset", len(room.watchers))
                self._broadcast(room, {"event": "reload", "room": name, "epoch": head.epoch})
            elif step.fill_after is not None:
                self._start_fill(name, room)

    def _track(self, task: asyncio.Future[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
