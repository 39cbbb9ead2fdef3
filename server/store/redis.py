"""The Redis store: state shared by many hub processes, and fan-out between them.

Key layout (``parley`` is ``key_prefix``; ``{room}`` is a Cluster hash tag, so a
room's keys and its channel live on one slot)::

    parley:{room}:seq     the room's last seq (INCR)
    parley:{room}:epoch   the log's epoch id
    parley:{room}:log     hash  seq -> entry body (msgpack, without the seq)
    parley:{room}:msgs    zset  seq of each message (comment, system): history pages
    parley:{room}:mod     hash  "t<seq>" -> msgpack [text, edited_ts]; "d<seq>" -> 1
    parley:{room}:idem    hash  "<author id>\\0<client_msg_id>" -> seq
    parley:{room}:ch      the room's channel (SPUBLISH on Redis 7+, else PUBLISH)
    parley:user:<id>  parley:listing:<id>  parley:order:<id>     hashes
    parley:instance       random id of this data set: gone or changed = data lost

An append is one Lua script that checks idempotency, stores the entry, applies
an edit or delete to its target and publishes ``[epoch, seq, body]`` on the
room's channel: stored and announced are one step, in seq order. Each hub has
one pub/sub connection (``RedisFanout``); when it drops, the hub reconnects with
backoff, re-subscribes and asks for a resync, so nothing is lost silently.

Durability is Redis's: ``appendonly yes`` with ``appendfsync always`` makes an
acknowledged append survive a Redis crash; ``everysec`` may lose the last second.
Redis must not evict keys (``maxmemory-policy noeviction``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import secrets
from collections.abc import Iterator
from typing import Any, Final, cast

import msgpack
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import (
    ClusterDownError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.maint_notifications import MaintNotificationsConfig

from protocol.errors import ErrorCode, ParleyError
from server.core.model import (
    AppendResult,
    Author,
    Draft,
    Entry,
    EntryKind,
    Listing,
    ListingId,
    Money,
    Order,
    OrderId,
    RoomHead,
    User,
    UserId,
)
from server.store.base import Fanout, Store, StoreUnavailable

log = logging.getLogger("parley.store.redis")

# BusyLoadingError (Redis replaying its AOF) is a ConnectionError.
_DOWN: Final = (RedisConnectionError, RedisTimeoutError, OSError)
# Replies that mean "not now" rather than "wrong request".
_NOT_NOW: Final = (OutOfMemoryError, ReadOnlyError, TryAgainError, ClusterDownError)
_NOT_NOW_CODES: Final = ("MISCONF", "NOREPLICAS", "BUSY")

_ORDER_FIELDS: Final = ("listing_id", "buyer_id", "seller_id", "status", "created_ts")

# Sets the room's epoch when it has none (first entry, or the data was lost),
# or when the log is behind a seq this hub has already seen with that epoch
# (Redis restored from an older snapshot): old seqs must not be reused silently.
_EPOCH_LUA: Final = """
local epoch = redis.call('GET', KEYS[2])
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
if not epoch or (epoch == ARGV[2] and last < tonumber(ARGV[3])) then
  epoch = ARGV[1]
  redis.call('SET', KEYS[2], epoch)
end
"""

# KEYS seq, epoch, log, msgs, mod, idem
# ARGV new epoch, known epoch, known seq, body, op (m|e|d), target, edit, idem, channel, publish
_APPEND_LUA: Final = f"""
if ARGV[8] ~= '' then
  local seq = redis.call('HGET', KEYS[6], ARGV[8])
  if seq then
    local mod = redis.call('HMGET', KEYS[5], 't' .. seq, 'd' .. seq)
    return {{1, tonumber(seq), redis.call('HGET', KEYS[3], seq), mod[1], mod[2]}}
  end
end
{_EPOCH_LUA}
local seq = redis.call('INCR', KEYS[1])
redis.call('HSET', KEYS[3], seq, ARGV[4])
if ARGV[5] == 'm' then
  redis.call('ZADD', KEYS[4], seq, seq)
