"""The Redis fan-out: one pub/sub connection per hub, that notices what it misses.

Hubs follow the rooms their members watch; each appended entry arrives here
from the room's channel (``SSUBSCRIBE`` on Redis 7+, else ``SUBSCRIBE``) and is
passed to the hub's listener. Every drop of the connection ends in a resync
request, so a lost announcement is never a silently lost entry.

The channel carries two kinds of message, told apart by their first byte:
an entry is a msgpack array of 3, ``[epoch, seq, body]`` (``ENTRY_MARK``);
anything else is an ephemeral event, a msgpack map (typing, presence). Both
on one channel, so a room's events arrive in the order they were published.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import secrets
from typing import TYPE_CHECKING, Any, Final

import msgpack
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ResponseError

from parley.server.store.base import Fanout, StoreUnavailable
from parley.server.store.redis_wire import DOWN, cancel_firmly, edge, entry_from_body

if TYPE_CHECKING:
    from parley.server.store.redis import RedisStore

log = logging.getLogger("parley.store.redis")

ENTRY_MARK: Final = b"\x93"  # msgpack fixarray of 3: what the append script publishes
CANARY_ROOM: Final = "canary:"  # + a random id per hub: the channel /readyz sends itself through


class RedisFanout(Fanout):
    """One pub/sub connection per hub: follows rooms, survives reconnects.

    The connection is a bare redis-py ``Connection`` driven here rather than a
    ``PubSub``: ``PubSub`` reconnects and re-subscribes on its own, which is
    exactly the silent gap to avoid. Here every drop (an error, or a silence
    that a PING does not break) ends the connection; the reader then reconnects
    with backoff, re-subscribes every followed room, waits for the
    confirmations and only then calls ``on_resync``, so that the hub's re-read
    of each room's head comes after the point from which it hears the room.
    """

    def __init__(
        self,
        store: RedisStore,
        *,
        ping_interval: float,
        reconnect_min: float,
        reconnect_max: float,
        confirm_timeout: float,
    ) -> None:
        super().__init__()
        self._store = store
        self._ping_interval = ping_interval
        self._reconnect_min = reconnect_min
        self._reconnect_max = reconnect_max
        self._confirm_timeout = confirm_timeout
        self._rooms: dict[bytes, str] = {}  # followed channel -> room
        self._conn: AbstractConnection | None = None
        self._sharded = False
        self._unconfirmed: set[bytes] = set()  # re-subscribed after a reconnect
        self._resync_due = False
        self._confirms: dict[bytes, asyncio.Future[None]] = {}
        # Unsubscribes sent and not yet answered: their answers are not Redis ending
        # a subscription (``ended``), even for a room followed again meanwhile.
        self._leaving: dict[bytes, int] = {}
        self._heard: dict[bytes, tuple[str, int]] = {}  # last (epoch, seq) delivered
        self._echoes: dict[bytes, list[tuple[str, int, asyncio.Future[None]]]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._stopping = False
        self._last_heard = 0.0  # loop time of the last reply on the connection
        self.reconnects = 0  # connections made again after a drop (GET /metrics)
        # Followed like a room on the first canary, so every reconnect subscribes it again.
        self._canary_room = CANARY_ROOM + secrets.token_hex(8)
        self._canary_channel = store._key(self._canary_room, "ch").encode()
        self._canary_channels = {self._canary_channel}  # a cluster's shards add theirs
        self._canaries: dict[str, asyncio.Future[None]] = {}

    @property
    def live(self) -> bool:
        """Connected, every followed room subscribed, and the reader running."""
        return (
            self._reader is not None
            and not self._reader.done()
            and self._conn is not None
            and not self._unconfirmed
        )

    def follows(self, room: str) -> bool:
        return self._store._key(room, "ch").encode() in self._rooms

    async def start(self) -> None:
        conn = await self._connect()
        self._reader = asyncio.create_task(self._run(conn), name="parley-redis-fanout")
        self._reader.add_done_callback(self._reader_stopped)

    def start_in_background(self) -> None:
        """Connect with backoff from the reader; its resync covers the wait."""
        self._resync_due = True
        self._reader = asyncio.create_task(self._run(None), name="parley-redis-fanout")
        self._reader.add_done_callback(self._reader_stopped)

    def new_connection(self) -> AbstractConnection:
        pool = self._store._pool
        assert pool is not None
        return pool.connection_class(**{**pool.connection_kwargs, "client_name": "parley-fanout"})

    def refused(self, error: ResponseError) -> None:
        """Redis answered a subscription with an error (on a cluster: the slot moved)."""
        log.warning("fan-out: Redis refused a subscription: %s", error)

    def ended(self, channel: bytes) -> None:
        """Redis ended a subscription this hub did not end (on a cluster: the slot moved)."""

    def lost(self) -> None:
        """The connection dropped (on a cluster: the shard may have failed over)."""

    async def stop(self) -> None:
        self._stopping = True
        reader = self._reader
        if reader is not None:
            await cancel_firmly(reader)  # the flag ends the loop if redis-py eats the cancel
            self._reader = None
        if self._conn is not None:
            await self._dropped(self._conn)

    async def follow(self, room: str) -> None:
        channel = self._store._key(room, "ch").encode()
        if channel in self._rooms:
            return
        self._rooms[channel] = room
        conn = self._conn
        # While disconnected the reconnect subscribes the room, then resyncs.
        if conn is None or not conn.is_connected:
            return
        confirmed = self._confirms.get(channel)
        if confirmed is None:
            confirmed = self._confirms[channel] = asyncio.get_running_loop().create_future()
        try:
            await conn.send_command(self._command("SUBSCRIBE"), channel, check_health=False)
            # Until Redis confirms, an entry appended now could be missed, and
            # the hub reads the room's head right after follow() returns.
            await asyncio.wait_for(asyncio.shield(confirmed), self._confirm_timeout)
        except TimeoutError:
            log.warning("fan-out: no confirmation for %s; reconnecting", room)
            await conn.disconnect(nowait=True)
        except DOWN:
            pass  # the reader sees the same broken connection and reconnects

    async def unfollow(self, room: str) -> None:
        channel = self._store._key(room, "ch").encode()
        if self._rooms.pop(channel, None) is None:
            return
        self._heard.pop(channel, None)
        self._store._forget(room)
        for _, _, echo in self._echoes.pop(channel, []):
            if not echo.done():
                echo.set_result(None)
        # Late messages for the room are dropped by the reader anyway.
        await self._unsubscribe(channel)

    async def _unsubscribe(self, channel: bytes) -> None:
        conn = self._conn
        if conn is not None and conn.is_connected:
            self._leaving[channel] = self._leaving.get(channel, 0) + 1
            with contextlib.suppress(*DOWN):
                await conn.send_command(self._command("UNSUBSCRIBE"), channel, check_health=False)

    async def wait_echo(self, room: str, epoch: str, seq: int, timeout: float) -> None:
        """Wait until the reader has delivered ``seq`` of a followed room.

        So that an append returns after its own hub heard it, as with the
        embedded store. Bounded: the entry is stored whatever happens here.
        """
        channel = self._store._key(room, "ch").encode()
        if channel not in self._rooms or not self.live:
            return
        heard_epoch, heard_seq = self._heard.get(channel, ("", 0))
        if heard_epoch == epoch and heard_seq >= seq:
            return
        echo = asyncio.get_running_loop().create_future()
        waiting = self._echoes.setdefault(channel, [])
        waiting.append((epoch, seq, echo))
        try:
            await asyncio.wait_for(echo, timeout)
        except TimeoutError:
            log.debug("fan-out: %s seq %d not heard back in %.1fs", room, seq, timeout)
        finally:
            with contextlib.suppress(ValueError):
                waiting.remove((epoch, seq, echo))

    async def canary(self, timeout: float, room: str | None = None) -> None:
        """Publish on this hub's canary channel and wait to hear it back (``/readyz``).

        Proves the whole path an entry takes: Redis takes the publish, still
        counts this hub's subscription, and the reader gets the message. Raises
        ``StoreUnavailable`` saying which part failed; waits ``timeout`` at most
        for the echo (the publish itself is bounded by the socket timeout).
        """
        room = room or self._canary_room
        channel = self._store._key(room, "ch").encode()
        self._canary_channels.add(channel)
        await self.follow(room)  # at once unless this is the first canary
        token = secrets.token_hex(8)
        heard = self._canaries[token] = asyncio.get_running_loop().create_future()
        try:
            payload = msgpack.packb({"canary": token})  # a map, like ephemeral events
            client = self._store._client
            with edge():
                if self._sharded:
                    receivers = await client.spublish(channel, payload)
                else:
                    receivers = await client.publish(channel, payload)
            if not receivers:
                raise StoreUnavailable("the pub/sub canary has no subscriber: the hub is deaf")
            try:
                await asyncio.wait_for(heard, timeout)
            except TimeoutError:
                raise StoreUnavailable(
                    f"the pub/sub canary did not come back within {timeout:g}s"
                ) from None
        finally:
            del self._canaries[token]

    async def publish_ephemeral(self, room: str, event: dict[str, Any]) -> None:
        channel = self._store._key(room, "ch")
        payload = msgpack.packb(event)  # a map: never starts with ENTRY_MARK
        client = self._store._client
        with edge():
            if self._sharded:
                await client.spublish(channel, payload)
            else:
                await client.publish(channel, payload)

    def _command(self, name: str) -> str:
        return "S" + name if self._sharded else name

    async def _connect(self) -> AbstractConnection:
        conn = self.new_connection()
        try:
            await conn.connect()  # type: ignore[no-untyped-call]
            self._sharded = await self._store._on_fanout_connect()
            channels = list(self._rooms)
            self._conn = conn
            self._unconfirmed = set(channels)
            for channel in channels:
                await conn.send_command(self._command("SUBSCRIBE"), channel, check_health=False)
        except BaseException:
            await self._dropped(conn)
            raise
        return conn

    async def _run(self, conn: AbstractConnection | None) -> None:
        failures = 0
        while not self._stopping:
            if conn is None:
                try:
                    conn = await self._connect()
                except DOWN as exc:
                    failures += 1
                    delay = self._backoff(failures)
                    log.debug(
                        "fan-out: reconnect %d failed (%s); next in %.2fs", failures, exc, delay
                    )
                    await asyncio.sleep(delay)
                    continue
                log.info("fan-out: reconnected after %d failed attempts", failures)
                self.reconnects += 1
                failures = 0
                self._resync_due = True
                self._maybe_resync()
            try:
                await self._read(conn)
            except DOWN as exc:
                log.warning("fan-out: connection lost (%s); reconnecting", exc)
                self.lost()
            finally:
                await self._dropped(conn)
            conn = None

    def _backoff(self, failures: int) -> float:
        ceiling = min(self._reconnect_max, self._reconnect_min * 2 ** (failures - 1))
        # Jitter spreads the hubs' reconnects after Redis comes back.
        return random.uniform(ceiling / 2, ceiling)

    async def _read(self, conn: AbstractConnection) -> None:
        loop = asyncio.get_running_loop()
        self._last_heard = loop.time()
        watchdog = asyncio.create_task(self._watch(conn), name="parley-redis-fanout-ping")
        try:
            while True:
                # No read timeout here: on Python 3.11 a timeout that expires
                # as the connection fails can leave the task with a stray
                # cancellation. The watchdog ends a silent connection instead.
                # push_request: on RESP3 (redis-py's default) messages are pushes.
                try:
                    reply = await conn.read_response(timeout=math.inf, push_request=True)
                except ResponseError as exc:  # an error reply, not a broken connection
                    self._last_heard = loop.time()
                    self.refused(exc)
                    continue
                self._last_heard = loop.time()
                if isinstance(reply, list) and len(reply) >= 3:
                    self._dispatch(reply)
        finally:
            watchdog.cancel()

    async def _watch(self, conn: AbstractConnection) -> None:
        """PING a quiet connection; cut one that stays silent.

        A half-dead TCP connection (Redis host gone, a NAT forgot us) reads
        nothing and errors nowhere; cutting it makes the reader reconnect.
        """
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._ping_interval)
            silent = loop.time() - self._last_heard
            if silent >= 2 * self._ping_interval:
                log.warning("fan-out: no answer to PING for %.1fs; reconnecting", silent)
                await conn.disconnect(nowait=True)
                return
            if not conn.is_connected:
                return  # the reader is already on it; a send would reconnect it
            if silent >= self._ping_interval:
                with contextlib.suppress(*DOWN):
                    await conn.send_command("PING", check_health=False)

    def _dispatch(self, reply: list[Any]) -> None:
        kind = reply[0]
        if kind in (b"message", b"smessage"):
            self._announced(reply[1], reply[2])
        elif kind in (b"subscribe", b"ssubscribe"):
            channel = reply[1]
            confirmed = self._confirms.pop(channel, None)
            if confirmed is not None and not confirmed.done():
                confirmed.set_result(None)
            if channel in self._unconfirmed:
                self._unconfirmed.discard(channel)
                self._maybe_resync()
        elif kind in (b"unsubscribe", b"sunsubscribe"):
            channel = reply[1]
            leaving = self._leaving.pop(channel, 0)
            if leaving > 1:
                self._leaving[channel] = leaving - 1
            if not leaving:
                self.ended(channel)

    def _announced(self, channel: bytes, payload: bytes) -> None:
        room = self._rooms.get(channel)
        if room is None:
            return  # unfollowed while the message was on its way
        if not payload.startswith(ENTRY_MARK):
            self._ephemeral(room, channel, payload)
            return
        try:
            epoch, seq, body = msgpack.unpackb(payload)
            entry = entry_from_body(room, seq, body, None, None)
        except (ValueError, TypeError):
            log.warning("fan-out: undecodable message on %r; ignored", channel)
            return
        self._heard[channel] = (epoch, seq)
        self._store._saw(room, epoch, seq)
        if self.listener is not None:
            self.listener(entry, epoch)
        for want_epoch, want_seq, echo in self._echoes.get(channel, ()):
            if want_epoch == epoch and want_seq <= seq and not echo.done():
                echo.set_result(None)

    def _ephemeral(self, room: str, channel: bytes, payload: bytes) -> None:
        try:
            event = msgpack.unpackb(payload)
        except (ValueError, TypeError):
            event = None
        if not isinstance(event, dict):
            log.warning("fan-out: undecodable event on %r; ignored", channel)
            return
        if channel in self._canary_channels:
            heard = self._canaries.get(event.get("canary"))  # type: ignore[arg-type]
            if heard is not None and not heard.done():
                heard.set_result(None)
            return
        if self.ephemeral_listener is not None:
            self.ephemeral_listener(room, event)

    def _maybe_resync(self) -> None:
        if self._resync_due and not self._unconfirmed:
            self._resync_due = False
            log.info("fan-out: resyncing %d rooms", len(self._rooms))
            if self.on_resync is not None:
                self.on_resync()

    async def _dropped(self, conn: AbstractConnection) -> None:
        if self._conn is conn:
            self._conn = None
        self._unconfirmed = set()
        self._leaving.clear()  # their answers will not come
        # Nobody waits on a connection that is gone: the resync covers it.
        for future in self._confirms.values():
            if not future.done():
                future.set_result(None)
        self._confirms.clear()
        for waiting in self._echoes.values():
            for _, _, echo in waiting:
                if not echo.done():
                    echo.set_result(None)
        with contextlib.suppress(*DOWN):
            await conn.disconnect(nowait=True)

    def _reader_stopped(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("fan-out reader stopped; the hub is deaf", exc_info=task.exception())
