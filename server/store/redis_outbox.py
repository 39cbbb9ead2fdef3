"""The push outbox on Redis Streams, shared by every hub process.

Key layout (``parley`` is the store's ``key_prefix``; ``{push}`` is one Cluster
hash tag, so every key below lives on one slot and one script may touch them)::

    parley:{push}:stream               the items: XADD ... MAXLEN ~ max_items,
                                       fields u (member), s (seq), b (item JSON)
    parley:{push}:group:<G>:due        zset  id -> visibility deadline, ms on the
                                       hub's injected clock
    parley:{push}:group:<G>:held       hash  id -> "<consumer>\\n<member>" for
                                       every item handed out and not acked
    parley:{push}:prepared             hash  notification key -> "<member>\\n<item
                                       JSON without seq>", until committed
    parley:{push}:prepared:at          zset  notification key -> when prepared, ms
    parley:{push}:pushed               zset  notification key -> when enqueued, ms,
                                       kept ``PUSHED_KEEP_MS``

Each group ``<G>`` is a Redis consumer group on the stream, created at ``0`` by
its first fetch. Its pending entries list (PEL) is what the group has taken in
and not acked: items handed out sit under their consumer's name; items read
from the stream but not handed out yet (an item of their member was held) sit
under ``~parked``, a name no gateway can have. A fetch is one Lua script
(``_FETCH_LUA``), so concurrent fetches from any number of hubs never both get
an item: it walks the PEL in stream order, then reads new entries with
``XREADGROUP ... >``, skips the members with an item held, and moves what it
picks to the consumer with ``XCLAIM ... RETRYCOUNT <deliveries> JUSTID``.
Deadlines are kept in ``due`` rather than taken from Redis's idle times, which
run on Redis's clock. An ack (``_ACK_LUA``) is ``XACK`` plus the bookkeeping,
then ``XTRIM MINID`` drops what every group has acked. A commit
(``_COMMIT_LUA``) takes the preparation, adds the item and remembers the key in
one script on the same slot.
"""

from __future__ import annotations

from typing import Any, Final

from parley.server.core.model import UserId
from parley.server.store.outbox import SCAN_MAX, PushItem, PushOutbox, Taken
from parley.server.store.redis import RedisStore
from parley.server.store.redis_wire import as_text, edge

# While long-polling, look again this often (seconds): other hub processes
# enqueue and ack without telling this one.
POLL_INTERVAL: Final = 0.2
PAGE: Final = 100  # PEL entries read per XPENDING in a fetch
PARKED: Final = "~parked"  # outside [A-Za-z0-9_.:-]: never a gateway's name

# Stream ids compare as (ms, seq) numbers; Redis writes them without leading zeros.
_ID_LESS_LUA: Final = """
local function id_less(a, b)
  local ams, aseq = string.match(a, '^(%d+)-(%d+)$')
  local bms, bseq = string.match(b, '^(%d+)-(%d+)$')
  if ams ~= bms then
    return #ams < #bms or (#ams == #bms and ams < bms)
  end
  return #aseq < #bseq or (#aseq == #bseq and aseq < bseq)
end
"""

