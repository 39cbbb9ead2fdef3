"""The Redis store: state shared by many hub processes, and fan-out between them.

Key layout (``parley`` is ``key_prefix``; ``{room}`` is a Cluster hash tag, so a
room's keys and its channel live on one slot)::

    parley:{room}:seq     the room's last seq (INCR)
    parley:{room}:epoch   the log's epoch id
    parley:{room}:log     hash  seq -> entry body (msgpack, without the seq)
    parley:{room}:msgs    zset  seq of each message (comment, system): history pages
    parley:{room}:mod     hash  "t<seq>" -> msgpack [text, edited_ts]; "d<seq>" -> 1;
                          "e<seq>" -> "12,15," the seqs of its edits (a delete blanks them)
    parley:{room}:idem    hash  "<author id>\\0<client_msg_id>" -> seq
    parley:{room}:closed  present while the backend has closed the room
    parley:{room}:read    a member's inbox (user:<id>): read up to this seq
    parley:{room}:by:<id> zset  seqs of the entries a member wrote (``redis_rights``)
    parley:{room}:ch      the room's channel (SPUBLISH on Redis 7+, else PUBLISH)
    parley:user:<id>  parley:listing:<id>  parley:order:<id>     hashes
    parley:usernames      hash  username key (``username_key``: case-folded confusable
                          skeleton) -> user id: names are unique (``redis_usernames``)
    parley:instance       random id of this data set: gone or changed = data lost
    parley:{offers}:...   likes and negotiations, on one slot (``redis_offers``)
    parley:{room}:marks   read marks in order rooms (``redis_conversations``)
    parley:{user:<id>}:blocks  :mutes   a member's blocks and mutes (``redis_moderation``)
    parley:{orders}:...   each member's orders as buyer and as seller (same)

An append is one Lua script that checks idempotency, stores the entry, applies
an edit or delete to its target and publishes ``[epoch, seq, body]`` on the
room's channel: stored and announced are one step, in seq order. On one Redis
the appends of one loop iteration run in one call of a batch script (the keys
derived from each room's hash tag); on a cluster, one call each. Each hub has
one pub/sub connection (``RedisFanout``); when it drops, the hub reconnects with
backoff, re-subscribes and asks for a resync, so nothing is lost silently.

Durability is Redis's: ``appendonly yes`` with ``appendfsync always`` makes an
acknowledged append survive a Redis crash; ``everysec`` may lose the last second.
Redis must not evict keys (``maxmemory-policy noeviction``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import secrets
import time
from collections.abc import Collection
from typing import Any, Final

import msgpack
from redis.asyncio import BlockingConnectionPool, Connection, Redis
from redis.asyncio.cluster import PipelineCommand
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.exceptions import (
    NoScriptError,
    RedisError,
    ResponseError,
)
from redis.maint_notifications import MaintNotificationsConfig

from parley.protocol.errors import ErrorCode, ParleyError
from parley.server.core.buckets import Buckets
from parley.server.core.mentions import username_key
from parley.server.core.model import (
    MEMBER_KINDS,
    AppendResult,
    Draft,
    Entry,
    Listing,
    ListingId,
    Money,
    Order,
    OrderId,
    RoomHead,
    User,
    UserId,
)
from parley.server.stoppoints import stop_point
from parley.server.store.base import WRITE_BOUNDS, ReadState, Store, StoreUnavailable
from parley.server.store.redis_cluster import (
    ClusterFanout,
    as_cluster,
    check_shards,
    cluster_client,
)
from parley.server.store.redis_conversations import RedisConversations
from parley.server.store.redis_fanout import RedisFanout
from parley.server.store.redis_lease import RedisLeases
from parley.server.store.redis_moderation import RedisModeration
from parley.server.store.redis_offers import RedisOffers
from parley.server.store.redis_presence import RedisPresence
from parley.server.store.redis_rights import RedisRights
from parley.server.store.redis_url import wait_options
from parley.server.store.redis_usernames import index_usernames
from parley.server.store.redis_wire import (
    ResetAwareConnection,
    as_text,
    decode_entries,
    decode_entry,
    decode_order,
    edge,
    encode_body,
    encode_edit,
    encode_read_prefix,
)

log = logging.getLogger("parley.store.redis")

APPEND_BATCH: Final = 200  # at most this many appends in one call of the batch script
REDIRECT_MARK_MS: Final = 10_000  # life of the write a redirected append's WAIT follows

_ORDER_FIELDS: Final = ("listing_id", "buyer_id", "seller_id", "status", "created_ts")
_USER_FIELDS: Final = ("name", "locale", "email")

# A member's hash and the usernames hash are on two slots (a Redis Cluster puts
# every key on its own unless a hash tag joins them), so a change of name is three
# one-slot steps, each safe to run again: claim the new name, write the member
# (keeping the name it replaces as 'prev_key' until it is freed), free the old name.

# KEYS usernames; ARGV id, name key. Returns 0 when another member holds the name.
_CLAIM_NAME_LUA: Final = """
local owner = redis.call('HGET', KEYS[1], ARGV[2])
if owner and owner ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[1])
return 1
"""

# KEYS usernames; ARGV id, name key to keep, name keys to free...
_FREE_NAMES_LUA: Final = """
for i = 3, #ARGV do
  if ARGV[i] ~= '' and ARGV[i] ~= ARGV[2] and redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[1] then
    redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