elseif ARGV[5] == 'e' then
  redis.call('HSET', KEYS[5], 't' .. ARGV[6], ARGV[7])
elseif ARGV[5] == 'd' then
  redis.call('HSET', KEYS[5], 'd' .. ARGV[6], 1)
end
if ARGV[8] ~= '' then
  redis.call('HSET', KEYS[6], ARGV[8], seq)
end
-- '\\147' starts a msgpack array of 3: [epoch, seq, body]
redis.call(ARGV[10], ARGV[9], '\\147' .. cmsgpack.pack(epoch, seq) .. ARGV[4])
return {{0, seq, epoch}}
"""

# KEYS seq, epoch; ARGV new epoch, known epoch, known seq
_HEAD_LUA: Final = f"""
{_EPOCH_LUA}
return {{last, epoch}}
"""

# KEYS seq, log, msgs, mod; ARGV 'after' after limit | 'before' max-score limit | 'one' seq
# Returns seq, body, edit, deleted for each entry found.
_READ_LUA: Final = """
local seqs = {}
if ARGV[1] == 'after' then
  local last = tonumber(redis.call('GET', KEYS[1]) or '0')
  local after = tonumber(ARGV[2])
  for s = after + 1, math.min(last, after + tonumber(ARGV[3])) do
    seqs[#seqs + 1] = tostring(s)
  end
elseif ARGV[1] == 'before' then
  seqs = redis.call('ZREVRANGEBYSCORE', KEYS[3], ARGV[2], '-inf', 'LIMIT', 0, ARGV[3])
else
  seqs = {ARGV[2]}
end
local out = {}
for _, s in ipairs(seqs) do
  local body = redis.call('HGET', KEYS[2], s)
  if body then
    local mod = redis.call('HMGET', KEYS[4], 't' .. s, 'd' .. s)
    out[#out + 1] = tonumber(s)
    out[#out + 1] = body
    out[#out + 1] = mod[1]
    out[#out + 1] = mod[2]
  end
end
return out
"""

# KEYS order; ARGV the order's fields. Returns {1} when stored, else {0, stored...}.
_PUT_ORDER_LUA: Final = """
local cur = redis.call('HMGET', KEYS[1], 'listing_id', 'buyer_id', 'seller_id', 'status',
                       'created_ts')
if cur[1] then
  return {0, cur[1], cur[2], cur[3], cur[4], cur[5]}
end
redis.call('HSET', KEYS[1], 'listing_id', ARGV[1], 'buyer_id', ARGV[2], 'seller_id', ARGV[3],
           'status', ARGV[4], 'created_ts', ARGV[5])
return {1}
"""

# KEYS order; ARGV status. Returns the order's fields, or nil when there is none.
_SET_ORDER_STATUS_LUA: Final = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  return false
end
redis.call('HSET', KEYS[1], 'status', ARGV[1])
return redis.call('HMGET', KEYS[1], 'listing_id', 'buyer_id', 'seller_id', 'status',
                  'created_ts')
"""


@contextlib.contextmanager
def _edge() -> Iterator[None]:
    """Translate Redis's "cannot answer now" into ``StoreUnavailable``, once."""
    try:
        yield
    except _DOWN as exc:
        raise StoreUnavailable() from exc
    except ResponseError as exc:
        if isinstance(exc, _NOT_NOW) or str(exc).startswith(_NOT_NOW_CODES):
            raise StoreUnavailable() from exc
        raise


_PendingAppend = tuple[list[str], list[Any], "asyncio.Future[Any]"]


def _new_id() -> str:
    return secrets.token_hex(8)


def _text(value: bytes | str) -> str:
    # Replies are bytes (decode_responses is off: entry bodies are msgpack).
    return value if isinstance(value, str) else value.decode()


def _encode_body(draft: Draft) -> bytes:
    author = draft.author
    body = [
        draft.kind,
        draft.text,
        draft.ts,
        None if author is None else author.id,
        None if author is None else author.name,
        draft.client_msg_id,
        draft.target,
        draft.data,
    ]
    return msgpack.packb(body, use_bin_type=True)


def _decode_entry(room: str, seq: int, body: bytes, edit: bytes | None, deleted: Any) -> Entry:
    return _entry(room, seq, msgpack.unpackb(body), edit, deleted)


def _entry(room: str, seq: int, body: list[Any], edit: bytes | None, deleted: Any) -> Entry:
    kind, text, ts, author_id, author_name, client_msg_id, target, data = body
    author = None if author_id is None else Author(UserId(author_id), author_name)
    edited_ts = None
    if edit is not None:
        text, edited_ts = msgpack.unpackb(edit)
    if deleted is not None:
        text = ""
    return Entry(
        room,
        seq,
        cast(EntryKind, kind),
        text,
        ts,
        author,
        client_msg_id,
        target,
        data,
        edited_ts,
        deleted is not None,
    )


def _decode_entries(room: str, flat: list[Any]) -> list[Entry]:
    return [
        _decode_entry(room, int(flat[i]), flat[i + 1], flat[i + 2], flat[i + 3])
        for i in range(0, len(flat), 4)
    ]


def _order(order_id: str, fields: list[Any]) -> Order:
    listing_id, buyer_id, seller_id, status, created_ts = fields
    return Order(
        OrderId(order_id),
        ListingId(_text(listing_id)),
        UserId(_text(buyer_id)),
        UserId(_text(seller_id)),
        _text(status),
        int(created_ts),
    )


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
        self._heard: dict[bytes, tuple[str, int]] = {}  # last (epoch, seq) delivered
        self._echoes: dict[bytes, list[tuple[str, int, asyncio.Future[None]]]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._stopping = False
        self._last_heard = 0.0  # loop time of the last reply on the connection

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

    async def stop(self) -> None:
        self._stopping = True
        reader = self._reader
        if reader is not None:
            # A cancellation can land inside redis-py's own connect or
            # disconnect and be swallowed there; the flag ends the loop then,
            # and the bounded retry makes sure the task is gone.
            for _ in range(100):
                reader.cancel()
                done, _ = await asyncio.wait({reader}, timeout=0.1)
                if done:
                    break
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
        except _DOWN:
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
        conn = self._conn
        if conn is not None and conn.is_connected:
            # Late messages for the room are dropped by the reader anyway.
            with contextlib.suppress(*_DOWN):
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

    def _command(self, name: str) -> str:
        return "S" + name if self._sharded else name

    async def _connect(self) -> AbstractConnection:
        pool = self._store._pool
        conn = pool.connection_class(**{**pool.connection_kwargs, "client_name": "parley-fanout"})
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
                except _DOWN as exc:
                    failures += 1
                    delay = self._backoff(failures)
                    log.debug(
                        "fan-out: reconnect %d failed (%s); next in %.2fs", failures, exc, delay
                    )
                    await asyncio.sleep(delay)
                    continue
                log.info("fan-out: reconnected after %d failed attempts", failures)
                failures = 0
                self._resync_due = True
                self._maybe_resync()
            try:
                await self._read(conn)
            except _DOWN as exc:
                log.warning("fan-out: connection lost (%s); reconnecting", exc)
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
                reply = await conn.read_response(timeout=math.inf, push_request=True)
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
                with contextlib.suppress(*_DOWN):
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

    def _announced(self, channel: bytes, payload: bytes) -> None:
        room = self._rooms.get(channel)
        if room is None:
            return  # unfollowed while the message was on its way
        try:
            epoch, seq, body = msgpack.unpackb(payload)
            entry = _entry(room, seq, body, None, None)
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
        # Nobody waits on a connection that is gone: the resync covers it.
        for future in self._confirms.values():
            if not future.done():
                future.set_result(None)
        self._confirms.clear()
        for waiting in self._echoes.values():
            for _, _, echo in waiting:
                if not echo.done():
                    echo.set_result(None)
        with contextlib.suppress(*_DOWN):
            await conn.disconnect(nowait=True)

    def _reader_stopped(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("fan-out reader stopped; the hub is deaf", exc_info=task.exception())


class RedisStore(Store):
    fanout: RedisFanout

    def __init__(
        self,
        url: str,
        *,
        sharded_pubsub: bool | None = None,
        key_prefix: str = "parley",
        max_connections: int = 64,
        socket_timeout: float = 5.0,
        connect_timeout: float = 2.0,
        ping_interval: float = 5.0,
        reconnect_min: float = 0.05,
        reconnect_max: float = 5.0,
        echo_timeout: float = 1.0,
    ) -> None:
        self._sharded_option = sharded_pubsub
        self._prefix = key_prefix
        self._echo_timeout = echo_timeout
        self._socket_timeout = socket_timeout
        self._pool = BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=socket_timeout,  # waiting for a free connection
            socket_timeout=socket_timeout,
            socket_connect_timeout=connect_timeout,
            socket_keepalive=True,
            # No silent retries: a command that failed after it was sent may
            # have run, and retrying an append could store it twice.
            retry=Retry(NoBackoff(), 0),
            client_name="parley",
            # With these on (redis-py's "auto" on RESP3), the pool skips its
            # check for connections the server closed, and the first commands
            # after a Redis restart fail on stale connections.
            maint_notifications_config=MaintNotificationsConfig(enabled=False),
        )
        self._client = Redis(connection_pool=self._pool)
        self._append = self._client.register_script(_APPEND_LUA)
        self._pending_appends: list[_PendingAppend] = []
        self._append_tasks: set[asyncio.Future[None]] = set()
        self._head = self._client.register_script(_HEAD_LUA)
        self._read = self._client.register_script(_READ_LUA)
        self._put_order = self._client.register_script(_PUT_ORDER_LUA)
        self._set_order_status = self._client.register_script(_SET_ORDER_STATUS_LUA)
        self._instance: bytes | str | None = None
        # The last (epoch, seq) seen of each followed room, to notice a log
        # that went back in time (see _EPOCH_LUA).
        self._seen: dict[str, tuple[str, int]] = {}
        self.fanout = RedisFanout(
            self,
            ping_interval=ping_interval,
            reconnect_min=reconnect_min,
            reconnect_max=reconnect_max,
            confirm_timeout=socket_timeout,
        )

    def _key(self, room: str, part: str) -> str:
        return f"{self._prefix}:{{{room}}}:{part}"

    def _room_keys(self, room: str, *parts: str) -> list[str]:
        return [self._key(room, part) for part in parts]

    async def open(self) -> None:
        with _edge():
            await self._client.ping()
            await self._warn_about_durability()
            await self.fanout.start()

    async def close(self) -> None:
        if self._pending_appends:
            self._send_appends()
        if self._append_tasks:  # appends already sent finish before the pool closes
            await asyncio.wait(set(self._append_tasks), timeout=self._socket_timeout)
        await self.fanout.stop()
        await self._client.aclose()
        await self._pool.aclose()

    async def check(self) -> None:
        with _edge():
            await self._client.ping()
        if not self.fanout.live:
            # Writes would work, but this hub would not hear them: not ready.
            raise StoreUnavailable("the fan-out connection is down; retry later")

    async def _warn_about_durability(self) -> None:
        try:
            config = await self._client.config_get("appendonly")
            config.update(await self._client.config_get("maxmemory-policy"))
        except ResponseError:
            return  # CONFIG is often disabled on managed Redis
        if config.get("appendonly") != "yes":
            log.warning("Redis has appendonly off: a Redis restart loses rooms (new epochs)")
        if config.get("maxmemory-policy") not in ("noeviction", None):
            log.warning("Redis may evict keys (maxmemory-policy): set it to noeviction")

    async def _on_fanout_connect(self) -> bool:
        """Check the data set is the one we knew; return whether to use sharded pub/sub."""
        key = f"{self._prefix}:instance"
        await self._client.set(key, _new_id(), nx=True)
        instance = await self._client.get(key)
        if self._instance is not None and instance != self._instance:
            log.warning("Redis lost its data (instance id changed): rooms get new epochs")
        self._instance = instance
        if self._sharded_option is not None:
            return self._sharded_option
        # Detected at every connect, so that all hubs agree after a Redis upgrade.
        version = (await self._client.info("server"))["redis_version"]
        return int(str(version).partition(".")[0]) >= 7

    def _saw(self, room: str, epoch: str, seq: int) -> None:
        if not self.fanout.follows(room):
            return
        known = self._seen.get(room)
        if known is None or known[0] != epoch or known[1] < seq:
            self._seen[room] = (epoch, seq)

    def _forget(self, room: str) -> None:
        self._seen.pop(room, None)

    # Members, listings and orders.

    async def put_user(self, user: User) -> None:
        key = f"{self._prefix}:user:{user.id}"
        fields = {"name": user.name, "locale": user.locale}
        if user.email is not None:
            fields["email"] = user.email
        with _edge():
            async with self._client.pipeline(transaction=True) as tx:
                tx.delete(key)
                tx.hset(key, mapping=fields)  # type: ignore[arg-type]
                await tx.execute()

    async def touch_user(self, user_id: UserId, name: str, locale: str) -> None:
        with _edge():
            await self._client.hset(
                f"{self._prefix}:user:{user_id}", mapping={"name": name, "locale": locale}
            )

    async def get_user(self, user_id: UserId) -> User | None:
        with _edge():
            fields = await self._client.hgetall(f"{self._prefix}:user:{user_id}")
        if not fields:
            return None
        email = fields.get(b"email")
        return User(
            user_id,
            _text(fields[b"name"]),
            _text(fields[b"locale"]),
            None if email is None else _text(email),
        )

    async def put_listing(self, listing: Listing) -> None:
        key = f"{self._prefix}:listing:{listing.id}"
        fields: dict[str, str | int] = {
            "seller_id": listing.seller_id,
            "title": listing.title,
            "amount": listing.price.amount,
            "currency": listing.price.currency,
            "offers_enabled": int(listing.offers_enabled),
            "status": listing.status,
        }
        if listing.photo_url is not None:
            fields["photo_url"] = listing.photo_url
        with _edge():
            async with self._client.pipeline(transaction=True) as tx:
                tx.delete(key)
                tx.hset(key, mapping=fields)  # type: ignore[arg-type]
                await tx.execute()

    async def get_listing(self, listing_id: ListingId) -> Listing | None:
        with _edge():
            fields = await self._client.hgetall(f"{self._prefix}:listing:{listing_id}")
        if not fields:
            return None
        photo_url = fields.get(b"photo_url")
        return Listing(
            listing_id,
            UserId(_text(fields[b"seller_id"])),
            _text(fields[b"title"]),
            Money(int(fields[b"amount"]), _text(fields[b"currency"])),
            None if photo_url is None else _text(photo_url),
            fields[b"offers_enabled"] == b"1",
            _text(fields[b"status"]),
        )

    async def put_order(self, order: Order) -> tuple[Order, bool]:
        with _edge():
            reply = await self._put_order(
                keys=[f"{self._prefix}:order:{order.id}"],
                args=[order.listing_id, order.buyer_id, order.seller_id, order.status,
                      order.created_ts],
            )  # fmt: skip
        if reply[0] == 1:
            return order, True
        stored = _order(order.id, reply[1:])
        if (stored.listing_id, stored.buyer_id, stored.seller_id) != (
            order.listing_id,
            order.buyer_id,
            order.seller_id,
        ):
            raise ParleyError(
                ErrorCode.conflict, f"order {order.id} exists with another listing or parties"
            )
        return stored, False

    async def set_order_status(self, order_id: OrderId, status: str) -> Order | None:
        with _edge():
            reply = await self._set_order_status(
                keys=[f"{self._prefix}:order:{order_id}"], args=[status]
            )
        return None if reply is None else _order(order_id, reply)

    async def get_order(self, order_id: OrderId) -> Order | None:
        with _edge():
            fields = await self._client.hmget(f"{self._prefix}:order:{order_id}", _ORDER_FIELDS)
        return None if fields[0] is None else _order(order_id, fields)

    # Room logs.

    async def append(self, room: str, draft: Draft) -> AppendResult:
        op = {"comment": "m", "system": "m", "edit": "e", "delete": "d"}[draft.kind]
        edit = msgpack.packb([draft.text, draft.ts]) if op == "e" else b""
        idem = ""
        if draft.client_msg_id is not None:
            author_id = "" if draft.author is None else draft.author.id
            idem = f"{author_id}\0{draft.client_msg_id}"
        known_epoch, known_seq = self._seen.get(room, ("", 0))
        body = _encode_body(draft)
        with _edge():
            reply = await self._pipelined_append(
                self._room_keys(room, "seq", "epoch", "log", "msgs", "mod", "idem"),
                [
                    _new_id(), known_epoch, known_seq, body, op,
                    "" if draft.target is None else draft.target, edit, idem,
                    self._key(room, "ch"), "SPUBLISH" if self.fanout._sharded else "PUBLISH",
                ],
            )  # fmt: skip
        if reply[0] == 1:
            _, seq, stored, edited, deleted = reply
            return AppendResult(_decode_entry(room, seq, stored, edited, deleted), duplicate=True)
        _, seq, epoch = reply
        self._saw(room, _text(epoch), seq)
        await self.fanout.wait_echo(room, _text(epoch), seq, self._echo_timeout)
        return AppendResult(Entry.from_draft(room, seq, draft))

    async def _pipelined_append(self, keys: list[str], args: list[Any]) -> Any:
        """Run the append script; the appends of one loop iteration share a round trip.

        One pipeline (not a transaction: each script is atomic by itself) per
        iteration keeps the command order, so a room's appends from this hub
        still run in the order they were made, and a burst of thousands of
        posts needs a few connections instead of one each.
        """
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if not self._pending_appends:
            asyncio.get_running_loop().call_soon(self._send_appends)
        self._pending_appends.append((keys, args, future))
        return await future

    def _send_appends(self) -> None:
        batch, self._pending_appends = self._pending_appends, []
        task = asyncio.ensure_future(self._run_appends(batch))
        self._append_tasks.add(task)
        task.add_done_callback(self._append_tasks.discard)

    async def _run_appends(
        self, batch: list[tuple[list[str], list[Any], asyncio.Future[Any]]]
    ) -> None:
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for keys, args, _ in batch:
                    await self._append(keys=keys, args=args, client=pipe)
                replies = await pipe.execute(raise_on_error=False)
        except (RedisError, OSError) as exc:
            replies = [exc] * len(batch)
        for (_, _, future), reply in zip(batch, replies, strict=True):
            if future.done():
                continue
            if isinstance(reply, BaseException):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    async def _read_entries(self, room: str, *args: str | int) -> list[Entry]:
        with _edge():
            flat = await self._read(
                keys=self._room_keys(room, "seq", "log", "msgs", "mod"), args=args
            )
        return _decode_entries(room, flat)

    async def get_entry(self, room: str, seq: int) -> Entry | None:
        found = await self._read_entries(room, "one", seq)
        return found[0] if found else None

    async def history(self, room: str, before: int | None, limit: int) -> list[Entry]:
        if limit <= 0:
            return []
        return await self._read_entries(
            room, "before", "+inf" if before is None else f"({before}", limit
        )

    async def entries_after(self, room: str, after: int, limit: int) -> list[Entry]:
        if limit <= 0:
            return []
        return await self._read_entries(room, "after", max(after, 0), limit)

    async def head(self, room: str) -> RoomHead:
        known_epoch, known_seq = self._seen.get(room, ("", 0))
        with _edge():
            seq, epoch = await self._head(
                keys=self._room_keys(room, "seq", "epoch"), args=[_new_id(), known_epoch, known_seq]
            )
        head = RoomHead(seq, _text(epoch))
        self._saw(room, head.epoch, head.seq)
        return head