# KEYS stream, due, held
# ARGV group, consumer, parked, now ms, deadline ms, count, scan max, page
# Returns id, item JSON, deliveries for each item handed out, in order.
_FETCH_LUA: Final = f"""
{_ID_LESS_LUA}
local stream, due, held = KEYS[1], KEYS[2], KEYS[3]
local group, consumer, parked = ARGV[1], ARGV[2], ARGV[3]
local count, scan_max, page = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])

-- A new group starts at the oldest entry retained (BUSYGROUP when it exists).
redis.pcall('XGROUP', 'CREATE', stream, group, '0', 'MKSTREAM')

-- Items within their visibility timeout, and their members: those wait, even
-- for the holder (it may have restarted and lost what it held).
local live, blocked = {{}}, {{}}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', due, '(' .. ARGV[4], '+inf')) do
  live[id] = true
  local holder = redis.call('HGET', held, id)
  if holder then
    blocked[string.sub(holder, string.find(holder, '\\n', 1, true) + 1)] = true
  end
end

local function field(fields, name)
  for i = 1, #fields, 2 do
    if fields[i] == name then return fields[i + 1] end
  end
end

-- One slot per free item, in stream order, for members nobody holds.
local slots, picked, scanned = {{}}, {{}}, 0
local function consider(id, fields, deliveries)
  local user = field(fields, 'u')
  if not user or blocked[user] then return end
  local mine = picked[user]
  if not mine then
    mine = {{}}
    picked[user] = mine
  end
  mine[#mine + 1] = {{id, tonumber(field(fields, 's')), field(fields, 'b'), deliveries}}
  slots[#slots + 1] = user
end

-- First what the group has taken in already...
local start, pel_done = '-', false
while not pel_done and #slots < count and scanned < scan_max do
  local pel = redis.call('XPENDING', stream, group, start, '+', page)
  for _, p in ipairs(pel) do
    if #slots == count or scanned == scan_max then break end
    local id = p[1]
    start = '(' .. id
    scanned = scanned + 1
    if not live[id] then
      local entry = redis.call('XRANGE', stream, id, id)[1]
      if entry then
        consider(id, entry[2], p[2] == parked and 1 or p[4] + 1)
      else  -- trimmed away (MAXLEN) while it waited
        redis.call('XACK', stream, group, id)
        redis.call('ZREM', due, id)
        redis.call('HDEL', held, id)
      end
    end
  end
  pel_done = #pel < page
end
-- ...then new entries, taken in for the group under the parked name.
while pel_done and #slots < count and scanned < scan_max do
  local got = redis.call('XREADGROUP', 'GROUP', group, parked, 'COUNT', count - #slots,
                         'STREAMS', stream, '>')
  if not got then break end
  for _, entry in ipairs(got[1][2]) do
    scanned = scanned + 1
    consider(entry[1], entry[2], 1)
  end
end

-- Each member's slots take its picked items in seq order (enqueued out of
-- order by two hubs at once, they still go out in order).
for _, mine in pairs(picked) do
  table.sort(mine, function(a, b)
    return a[2] < b[2] or (a[2] == b[2] and id_less(a[1], b[1]))
  end)
end
local out, used = {{}}, {{}}
for _, user in ipairs(slots) do
  local k = (used[user] or 0) + 1
  used[user] = k
  local item = picked[user][k]
  redis.call('XCLAIM', stream, group, consumer, 0, item[1], 'RETRYCOUNT', item[4], 'JUSTID')
  redis.call('ZADD', due, ARGV[5], item[1])
  redis.call('HSET', held, item[1], consumer .. '\\n' .. user)
  out[#out + 1] = item[1]
  out[#out + 1] = item[3]
  out[#out + 1] = item[4]
end
return out
"""

# KEYS stream, due, held; ARGV group, ids... Returns how many were acked.
_ACK_LUA: Final = f"""
{_ID_LESS_LUA}
local stream, due, held = KEYS[1], KEYS[2], KEYS[3]
local acked = 0
for i = 2, #ARGV do
  if redis.call('HDEL', held, ARGV[i]) == 1 then
    redis.call('ZREM', due, ARGV[i])
    acked = acked + redis.call('XACK', stream, ARGV[1], ARGV[i])
  end
end
if acked > 0 then
  -- Drop what every group has acked: entries older than each group's oldest
  -- unacked one, and than the next one it has not read yet.
  local low
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
    local info = {{}}
    for j = 1, #g, 2 do info[g[j]] = g[j + 1] end
    local mark
    if info['pending'] > 0 then
      mark = redis.call('XPENDING', stream, info['name'])[2]
    else
      local ms, seq = string.match(info['last-delivered-id'], '^(%d+)-(%d+)$')
      mark = ms .. '-' .. (seq + 1)
    end
    if not low or id_less(mark, low) then low = mark end
  end
  redis.call('XTRIM', stream, 'MINID', low)
end
return acked
"""