return 1
"""

# KEYS user; ARGV name key, name, locale, email ('' for none), '1' to create only.
# Returns {name keys to free} (the replaced name, and one a crash left unfreed),
# or with '1' and an existing member {0, name, locale, email, name key}.
_SET_USER_LUA: Final = """
local cur = redis.call('HMGET', KEYS[1], 'name', 'locale', 'email', 'name_key', 'prev_key')
if ARGV[5] == '1' and cur[1] then
  return {0, cur[1], cur[2], cur[3], cur[4] or ''}
end
local free = {}
if cur[4] and cur[4] ~= ARGV[1] then free[#free + 1] = cur[4] end
if cur[5] and cur[5] ~= ARGV[1] then free[#free + 1] = cur[5] end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'name', ARGV[2], 'locale', ARGV[3], 'name_key', ARGV[1])
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[1], 'email', ARGV[4])
end
if #free > 0 then
  redis.call('HSET', KEYS[1], 'prev_key', free[#free])
end
return free
"""

# KEYS read, msgs. Returns {read up to, unread notifications after it}.
_READ_STATE_LUA: Final = """
local up = tonumber(redis.call('GET', KEYS[1]) or '0')
return {up, redis.call('ZCOUNT', KEYS[2], '(' .. up, '+inf')}
"""

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

# Run by a delete (target ARGV[6]): its words leave the store, not only the replies.
# The target's text and data (a notification's excerpt), its earlier edits' texts,
# data, mentions and masks, and its last edit's are blanked in place; ``blank``
# rewrites items of a msgpack array (of at most 15 items: a one-byte header) without
# decoding the others: the text becomes "", the data nil, from ``cut_from`` on [].
_ERASE_LUA: Final = """
local function blank(body, text_at, cut_from, data_at)
  if not body then return nil end
  local n = string.byte(body, 1) - 144
  local parts, off = {string.sub(body, 1, 1)}, 1
  for i = 1, n do
    local nxt = cmsgpack.unpack_one(body, off)
    if nxt == -1 then nxt = #body end
    local item = string.sub(body, off + 1, nxt)
    if i == text_at then item = '\\160'
    elseif i == data_at then item = '\\192'
    elseif i >= cut_from then item = '\\144' end
    parts[#parts + 1] = item
    off = nxt
  end
  return table.concat(parts)
end
local target = ARGV[6]
local first = redis.call('HGET', KEYS[3], target)
if first then redis.call('HSET', KEYS[3], target, blank(first, 2, 99, 8)) end
local last = redis.call('HGET', KEYS[5], 't' .. target)
if last then redis.call('HSET', KEYS[5], 't' .. target, blank(last, 1, 3, 0)) end
for edit in string.gmatch(redis.call('HGET', KEYS[5], 'e' .. target) or '', '(%d+),') do
  local body = redis.call('HGET', KEYS[3], edit)
  if body then redis.call('HSET', KEYS[3], edit, blank(body, 2, 9, 8)) end
end
if ARGV[12] == '1' then
  redis.call('ZREM', KEYS[4], target)  -- a notification withdrawn is no longer unread
end
"""

# KEYS seq, epoch, log, msgs, mod, idem, closed, read, and for an entry with an author:
#      by (the author's entries here), the author's rooms (one Redis only: ``redis_rights``)
# ARGV new epoch, known epoch, known seq, body, op, target, edit, idem, channel, publish,
#      member ('1' for a member's entry, refused while the room is closed),
#      inbox ('1' in a member's own room: a deleted notification leaves ``msgs``),
#      '1' to return the id of the node that stored it (a cluster waiting for replicas),
#      '1' when the entry has an author (indexed in by: ``redis_rights``),
#      '1' to add the room (ARGV[16]) to the author's rooms (absent: neither);
#      APPEND_ARGV of them in all (a script run before it reads its own after them)
# op: m (a message or notification), e (edit), d (delete), x (removal), h (hold),
# u (release), r (read mark: ARGV[4] is
# the body without its data and mentions, completed here), c (close), o (reopen),
# s (kept in the log only)
#
# The steps are a function of (KEYS, ARGV), its parameters shadowing Redis's tables:
# ``_APPEND_LUA`` runs it on its own KEYS and ARGV, ``_APPEND_BATCH_LUA`` once per
# entry of a batch, on keys and arguments it derives.
_APPEND_FUNCTION_LUA: Final = f"""
local function append_one(KEYS, ARGV)
if ARGV[8] ~= '' then
  local seq = redis.call('HGET', KEYS[6], ARGV[8])
  if seq then
    local mod = redis.call('HMGET', KEYS[5], 't' .. seq, 'd' .. seq)
    return {{1, tonumber(seq), redis.call('HGET', KEYS[3], seq), mod[1], mod[2]}}
  end
end
if ARGV[11] == '1' and redis.call('EXISTS', KEYS[7]) == 1 then
  return {{2}}
end
{_EPOCH_LUA}
local body = ARGV[4]
local op = ARGV[5]
if op == 'r' then
  local up = math.max(tonumber(redis.call('GET', KEYS[8]) or '0'), tonumber(ARGV[6]))
  redis.call('SET', KEYS[8], up)
  local unread = redis.call('ZCOUNT', KEYS[4], '(' .. up, '+inf')
  -- '\\144' is an empty msgpack array: a read mark mentions nobody
  body = body .. cmsgpack.pack({{up_to = up, unread = unread}}) .. '\\144'
end
local seq = redis.call('INCR', KEYS[1])
redis.call('HSET', KEYS[3], seq, body)
if ARGV[14] == '1' then
  redis.call('ZADD', KEYS[9], seq, seq)
end
if ARGV[15] == '1' then
  redis.call('ZADD', KEYS[10], 0, ARGV[16])
end
if op == 'm' then
  redis.call('ZADD', KEYS[4], seq, seq)
elseif op == 'e' then
  redis.call('HSET', KEYS[5], 't' .. ARGV[6], ARGV[7])
  local edits = redis.call('HGET', KEYS[5], 'e' .. ARGV[6]) or ''
  redis.call('HSET', KEYS[5], 'e' .. ARGV[6], edits .. seq .. ',')
elseif op == 'd' or op == 'x' then
  -- 1: deleted by its author or the seller; 2: removed by the moderators
  redis.call('HSET', KEYS[5], 'd' .. ARGV[6], op == 'x' and 2 or 1)
  {_ERASE_LUA}
elseif op == 'h' then
  -- 3: held, its words kept; only a message still shown is held
  redis.call('HSETNX', KEYS[5], 'd' .. ARGV[6], 3)
elseif op == 'u' then
  if redis.call('HGET', KEYS[5], 'd' .. ARGV[6]) == '3' then
    redis.call('HDEL', KEYS[5], 'd' .. ARGV[6])
  end
elseif op == 'c' then
  redis.call('SET', KEYS[7], 1)
elseif op == 'o' then
  redis.call('DEL', KEYS[7])
end
if ARGV[8] ~= '' then
  redis.call('HSET', KEYS[6], ARGV[8], seq)
end
-- '\\147' starts a msgpack array of 3: [epoch, seq, body]
redis.call(ARGV[10], ARGV[9], '\\147' .. cmsgpack.pack(epoch, seq) .. body)
-- On a cluster that waits for replicas: the node that stored it, last (a redirected
-- append runs on another node than the one its WAIT was queued on).
local here = nil
if ARGV[13] == '1' then
  here = redis.call('CLUSTER', 'MYID')
end
if op == 'r' then
  return {{3, seq, epoch, body, here}}
end
return {{0, seq, epoch, here}}
end
"""

_APPEND_LUA: Final = f"""
{_APPEND_FUNCTION_LUA}
return append_one(KEYS, ARGV)
"""

# One Redis (not a cluster: the keys are not declared): many appends in one call.
# ARGV 1: a msgpack array of appends, each [room, op and flags, body, known epoch,
# known seq, target, edit, idem, author id ('' for none)], the flags after the op
# being M (a member's entry) and N (add the room to the author's rooms);
# 2: key prefix, 3: the publish command, 4: new epoch.
# Keys as ``RedisStore._key`` and ``_member_rooms_key`` name them. Returns one reply
# per append, in order: the single script's, or the error it raised (an append that
# fails leaves the others of its batch alone).
_APPEND_BATCH_LUA: Final = f"""
{_APPEND_FUNCTION_LUA}
local prefix, pub, new_epoch = ARGV[2], ARGV[3], ARGV[4]
local out = {{}}
for i, p in ipairs(cmsgpack.unpack(ARGV[1])) do
  local room, flags, author = p[1], p[2], p[9]
  local base = prefix .. ':{{' .. room .. '}}:'
  local keys = {{base .. 'seq', base .. 'epoch', base .. 'log', base .. 'msgs', base .. 'mod',
                base .. 'idem', base .. 'closed', base .. 'read'}}
  local args = {{new_epoch, p[4], p[5], p[3], string.sub(flags, 1, 1), p[6], p[7], p[8],
                base .. 'ch', pub, string.find(flags, 'M', 2, true) and '1' or '',
                string.sub(room, 1, 5) == 'user:' and '1' or '', '', '', '', room}}
  if author ~= '' then
    keys[9] = base .. 'by:' .. author
    args[14] = '1'
    if string.find(flags, 'N', 2, true) then
      keys[10] = prefix .. ':{{member:' .. author .. '}}:rooms'
      args[15] = '1'
    end
  end
  local ok, reply = pcall(append_one, keys, args)
  if not ok and type(reply) ~= 'table' then
    reply = redis.error_reply(tostring(reply))
  end
  out[i] = reply
end
return out
"""


def _stored_on(reply: Any) -> bytes | None:
    """The node id a new append's reply ends with (a cluster waiting for replicas)."""
    if isinstance(reply, list) and reply and reply[0] in (0, 3):
        at = 4 if reply[0] == 3 else 3
        if len(reply) > at:
            return bytes(reply[at])
    return None


_OPS: Final = {
    "comment": "m",
    "system": "m",
    "notification": "m",
    "edit": "e",
    "delete": "d",
    "remove": "x",  # a delete by the moderators
    "hold": "h",  # hidden pending review
    "release": "u",  # shown again
    "read": "r",
    "close": "c",
    "reopen": "o",
    "offer": "s",  # s: stored in the log only, neither a message nor a notification
    "event": "s",
    "receipt": "s",
}

# KEYS seq, epoch; ARGV new epoch, known epoch, known seq
_HEAD_LUA: Final = f"""
{_EPOCH_LUA}
return {{last, epoch}}
"""

# KEYS seq, log, msgs, mod; ARGV 'after' after limit | 'before' max-score limit | 'one' seq
# | 'from' after limit (the seqs of KEYS[3] above after: a member's, ``redis_rights``)
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
elseif ARGV[1] == 'from' then
  seqs = redis.call('ZRANGEBYSCORE', KEYS[3], '(' .. ARGV[2], '+inf', 'LIMIT', 0, ARGV[3])
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
# The member indexes (``redis_conversations``) are written next, on their own slot:
# the same order reported again indexes it again, so a retry repairs what a crash
# left out.
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


_PendingAppend = tuple[list[str], list[Any], "asyncio.Future[Any]"]


def _new_id() -> str:
    return secrets.token_hex(8)


def _user(user_id: str, fields: list[Any]) -> User:
    name, locale, email = fields
    return User(
        UserId(user_id),
        as_text(name),
        as_text(locale),
        None if email is None else as_text(email),
    )


class RedisStore(RedisOffers, RedisConversations, RedisModeration, RedisRights, RedisLeases, Store):
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
        canary_timeout: float = 2.0,
    ) -> None:
        self.cluster = url.partition("://")[0].endswith("+cluster")
        # A Redis Cluster's pub/sub is sharded (Redis 7): SPUBLISH reaches only the shard.
        self._sharded_option = True if self.cluster else sharded_pubsub
        self._canary_timeout = canary_timeout
        self._wait_replicas, self._wait_timeout_ms, url = wait_options(url, self.cluster)
        self.write_seconds = Buckets(WRITE_BOUNDS)
        self._prefix = key_prefix
        self._echo_timeout = echo_timeout
        self._socket_timeout = socket_timeout
        self._pool: BlockingConnectionPool | None = None
        if self.cluster:
            self._client = cluster_client(
                url,
                max_connections=max_connections,
                socket_timeout=socket_timeout,
                connect_timeout=connect_timeout,
            )
        else:
            self._pool = self._single_pool(url, max_connections, socket_timeout, connect_timeout)
            self._client = Redis(connection_pool=self._pool)
        self._append = self._client.register_script(_APPEND_LUA)
        self._append_batch = self._client.register_script(_APPEND_BATCH_LUA)
        self._pending_appends: list[_PendingAppend] = []
        self._append_tasks: set[asyncio.Future[None]] = set()
        self._head = self._client.register_script(_HEAD_LUA)
        self._read = self._client.register_script(_READ_LUA)
        self._put_order = self._client.register_script(_PUT_ORDER_LUA)
        self._set_order_status = self._client.register_script(_SET_ORDER_STATUS_LUA)
        self._claim_name = self._client.register_script(_CLAIM_NAME_LUA)
        self._free_names = self._client.register_script(_FREE_NAMES_LUA)
        self._set_user = self._client.register_script(_SET_USER_LUA)
        self._read_state = self._client.register_script(_READ_STATE_LUA)
        self._init_offers()
        self._init_conversations()
        self._init_moderation(_APPEND_LUA)
        self._init_rights()
        self._instance: bytes | str | None = None
        # The last (epoch, seq) seen of each followed room, to notice a log
        # that went back in time (see _EPOCH_LUA).
        self._seen: dict[str, tuple[str, int]] = {}
        link_options: dict[str, Any] = {
            "ping_interval": ping_interval,
            "reconnect_min": reconnect_min,
            "reconnect_max": reconnect_max,
            "confirm_timeout": socket_timeout,
        }
        self.fanout: RedisFanout | ClusterFanout = (
            ClusterFanout(self, **link_options)
            if self.cluster
            else RedisFanout(self, **link_options)
        )
        self.presence = RedisPresence(self)

    @staticmethod
    def _single_pool(
        url: str, max_connections: int, socket_timeout: float, connect_timeout: float
    ) -> BlockingConnectionPool:
        pool = BlockingConnectionPool.from_url(
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
        if pool.connection_class is Connection:  # plain TCP (not TLS, not a socket file)
            pool.connection_class = ResetAwareConnection
        return pool

    def _key(self, room: str, part: str) -> str:
        return f"{self._prefix}:{{{room}}}:{part}"

    def _room_keys(self, room: str, *parts: str) -> list[str]:
        return [self._key(room, part) for part in parts]

    async def open(self) -> None:
        with edge():
            await self._client.ping()
            await self._warn_about_durability()
            if not self.cluster:  # a cluster's data sets are younger than the indexes
                await self._index_orders()
            await index_usernames(self._client, self._prefix)
            await self._index_member_entries()
            await self.fanout.start()
            await self.presence.start()

    async def close(self) -> None:
        if self._pending_appends:
            self._send_appends()
        if self._append_tasks:  # appends already sent finish before the pool closes
            await asyncio.wait(set(self._append_tasks), timeout=self._socket_timeout)
        await self.presence.stop()
        await self.fanout.stop()
        await self._client.aclose()
        if self._pool is not None:
            await self._pool.aclose()

    async def check(self) -> None:
        if self.cluster:
            await check_shards(self._client, self._wait_replicas)  # names a shard down
        else:
            with edge():
                await self._client.ping()
        if not self.fanout.live:
            # Writes would work, but this hub would not hear them: not ready.
            raise StoreUnavailable("the fan-out connection is down; retry later")
        # Connected is not hearing: a canary must go around through Redis and back.
        await self.fanout.canary(self._canary_timeout)

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
        if self._sharded_option is not None:  # always on a cluster
            return self._sharded_option
        # Detected at every connect, so that all hubs agree after a Redis upgrade.
        version = (await self._client.info("server"))["redis_version"]
        return int(str(version).partition(".")[0]) >= 7

    def _sharded(self) -> bool:
        return self.cluster or (isinstance(self.fanout, RedisFanout) and self.fanout._sharded)

    def _saw(self, room: str, epoch: str, seq: int) -> None:
        if not self.fanout.follows(room):
            return
        known = self._seen.get(room)
        if known is None or known[0] != epoch or known[1] < seq:
            self._seen[room] = (epoch, seq)

    def _forget(self, room: str) -> None:
        self._seen.pop(room, None)

    # Members, listings and orders.

    def _user_key(self, user_id: str) -> str:
        return f"{self._prefix}:user:{user_id}"

    def _usernames_key(self) -> str:
        return f"{self._prefix}:usernames"

    async def put_user(self, user: User) -> None:
        name_key = username_key(user.name)
        with edge():
            if not await self._claim_name(keys=[self._usernames_key()], args=[user.id, name_key]):
                raise ParleyError(
                    ErrorCode.conflict, "another member has this username, or one like it"
                )
            stop_point("user.name_claimed")
            free = await self._set_user(
                keys=[self._user_key(user.id)],
                args=[name_key, user.name, user.locale, user.email or "", ""],
            )
            if free:
                await self._free_names(
                    keys=[self._usernames_key()], args=[user.id, name_key, *free]
                )
                await self._client.hdel(self._user_key(user.id), "prev_key")

    async def claim_user(self, user_id: UserId, name: str, locale: str) -> User:
        user = await self.get_user(user_id)  # the common case: no write at all
        if user is not None:
            return user
        name_key = username_key(name)
        with edge():
            if not await self._claim_name(keys=[self._usernames_key()], args=[user_id, name_key]):
                raise ParleyError(
                    ErrorCode.conflict, "another member has this username, or one like it"
                )
            reply = await self._set_user(
                keys=[self._user_key(user_id)], args=[name_key, name, locale, "", "1"]
            )
            if reply and reply[0] == 0:  # created meanwhile, maybe under another name
                await self._free_names(
                    keys=[self._usernames_key()], args=[user_id, as_text(reply[4]), name_key]
                )
                return _user(user_id, reply[1:4])
        return User(user_id, name, locale)

    async def get_user(self, user_id: UserId) -> User | None:
        with edge():
            fields = await self._client.hmget(self._user_key(user_id), _USER_FIELDS)
        return None if fields[0] is None else _user(user_id, fields)

    async def users_by_name(self, keys: Collection[str]) -> dict[str, User]:
        wanted = list(keys)
        if not wanted:
            return {}
        with edge():
            ids = await self._client.hmget(self._usernames_key(), wanted)
            found = [(key, as_text(uid)) for key, uid in zip(wanted, ids, strict=True) if uid]
            if not found:
                return {}
            async with self._client.pipeline(transaction=False) as pipe:
                for _, uid in found:
                    pipe.hmget(self._user_key(uid), _USER_FIELDS)
                rows = await pipe.execute()
        return {
            key: _user(UserId(uid), fields)
            for (key, uid), fields in zip(found, rows, strict=True)
            if fields[0] is not None
        }

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
        with edge():
            async with self._client.pipeline(transaction=True) as tx:
                tx.delete(key)
                tx.hset(key, mapping=fields)  # type: ignore[arg-type]
                await tx.execute()

    async def get_listing(self, listing_id: ListingId) -> Listing | None:
        with edge():
            fields = await self._client.hgetall(f"{self._prefix}:listing:{listing_id}")
        if not fields:
            return None
        photo_url = fields.get(b"photo_url")
        return Listing(
            listing_id,
            UserId(as_text(fields[b"seller_id"])),
            as_text(fields[b"title"]),
            Money(int(fields[b"amount"]), as_text(fields[b"currency"])),
            None if photo_url is None else as_text(photo_url),
            fields[b"offers_enabled"] == b"1",
            as_text(fields[b"status"]),
        )

    async def put_order(self, order: Order) -> tuple[Order, bool]:
        with edge():
            reply = await self._put_order(
                keys=[f"{self._prefix}:order:{order.id}"],
                args=[order.listing_id, order.buyer_id, order.seller_id, order.status,
                      order.created_ts],
            )  # fmt: skip
        stored, created = order, reply[0] == 1
        if not created:
            stored = decode_order(order.id, reply[1:])
            if (stored.listing_id, stored.buyer_id, stored.seller_id) != (
                order.listing_id,
                order.buyer_id,
                order.seller_id,
            ):
                raise ParleyError(
                    ErrorCode.conflict, f"order {order.id} exists with another listing or parties"
                )
        stop_point("order.indexing")
        with edge():
            await self._index_order(stored)
        return stored, created

    async def set_order_status(self, order_id: OrderId, status: str) -> Order | None:
        with edge():
            reply = await self._set_order_status(
                keys=[f"{self._prefix}:order:{order_id}"], args=[status]
            )
        return None if reply is None else decode_order(order_id, reply)

    async def get_order(self, order_id: OrderId) -> Order | None:
        with edge():
            fields = await self._client.hmget(f"{self._prefix}:order:{order_id}", _ORDER_FIELDS)
        return None if fields[0] is None else decode_order(order_id, fields)

    # Room logs.

    async def append(self, room: str, draft: Draft) -> AppendResult:
        op = _OPS[draft.kind]
        edit = encode_edit(draft) if op == "e" else b""
        author_id = "" if draft.author is None else draft.author.id
        idem = "" if draft.client_msg_id is None else f"{author_id}\0{draft.client_msg_id}"
        known_epoch, known_seq = self._seen.get(room, ("", 0))
        body = encode_body(draft) if op != "r" else encode_read_prefix(draft)
        member = draft.kind in MEMBER_KINDS and author_id != ""
        target = "" if draft.target is None else draft.target
        rooms_key = ""
        if author_id and (author_id, room) not in self._noted:
            rooms_key = await self._note_room(author_id, room)
        if not self.cluster:  # one entry of the batch script's array: keys derived there
            flags = op + ("M" if member else "") + ("N" if rooms_key else "")
            keys: list[str] = []
            args: list[Any] = [
                room,
                flags,
                body,
                known_epoch,
                known_seq,
                target,
                edit,
                idem,
                author_id,
            ]
        else:
            keys = self._room_keys(room, "seq", "epoch", "log", "msgs", "mod", "idem",
                                   "closed", "read")  # fmt: skip
            args = [
                _new_id(), known_epoch, known_seq, body, op, target, edit, idem,
                self._key(room, "ch"), "SPUBLISH", "1" if member else "",
                "1" if room.startswith("user:") else "", "1" if self._wait_replicas else "",
            ]  # fmt: skip
            if author_id:  # the author's index (their rooms are noted beforehand)
                keys.append(self._key(room, f"by:{author_id}"))
                args.append("1")
        with edge():
            reply = await self._pipelined_append(keys, args)
        if rooms_key and reply[0] != 2:  # stored now, or by the first of a retried append
            self._noted_room(author_id, room)
        if reply[0] == 1:
            _, seq, stored, edited, deleted = reply
            return AppendResult(decode_entry(room, seq, stored, edited, deleted), duplicate=True)
        if reply[0] == 2:
            raise ParleyError(ErrorCode.not_found, f"{room} is closed")
        seq, epoch = reply[1], as_text(reply[2])
        self.appended += 1
        self._saw(room, epoch, seq)
        await self.fanout.wait_echo(room, epoch, seq, self._echo_timeout)
        if reply[0] == 3:
            return AppendResult(decode_entry(room, seq, reply[3], None, None))
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
        self, batch: list[tuple[list[str], list[Any], asyncio.Future[Any]]], again: bool = False
    ) -> None:
        started = time.perf_counter()
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                if self.cluster:  # a call per append: its keys are on its room's slot
                    for keys, args, _ in batch:
                        pipe.execute_command("EVALSHA", self._append.sha, len(keys), *keys, *args)
                else:
                    self._queue_batches(pipe, batch)
                shards = self._queue_waits(pipe, batch)
                replies = await pipe.execute(raise_on_error=False)
            if not self.cluster:
                replies = self._unbatched(replies, len(batch))
        except (RedisError, OSError) as exc:
            replies = [exc] * len(batch)
            shards = []
        except BaseException as exc:
            # Not Redis saying no (a bug, or a cancel): no waiter may wait forever.
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            raise
        else:
            self.write_seconds.observe(time.perf_counter() - started)
        replies = await self._replicated(replies, shards, batch)
        unloaded = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if unloaded and not again:
            # A master new to this hub (a failover, a new shard) lacks the script,
            # and a cluster's pipeline does not load it: nothing ran; load, run again.
            with contextlib.suppress(RedisError, OSError):
                await self._client.script_load(_APPEND_LUA if self.cluster else _APPEND_BATCH_LUA)
            await self._run_appends([batch[i] for i in unloaded], again=True)
        for (_, _, future), reply in zip(batch, replies, strict=True):
            if future.done():
                continue
            if isinstance(reply, BaseException):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    def _queue_batches(self, pipe: Any, batch: list[_PendingAppend]) -> None:
        """On one Redis, the batch script once per ``APPEND_BATCH`` appends: the
        entries packed once, in one argument (a long batch is cut so that no
        script holds Redis for long)."""
        publish = "SPUBLISH" if self._sharded() else "PUBLISH"
        new_epoch = _new_id()  # a room without an epoch takes it: one per call is enough
        for start in range(0, len(batch), APPEND_BATCH):
            items = [args for _, args, _ in batch[start : start + APPEND_BATCH]]
            packed = msgpack.packb(items, use_bin_type=False)  # Lua's cmsgpack reads no bin
            pipe.execute_command(
                "EVALSHA", self._append_batch.sha, 0, packed, self._prefix, publish, new_epoch
            )

    @staticmethod
    def _unbatched(replies: list[Any], count: int) -> list[Any]:
        """The batch scripts' replies (and the ``WAIT`` after them) as one reply per
        append; a call refused whole (``NOSCRIPT``, Redis down) refuses each of its own."""
        calls = -(-count // APPEND_BATCH)
        out: list[Any] = []
        for i, reply in enumerate(replies[:calls]):
            size = min(APPEND_BATCH, count - i * APPEND_BATCH)
            out += [reply] * size if isinstance(reply, BaseException) else reply
        return out + replies[calls:]

    def _queue_waits(self, pipe: Any, batch: list[_PendingAppend]) -> list[Any]:
        """After the appends, one ``WAIT`` per master written to, on the connection that
        wrote (per shard on a cluster, with the shard's node id: ``CLUSTER MYID``).
        Returns the shard of each append, in order."""
        if not self._wait_replicas:
            return []
        wait = ("WAIT", self._wait_replicas, self._wait_timeout_ms)
        if not self.cluster:
            pipe.execute_command(*wait)
            return [None] * len(batch)
        slots = as_cluster(self._client).nodes_manager
        shards = [slots.get_node_from_slot(key_slot(keys[0].encode())) for keys, _, _ in batch]
        for node in {node.name: node for node in shards}.values():
            pipe.execute_command(*wait, target_nodes=node)
            pipe.execute_command("CLUSTER MYID", target_nodes=node)
        return shards

    async def _replicated(
        self, replies: list[Any], shards: list[Any], batch: list[_PendingAppend]
    ) -> list[Any]:
        """The appends' replies, with those their master's replicas did not confirm in
        time made ``StoreUnavailable``: stored, maybe, but not safe to acknowledge.

        On a cluster, an append redirected during a slot migration (``ASK``,
        ``MOVED``) was stored by another node than the one its batch's ``WAIT`` went
        to: it gets a ``WAIT`` of its own on the node that stored it."""
        count = len(batch)
        if not shards:
            return replies[:count]
        appends, waits = replies[:count], replies[count:]
        if not self.cluster:
            return appends if self._confirmed(waits[0]) else self._unconfirmed(appends)
        names = list(dict.fromkeys(node.name for node in shards))
        confirmed = {name: self._confirmed(w) for name, w in zip(names, waits[0::2], strict=True)}
        ids = {name: i for name, i in zip(names, waits[1::2], strict=True)}
        elsewhere: dict[bytes, bool] = {}  # one WAIT per node that stored redirected ones
        out = []
        for (keys, _, _), reply, node in zip(batch, appends, shards, strict=True):
            stored_on = _stored_on(reply)
            if stored_on is not None and stored_on != ids[node.name]:
                if stored_on not in elsewhere:
                    elsewhere[stored_on] = await self._wait_on(stored_on, keys[0])
                ok = elsewhere[stored_on]
            else:
                ok = confirmed[node.name]
            out.append(reply if ok or isinstance(reply, BaseException) else self._down())
        return out

    def _confirmed(self, acked: Any) -> bool:
        return not isinstance(acked, BaseException) and int(acked) >= self._wait_replicas

    def _down(self) -> StoreUnavailable:
        return StoreUnavailable(
            f"not confirmed by {self._wait_replicas} replica(s) within "
            f"{self._wait_timeout_ms} ms; retry (the same client_msg_id is stored once)"
        )

    def _unconfirmed(self, appends: list[Any]) -> list[Any]:
        return [r if isinstance(r, BaseException) else self._down() for r in appends]

    async def _wait_on(self, node_id: bytes | str, room_key: str) -> bool:
        """``WAIT`` on the node ``node_id`` for what it stored: a write in the room's
        slot on one connection (``ASKING`` first: the slot may still be importing),
        then ``WAIT`` on it. A master's replication is one stream, so replicas that
        have this write have every earlier one, the redirected append included."""
        cluster = as_cluster(self._client)
        wanted = as_text(node_id)
        try:
            nodes = await cluster.cluster_nodes()
        except (RedisError, OSError):
            return False
        address = next((a for a, info in nodes.items() if info.get("node_id") == wanted), None)
        node = None if address is None else cluster.get_node(node_name=address)
        if node is None:
            return False
        marker = room_key.rpartition(":")[0] + ":wait"  # the room's hash tag: its slot
        commands = [
            PipelineCommand(0, "ASKING"),
            PipelineCommand(1, "SET", marker, "", "PX", REDIRECT_MARK_MS),
            PipelineCommand(2, "WAIT", self._wait_replicas, self._wait_timeout_ms),
        ]
        try:
            await node.execute_pipeline(commands)
        except (RedisError, OSError):
            return False
        log.info("redirected append confirmed on its own node node=%s", address)
        return self._confirmed(commands[2].result)

    async def _read_entries(self, room: str, *args: str | int) -> list[Entry]:
        with edge():
            flat = await self._read(
                keys=self._room_keys(room, "seq", "log", "msgs", "mod"), args=args
            )
        return await self._blank_deleted_edits(room, decode_entries(room, flat))

    async def _blank_deleted_edits(self, room: str, entries: list[Entry]) -> list[Entry]:
        """A deleted comment's earlier edits keep their words in the log: they
        are read back blank, like the comment (one more read, only when the
        page holds edits)."""
        targets = list({e.target for e in entries if e.kind == "edit" and e.target is not None})
        if not targets:
            return entries
        [mod] = self._room_keys(room, "mod")
        with edge():
            flags = await self._client.hmget(mod, [f"d{t}" for t in targets])
        gone = {t for t, flag in zip(targets, flags, strict=True) if flag is not None}
        return [
            dataclasses.replace(e, text="", mentions=(), masked_kinds=())
            if e.kind == "edit" and e.target in gone
            else e
            for e in entries
        ]

    async def get_entry(self, room: str, seq: int) -> Entry | None:
        found = await self._read_entries(room, "one", seq)
        return found[0] if found else None

    async def entry_by_key(self, room: str, client_msg_id: str) -> Entry | None:
        with edge():
            seq = await self._client.hget(self._key(room, "idem"), f"\0{client_msg_id}")
        return None if seq is None else await self.get_entry(room, int(seq))

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

    async def read_state(self, room: str) -> ReadState:
        with edge():
            up_to, unread = await self._read_state(keys=self._room_keys(room, "read", "msgs"))
        return ReadState(int(up_to), int(unread))

    async def room_closed(self, room: str) -> bool:
        [closed] = self._room_keys(room, "closed")
        with edge():
            return bool(await self._client.exists(closed))

    async def head(self, room: str) -> RoomHead:
        known_epoch, known_seq = self._seen.get(room, ("", 0))
        with edge():
            seq, epoch = await self._head(
                keys=self._room_keys(room, "seq", "epoch"), args=[_new_id(), known_epoch, known_seq]
            )
        head = RoomHead(seq, as_text(epoch))
        self._saw(room, head.epoch, head.seq)
        return head
