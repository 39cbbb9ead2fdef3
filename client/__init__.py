"""An asyncio client for Parley's WebSocket protocol v1 (on ``websockets``).

    async with await ParleyClient.connect("ws://127.0.0.1:8700/", token) as client:
        await client.subscribe("listing:42")
        await client.post("listing:42", "Is it still available?")
        async for event in client.events():
            ...

Replies are matched to requests by id; events arrive through ``events()`` or
``next_event()``. With ``reconnect=True`` (the default) a dropped connection is
re-established with backoff and every room is re-subscribed with ``since`` =
the last ``seq`` seen, so what was missed arrives as ordinary events; if the
hub answers ``reload`` the client yields a ``{"event": "reload"}`` event and
the application should re-read history.

``token`` is a string, or a callable returning one (or an awaitable of one),
called again for every reconnect so that an expired token can be renewed. A
reconnect the hub refuses (``unauthorized``, ``conflict``, close codes
4001-4003) ends in a ``{"event": "closed", "code", "reason", "error"}`` event
when the token is a plain string; with a callable it is tried again.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import Any, Final, TypeAlias

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from parley.protocol.codec import CODECS, JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL, Codec
from parley.protocol.errors import CloseCode, ErrorCode, ParleyError

__all__ = ["ConnectionLost", "ParleyClient", "ParleyError", "TokenSource"]

TokenSource: TypeAlias = str | Callable[[], str | Awaitable[str]]
"""A token, or what makes a fresh one (called for every connection)."""

# Refusals no retry with the same token can change.
FATAL_ERRORS: Final = frozenset({ErrorCode.unauthorized, ErrorCode.conflict})
# A room a resubscribe is refused: it went away, or is no longer this member's.
GONE_ERRORS: Final = frozenset({ErrorCode.not_found, ErrorCode.forbidden})
# 4002 (no connect frame in time) is not among them: a hub too busy to read the
# frame in time may well read the next one.
FATAL_CLOSES: Final = frozenset({CloseCode.auth_failed, CloseCode.too_many_errors})

SUSPENDED = 4010  # the moderators suspended the member: reconnecting is refused until it ends


class ConnectionLost(Exception):
    """The connection closed and the client does not (or could not) reconnect."""

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"connection closed ({code}): {reason}")
        self.code = code
        self.reason = reason


def _close_of(exc: ConnectionClosed) -> tuple[int | None, str]:
    frame = exc.rcvd or exc.sent
    return (frame.code, frame.reason) if frame is not None else (None, "")


class ParleyClient:
    def __init__(
        self,
        url: str,
        token: TokenSource,
        *,
        encoding: str = "json",
        reconnect: bool = True,
        max_backoff: float = 5.0,
        request_timeout: float = 10.0,
    ) -> None:
        self.url = url
        self.token = token
        subprotocol = {"json": JSON_SUBPROTOCOL, "msgpack": MSGPACK_SUBPROTOCOL}[encoding]
        self.codec: Codec = CODECS[subprotocol]
        self.reconnect = reconnect
        self.max_backoff = max_backoff
        self.request_timeout = request_timeout
        self.user: dict[str, Any] = {}
        self.scope: str | None = None  # the one room a session token from an e-mail link opens
        # room -> (epoch, last seq seen); what a reconnect resumes from.
        self.positions: dict[str, tuple[str, int]] = {}
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._subscribes: set[int] = set()  # request ids of subscribes awaiting replies
        self._events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._stash: list[dict[str, Any]] = []  # passed over by next_event(room=...)
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._resuming: asyncio.Task[None] | None = None  # one reconnect at a time
        self._closed = False
        self.close_code: int | None = None
        self.close_reason = ""

    @classmethod
    async def connect(cls, url: str, token: TokenSource, **options: Any) -> ParleyClient:
        client = cls(url, token, **options)
        await client._open()
        return client

    async def __aenter__(self) -> ParleyClient:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        self._closed = True
        if self._resuming is not None:
            self._resuming.cancel()
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    # Requests.

    async def request(self, op: str, **fields: Any) -> dict[str, Any]:
        """Send one request and return its ``result``; raise ``ParleyError`` on ``error``."""
        if self._ws is None:
            raise ConnectionLost(self.close_code, "not connected")
        rid = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[rid] = future
        if op == "subscribe":
            self._subscribes.add(rid)
        try:
            await self._ws.send(
                self.codec.encode({"id": rid, "op": op, **fields}), text=self.codec.text_frames
            )
            reply = await asyncio.wait_for(future, self.request_timeout)
        except ConnectionClosed as exc:
            raise ConnectionLost(*_close_of(exc)) from None
        finally:
            self._pending.pop(rid, None)
        if "error" in reply:
            error = reply["error"]
            raise ParleyError(error["code"], error["message"], error.get("details"))
        result: dict[str, Any] = reply["result"]
        return result

    async def subscribe(self, room: str, since: int | None = None) -> dict[str, Any]:
        """Watch ``room``; with ``since``, what was missed after it arrives as events."""
        fields: dict[str, Any] = {"room": room}
        known = self.positions.get(room)
        if since is not None:
            fields["since"] = since
            if known is not None:
                fields["epoch"] = known[0]
        return await self.request("subscribe", **fields)

    async def unsubscribe(self, room: str) -> dict[str, Any]:
        self.positions.pop(room, None)
        return await self.request("unsubscribe", room=room)

    async def post(self, room: str, text: str, client_msg_id: str | None = None) -> dict[str, Any]:
        """Post; retrying with the same ``client_msg_id`` never stores it twice."""
        cmid = client_msg_id or uuid.uuid4().hex
        return await self.request("post", room=room, text=text, client_msg_id=cmid)

    async def history(
        self, room: str, before: int | None = None, limit: int = 50
    ) -> dict[str, Any]:
        fields: dict[str, Any] = {"room": room, "limit": limit}
        if before is not None:
            fields["before"] = before
        return await self.request("history", **fields)

    async def edit(self, room: str, seq: int, text: str) -> dict[str, Any]:
        return await self.request("edit", room=room, seq=seq, text=text)

    async def delete(self, room: str, seq: int) -> dict[str, Any]:
        return await self.request("delete", room=room, seq=seq)

    async def read(self, room: str, seq: int) -> dict[str, Any]:
        """Mark an order room read up to ``seq``, on every device of this member."""
        return await self.request("read", room=room, seq=seq)

    async def conversations(
        self, role: str, before: int | None = None, limit: int = 20
    ) -> dict[str, Any]:
        """My orders: ``role`` is ``sales`` or ``purchases``, newest order first."""
        fields: dict[str, Any] = {"role": role, "limit": limit}
        if before is not None:
            fields["before"] = before
        return await self.request("conversations", **fields)

    async def typing(self, room: str) -> bool:
        """Tell an order room's other party that this member is typing; ``False``
        when the hub skipped it (sent too often): nothing to retry."""
        return bool((await self.request("typing", room=room))["sent"])

    # Offers (R5-R7).

    async def offers_enable(self, listing: str, enabled: bool = True) -> dict[str, Any]:
        return await self.request("offers_enable", listing=listing, enabled=enabled)

    async def offer_make(self, listing: str, amount: int) -> dict[str, Any]:
        """Offer ``amount`` minor units; the result's ``offer`` is the negotiation."""
        return (await self.request("offer_make", listing=listing, amount=amount))["offer"]  # type: ignore[no-any-return]

    async def offer_respond(
        self, offer: str, action: str, amount: int | None = None
    ) -> dict[str, Any]:
        fields: dict[str, Any] = {"offer": offer, "action": action}
        if amount is not None:
            fields["amount"] = amount
        return (await self.request("offer_respond", **fields))["offer"]  # type: ignore[no-any-return]

    async def likers(
        self, listing: str, before: int | None = None, limit: int = 50
    ) -> dict[str, Any]:
        fields: dict[str, Any] = {"listing": listing, "limit": limit}
        if before is not None:
            fields["before"] = before
        return await self.request("likers", **fields)

    async def offer_to_likers(
        self, listing: str, amount: int, to: list[str] | str = "all"
    ) -> dict[str, Any]:
        return await self.request("offer_to_likers", listing=listing, amount=amount, to=to)

    async def offers(
        self, listing: str | None = None, state: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        fields: dict[str, Any] = {"limit": limit}
        if listing is not None:
            fields["listing"] = listing
        if state is not None:
            fields["state"] = state
        return (await self.request("offers", **fields))["offers"]  # type: ignore[no-any-return]

    # A member's own choices: blocks and mutes.

    async def block(self, user: str) -> dict[str, Any]:
        """Block a member: their @mentions and messages notify nothing, no offers between."""
        return await self.request("block", user=user)

    async def unblock(self, user: str) -> dict[str, Any]:
        return await self.request("unblock", user=user)

    async def blocks(self) -> list[dict[str, Any]]:
        """The members this member blocks (``user``, ``since``), most recent first."""
        return (await self.request("blocks"))["blocks"]  # type: ignore[no-any-return]

    async def mute(self, room: str) -> dict[str, Any]:
        """No mention or message notifications from ``room``; its events still arrive."""
        return await self.request("mute", room=room)

    async def unmute(self, room: str) -> dict[str, Any]:
        return await self.request("unmute", room=room)

    async def mutes(self) -> list[dict[str, Any]]:
        return (await self.request("mutes"))["mutes"]  # type: ignore[no-any-return]

    async def report(
        self, room: str, seq: int, reason: str, note: str | None = None
    ) -> dict[str, Any]:
        """Report another member's message to the moderators: ``{report, reason, duplicate}``."""
        fields: dict[str, Any] = {"room": room, "seq": seq, "reason": reason}
        if note is not None:
            fields["note"] = note
        return await self.request("report", **fields)

    # Events.

    async def notifications(self, before: int | None = None, limit: int = 50) -> dict[str, Any]:
        fields: dict[str, Any] = {"limit": limit}
        if before is not None:
            fields["before"] = before
        return await self.request("notifications", **fields)

    async def notifications_read(self, up_to: int) -> dict[str, Any]:
        return await self.request("notifications_read", up_to=up_to)

    @property
    def inbox(self) -> str:
        """The member's own room, ``user:<id>``: notifications and read marks."""
        return f"user:{self.user['id']}"

    async def next_event(self, timeout: float = 5.0, *, room: str | None = None) -> dict[str, Any]:
        """The next event (of ``room`` only, if given: others stay queued);
        ``TimeoutError`` if none comes in ``timeout`` seconds."""
        if room is None:
            if self._stash:
                return self._stash.pop(0)
            return await asyncio.wait_for(self._events.get(), timeout)
        for i, event in enumerate(self._stash):
            if event.get("room") == room:
                return self._stash.pop(i)
        async with asyncio.timeout(timeout):
            while True:
                event = await self._events.get()
                if event.get("room") == room:
                    return event
                self._stash.append(event)

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        while True:
            yield await self._events.get()

    def pending_events(self) -> list[dict[str, Any]]:
        """Events received and not yet taken, without waiting."""
        out, self._stash = self._stash, []
        while not self._events.empty():
            out.append(self._events.get_nowait())
        return out

    # Connection.

    async def _token(self) -> str:
        if isinstance(self.token, str):
            return self.token
        made = self.token()
        return await made if inspect.isawaitable(made) else made

    async def _open(self) -> None:
        token = await self._token()
        ws = await ws_connect(
            self.url,
            subprotocols=[self.codec.subprotocol],  # type: ignore[list-item]
            compression=None,
            max_size=None,
            open_timeout=10,
        )
        rid = next(self._ids)
        connect: dict[str, Any] = {"id": rid, "op": "connect", "token": token}
        inbox = self.positions.get(self.inbox) if self.user else None
        if inbox is not None:  # resume the inbox exactly where this client left it
            connect["epoch"], connect["since"] = inbox
        try:
            # The hub may close before the connect frame is read (4002 when it came
            # too late): that is a connection lost, to retry, like a close after it.
            await ws.send(self.codec.encode(connect), text=self.codec.text_frames)
            reply = self.codec.decode(await asyncio.wait_for(ws.recv(), self.request_timeout))
        except ConnectionClosed as exc:
            raise ConnectionLost(*_close_of(exc)) from None
        except TimeoutError:
            await ws.close()
            raise
        if "error" in reply:
            await ws.close()
            error = reply["error"]
            raise ParleyError(error["code"], error["message"], error.get("details"))
        self.user = reply["result"]["user"]
        self.scope = reply["result"].get("scope")
        if reply["result"].get("inbox") is not None:  # none for a session from an e-mail link
            self._on_joined(reply["result"]["inbox"])
        self._ws = ws
        self._reader = asyncio.create_task(self._read(ws))

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for frame in ws:
                message = self.codec.decode(frame)
                if "event" not in message:
                    self._on_reply(message)
                    continue
                self._track(message)
                self._events.put_nowait(message)
        except ConnectionClosed:
            pass
        self.close_code = ws.close_code
        self.close_reason = ws.close_reason or ""
        self._ws = None
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionLost(self.close_code, self.close_reason))
                future.exception()  # the waiting request re-raises it; don't log it twice
        if self.reconnect and not self._closed and self.close_code != SUSPENDED:
            # A drop while a reconnect runs is that reconnect's to handle: two at
            # once would subscribe the same rooms twice and repeat what was missed.
            if self._resuming is None:
                self._resuming = asyncio.get_running_loop().create_task(self._resume())
        else:
            self._events.put_nowait(
                {"event": "closed", "code": self.close_code, "reason": self.close_reason}
            )

    def _on_reply(self, reply: dict[str, Any]) -> None:
        rid = reply.get("id")
        if not isinstance(rid, int):
            return
        result = reply.get("result")
        if rid in self._subscribes and isinstance(result, dict):
            self._on_joined(result)
        self._subscribes.discard(rid)
        future = self._pending.get(rid)
        if future is not None and not future.done():
            future.set_result(reply)

    def _on_joined(self, result: dict[str, Any]) -> None:
        """Queue what was missed before any later live event; resume from here next time."""
        room = result["room"]
        for event in result.get("missed", ()):
            self._events.put_nowait(event)
        self.positions[room] = (result["epoch"], result["seq"])
        if result.get("reload"):
            self._events.put_nowait({"event": "reload", "room": room, "epoch": result["epoch"]})

    def _track(self, event: dict[str, Any]) -> None:
        room, seq = event.get("room"), event.get("seq")
        if isinstance(room, str) and isinstance(seq, int) and room in self.positions:
            epoch, last = self.positions[room]
            self.positions[room] = (epoch, max(last, seq))

    async def _resume(self) -> None:
        """Reconnect with backoff, then subscribe again from the last seq seen;
        again from the start if the new connection drops meanwhile."""
        delay = 0.05
        try:
            for _ in range(1000):  # bounded; about an hour at the maximum backoff
                if self._closed:
                    return
                try:
                    await self._open()
                except ParleyError as exc:
                    if exc.code in FATAL_ERRORS and isinstance(self.token, str):
                        self._give_up(CloseCode.auth_failed, exc.message, exc.code)
                        return
                except ConnectionLost as exc:
                    if exc.code in FATAL_CLOSES and isinstance(self.token, str):
                        self._give_up(exc.code, exc.reason, None)
                        return
                except (OSError, InvalidHandshake, InvalidStatus, TimeoutError):
                    pass
                else:
                    ws = self._ws
                    if await self._resubscribe() and ws is not None and self._ws is ws:
                        self._events.put_nowait({"event": "resumed"})
                        return
                    if ws is not None and self._ws is ws:
                        await ws.close()  # not every room answered: start again
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, self.max_backoff)
            self._give_up(None, "gave up reconnecting", None)
        finally:
            self._resuming = None

    async def _resubscribe(self) -> bool:
        """Every room again, from the last seq seen; ``False`` once the connection dropped."""
        for room in list(self.positions):
            if room == self.inbox:
                continue  # resumed by connect itself
            position = self.positions.get(room)
            if position is None:
                continue
            try:
                await self.subscribe(room, since=position[1])
            except (ConnectionLost, TimeoutError):
                return False
            except ParleyError as exc:
                if exc.code not in GONE_ERRORS:
                    return False  # unavailable, rate_limited...: try again later
                self.positions.pop(room, None)  # closed, or no longer this member's
        return True

    def _give_up(self, code: int | None, reason: str, error: str | None) -> None:
        self._closed = True
        self.close_code, self.close_reason = code, reason
        event: dict[str, Any] = {"event": "closed", "code": code, "reason": reason}
        if error is not None:
            event["error"] = error
        self._events.put_nowait(event)