# KEYS prepared, prepared:at, pushed; ARGV key, "<member>\n<item>", now ms.
# Returns 0 when the key was pushed already.
_PREPARE_LUA: Final = """
if redis.call('ZSCORE', KEYS[3], ARGV[1]) then
  return 0
end
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
end
return 1
"""

# KEYS stream, prepared, prepared:at, pushed; ARGV key, seq, now ms, forget before ms,
# max items. Returns 0 when nothing is prepared under the key.
_COMMIT_LUA: Final = """
local value = redis.call('HGET', KEYS[2], ARGV[1])
if not value then
  return 0
end
local cut = string.find(value, '\\n', 1, true)
local raw = string.sub(value, cut + 1)
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[5], '*', 'u', string.sub(value, 1, cut - 1),
           's', ARGV[2], 'b', '{"seq":' .. ARGV[2] .. ',' .. string.sub(raw, 2))
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', '(' .. ARGV[4])
redis.call('ZADD', KEYS[4], ARGV[3], ARGV[1])
return 1
"""

# KEYS prepared, prepared:at; ARGV before ms, limit. Returns key, value pairs, oldest first.
_PREPARED_LUA: Final = """
local out = {}
for _, key in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[1],
                                'LIMIT', 0, ARGV[2])) do
  local value = redis.call('HGET', KEYS[1], key)
  if value then
    out[#out + 1] = key
    out[#out + 1] = value
  end
end
return out
"""


# KEYS stream, prepared, prepared:at, then due and held of each group; ARGV member,
# start id ('-' first), count, then the groups' names. One page of the stream:
# the member's items leave it and every group's pending list and bookkeeping;
# the member's preparations go with the first page. Returns the id to go on
# after, or '' at the end.
_DROP_MEMBER_LUA: Final = """
local member, count = ARGV[1], tonumber(ARGV[3])
if ARGV[2] == '-' then
  local prepared = redis.call('HGETALL', KEYS[2])
  for i = 1, #prepared, 2 do
    if string.sub(prepared[i + 1], 1, #member + 1) == member .. '\\n' then
      redis.call('HDEL', KEYS[2], prepared[i])
      redis.call('ZREM', KEYS[3], prepared[i])
    end
  end
end
local page = redis.call('XRANGE', KEYS[1], ARGV[2], '+', 'COUNT', count)
for _, entry in ipairs(page) do
  local id, fields = entry[1], entry[2]
  for i = 1, #fields, 2 do
    if fields[i] == 'u' then
      if fields[i + 1] == member then
        for g = 4, #ARGV do
          local due, held = KEYS[2 * g - 4], KEYS[2 * g - 3]
          redis.call('XACK', KEYS[1], ARGV[g], id)
          redis.call('ZREM', due, id)
          redis.call('HDEL', held, id)
        end
        redis.call('XDEL', KEYS[1], id)
      end
      break
    end
  end
end
if #page < count then
  return ''
end
return '(' .. page[#page][1]
"""
DROP_PAGE: Final = 500  # stream entries one drop script reads


def _is_stream_id(value: str) -> bool:
    ms, dash, seq = value.partition("-")
    return bool(dash) and all(p.isascii() and p.isdigit() and len(p) <= 20 for p in (ms, seq))


