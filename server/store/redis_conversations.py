"""Read marks and members' orders on Redis (``RedisConversations``, mixed into
``RedisStore``).

Key layout (``parley`` is the store's ``key_prefix``)::

    parley:{room}:marks                hash  member -> the seq read up to
    parley:{orders}:buyer:<member>     zset  order id -> created_ts, as buyer
    parley:{orders}:seller:<member>    zset  order id -> created_ts, as seller
    parley:{orders}:indexed            present once orders stored before the
                                       indexes existed were added to them

A mark lives beside its room's log, under the room's hash tag, so moving it
(clamped to the room's last message) and counting unread messages are one
script each on one slot. The order indexes are written by ``put_order`` right
after the order (another slot; a retry of the report writes them again);
``_index_orders`` fills them once for a data set written by an older version.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, cast

from parley.server.core.model import Order, UserId
from parley.server.store.base import UNREAD_CAP, OrderRole
from parley.server.store.redis_wire import as_text, decode_order, edge

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

PAGE: Final = 200  # messages an unread count reads at once
INDEX_BATCH: Final = 500  # orders indexed per round trip by ``_index_orders``
_ORDER_FIELDS: Final = ("listing_id", "buyer_id", "seller_id", "status", "created_ts")

# KEYS marks, msgs; ARGV member, seq. Returns {mark, 1 if it moved else 0}.
# A mark never passes the room's last message (the top of msgs).
_SET_MARK_LUA: Final = """
local top = redis.call('ZREVRANGE', KEYS[2], 0, 0)
local last = 0
if top[1] then
  last = tonumber(top[1])
end
local mark = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local wanted = math.min(tonumber(ARGV[2]), last)
if wanted <= mark then
  return {mark, 0}
end
redis.call('HSET', KEYS[1], ARGV[1], wanted)
return {wanted, 1}
"""

# KEYS marks, msgs, log; ARGV member, cap, page. Returns how many messages after the
# member's mark others wrote, at most cap. A body is a msgpack array (``redis_wire``):
# [1] is the kind, [4] the author's id (nil for a system message).
_UNREAD_LUA: Final = """
local mark = redis.call('HGET', KEYS[1], ARGV[1]) or '0'
local cap, page = tonumber(ARGV[2]), tonumber(ARGV[3])
local count, start = 0, 0
while count < cap do
  local seqs = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. mark, '+inf', 'LIMIT', start, page)
  for _, s in ipairs(seqs) do
    local body = redis.call('HGET', KEYS[3], s)
    if body then
      local entry = cmsgpack.unpack(body)
      if (entry[1] == 'comment' or entry[1] == 'system') and entry[4] ~= ARGV[1] then
        count = count + 1
        if count == cap then
          break
        end
      end
    end
  end
  if #seqs < page then
    break
  end
  start = start + page
end
return count
"""


class RedisConversations:
    """The read marks and "My orders" part of ``RedisStore``; ``_init_conversations``
    registers its scripts."""

    _client: Redis
    _prefix: str

    if TYPE_CHECKING:  # provided by RedisStore

        def _room_keys(self, room: str, *parts: str) -> list[str]: ...

    def _init_conversations(self) -> None:
        register = self._client.register_script
        self._set_mark: AsyncScript = register(_SET_MARK_LUA)
        self._unread: AsyncScript = register(_UNREAD_LUA)

    def _orders_key(self, role: OrderRole, user_id: str) -> str:
        return f"{self._prefix}:{{orders}}:{role}:{user_id}"

    async def set_read_mark(self, room: str, user_id: UserId, seq: int) -> tuple[int, bool]:
        with edge():
            mark, moved = await self._set_mark(
                keys=self._room_keys(room, "marks", "msgs"), args=[user_id, seq]
            )
        return int(mark), moved == 1

    async def read_marks(self, room: str) -> dict[UserId, int]:
        with edge():
            marks = await self._client.hgetall(self._room_keys(room, "marks")[0])
        return {UserId(as_text(user_id)): int(seq) for user_id, seq in marks.items()}

    async def unread_count(self, room: str, user_id: UserId) -> int:
        with edge():
            count = await self._unread(
                keys=self._room_keys(room, "marks", "msgs", "log"),
                args=[user_id, UNREAD_CAP, PAGE],
            )
        return int(count)

    async def orders_of(
        self, user_id: UserId, role: OrderRole, before: int | None, limit: int
    ) -> list[Order]:
        if limit <= 0:  # Redis reads a negative count as "no limit"
            return []
        with edge():
            # Equal scores come in descending member order: ties by id, descending.
            found = await self._client.zrevrangebyscore(
                self._orders_key(role, user_id),
                "+inf" if before is None else f"({before}",
                "-inf",
                start=0,
                num=limit,
            )
            ids = cast(list[bytes], found)  # redis-py types it loosely
            if not ids:
                return []
            async with self._client.pipeline(transaction=False) as pipe:
                for order_id in ids:
                    pipe.hmget(f"{self._prefix}:order:{as_text(order_id)}", _ORDER_FIELDS)
                rows = await pipe.execute()
        return [
            decode_order(as_text(order_id), fields)
            for order_id, fields in zip(ids, rows, strict=True)
            if fields[0] is not None
        ]

    async def _index_order(self, order: Order) -> None:
        """Index an order under its buyer and its seller (one slot: ``{orders}``)."""
        score: dict[str, int] = {order.id: order.created_ts}
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.zadd(self._orders_key("buyer", order.buyer_id), score)
            pipe.zadd(self._orders_key("seller", order.seller_id), score)
            await pipe.execute()

    async def _index_orders(self) -> None:
        """Add the orders of a data set written before the member indexes existed."""
        done = f"{self._prefix}:{{orders}}:indexed"
        if await self._client.exists(done):
            return
        batch: list[Any] = []
        async for key in self._client.scan_iter(
            match=f"{self._prefix}:order:*", count=1000, _type="hash"
        ):
            batch.append(key)
            if len(batch) >= INDEX_BATCH:
                await self._index_batch(batch)
                batch = []
        if batch:
            await self._index_batch(batch)
        await self._client.set(done, 1)

    async def _index_batch(self, keys: list[Any]) -> None:
        async with self._client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hmget(key, "buyer_id", "seller_id", "created_ts")
            rows = await pipe.execute()
        prefix = f"{self._prefix}:order:"
        async with self._client.pipeline(transaction=False) as pipe:
            for key, (buyer_id, seller_id, created_ts) in zip(keys, rows, strict=True):
                if buyer_id is None or seller_id is None or created_ts is None:
                    continue
                order_id = as_text(key).removeprefix(prefix)
                score = {order_id: int(created_ts)}
                pipe.zadd(self._orders_key("buyer", as_text(buyer_id)), score)
                pipe.zadd(self._orders_key("seller", as_text(seller_id)), score)
            await pipe.execute()