class RedisOutbox(PushOutbox):
    def __init__(self, store: RedisStore, **options: Any) -> None:
        super().__init__(**options)
        self._client = store._client
        self._base = f"{store._prefix}:{{push}}"
        self._stream = f"{self._base}:stream"
        self._fetch = self._client.register_script(_FETCH_LUA)
        self._ack_script = self._client.register_script(_ACK_LUA)
        self._prepare_script = self._client.register_script(_PREPARE_LUA)
        self._commit_script = self._client.register_script(_COMMIT_LUA)
        self._prepared_script = self._client.register_script(_PREPARED_LUA)
        self._drop_member_script = self._client.register_script(_DROP_MEMBER_LUA)
        self._journal = [f"{self._base}:prepared", f"{self._base}:prepared:at"]
        self._pushed = f"{self._base}:pushed"

    async def open(self) -> None:
        """Nothing to create: the stream and each group appear with their first use."""

    def _group_keys(self, group: str) -> list[str]:
        # A group name ends before ":due"/":held", so no two groups share a key.
        return [self._stream, f"{self._base}:group:{group}:due", f"{self._base}:group:{group}:held"]

    async def _put(self, items: list[tuple[PushItem, bytes]]) -> None:
        with edge():
            async with self._client.pipeline(transaction=True) as tx:
                for item, raw in items:
                    tx.xadd(
                        self._stream,
                        {"u": item.user_id, "s": item.seq, "b": raw},
                        maxlen=self.max_items,
                        approximate=True,
                    )
                await tx.execute()

    async def _prepare(self, key: str, user_id: UserId, raw: bytes, now_ms: int) -> bool:
        with edge():
            done = await self._prepare_script(
                keys=[*self._journal, self._pushed],
                args=[key, user_id.encode() + b"\n" + raw, now_ms],
            )
        return bool(done)

    async def _commit(self, key: str, seq: int, now_ms: int, forget_before_ms: int) -> bool:
        with edge():
            done = await self._commit_script(
                keys=[self._stream, *self._journal, self._pushed],
                args=[key, seq, now_ms, forget_before_ms, self.max_items],
            )
        return bool(done)

    async def _prepared(self, before_ms: int, limit: int) -> list[tuple[str, bytes]]:
        with edge():
            flat = await self._prepared_script(keys=self._journal, args=[before_ms, limit])
        return [
            (flat[i].decode(), bytes(flat[i + 1]).partition(b"\n")[2])
            for i in range(0, len(flat), 2)
        ]

    async def _take(
        self, group: str, consumer: str, count: int, now_ms: int, deadline_ms: int
    ) -> Taken:
        with edge():
            flat = await self._fetch(
                keys=self._group_keys(group),
                args=[group, consumer, PARKED, now_ms, deadline_ms, count, SCAN_MAX, PAGE],
            )
        taken = [(flat[i].decode(), flat[i + 1], int(flat[i + 2])) for i in range(0, len(flat), 3)]
        return taken, POLL_INTERVAL

    async def _ack(self, group: str, ids: list[str]) -> int:
        ids = [i for i in ids if _is_stream_id(i)]
        if not ids:
            return 0
        with edge():
            acked = await self._ack_script(keys=self._group_keys(group), args=[group, *ids])
        return int(acked)

    async def _drop_member(self, user_id: UserId) -> int:
        with edge():
            before = int(await self._client.xlen(self._stream))
            found = await self._client.xinfo_groups(self._stream) if before else []
            groups = [as_text(g["name"]) for g in found]
            keys = [self._stream, *self._journal]
            for group in groups:
                keys += self._group_keys(group)[1:]
            start = "-"
            while start:
                start = as_text(
                    await self._drop_member_script(
                        keys=keys, args=[user_id, start, DROP_PAGE, *groups]
                    )
                )
            return before - int(await self._client.xlen(self._stream))

    async def _stats(self, group: str, now_ms: int) -> dict[str, int]:
        _, due, held = self._group_keys(group)
        with edge():
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.xlen(self._stream)
                pipe.hlen(held)
                pipe.zcount(due, f"({now_ms}", "+inf")
                length, pending, live = await pipe.execute()
        return {"length": int(length), "pending": int(pending), "held": int(live)}
