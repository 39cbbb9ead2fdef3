"""Likes and negotiations on Redis (``RedisOffers``, mixed into ``RedisStore``).

Key layout (``parley`` is the store's ``key_prefix``; ``{offers}`` is one Cluster
hash tag, so every key below lives on one slot and one script may touch any)::

    parley:{offers}:n:<id>           hash  body (JSON, ``offers_wire``), version,
                                           state, listing, buyer, seller
    parley:{offers}:open:<listing>   hash  buyer -> id of their open negotiation
    parley:{offers}:due              zset  id -> expires_at_ms, open ones only
    parley:{offers}:user:<member>    zset  id -> updated_ms, as buyer or seller
    parley:{offers}:likes:<listing>  zset  member -> -ts
    parley:{offers}:untold           zset  "<id>:<version>" -> updated_ms, while
                                           that change is not told (``mark_told``)
    parley:{offers}:untold:body      hash  "<id>:<version>" -> the body at that version
    parley:{offers}:liked:<member>   zset  listing -> ts: the same likes by member

A like's score is minus its time, so that ascending order is most recent first
with ties by member id, and ``before`` is the exclusive lower bound ``(-before``.

Creating and replacing a negotiation are one script each (``_CREATE_LUA``,
``_REPLACE_LUA``): the open-pair check, the version compare and every index
change happen in one step, so of two changes from one version exactly one is
stored, whichever hub sent them; the change is marked untold in the same
script, so a hub that dies before telling it leaves it to be told. Reads that
filter (``negotiations_of``) or join ids to documents are scripts too, so they
never mix two states. Scripts build ``n:<id>`` keys from the ``{offers}``
prefix they are given: same slot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, cast

from parley.protocol.errors import ErrorCode, ParleyError
from parley.server.core.model import Listing, ListingId, Money, UserId
from parley.server.core.offers import Negotiation, OfferState
from parley.server.store.base import Like
from parley.server.store.offers_wire import decode_negotiation, encode_negotiation, offer_exists
from parley.server.store.redis_wire import as_text, edge

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

PAGE: Final = 100  # ids a script reads at once while filtering a member's negotiations

# KEYS n, open, due, buyer's zset, seller's zset, untold, untold bodies
# ARGV id, buyer, listing, seller, body, version, state, expires_at_ms, updated_ms
# Returns {0} when stored, {1, id} when the buyer has an open one, {2} when the id is taken.
_CREATE_LUA: Final = """
local holder = redis.call('HGET', KEYS[2], ARGV[2])
if holder then
  return {1, holder}
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {2}
end
redis.call('HSET', KEYS[1], 'body', ARGV[5], 'version', ARGV[6], 'state', ARGV[7],
           'listing', ARGV[3], 'buyer', ARGV[2], 'seller', ARGV[4])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[8], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[9], ARGV[1])
redis.call('ZADD', KEYS[5], ARGV[9], ARGV[1])
redis.call('ZADD', KEYS[6], ARGV[9], ARGV[1] .. ':' .. ARGV[6])
redis.call('HSET', KEYS[7], ARGV[1] .. ':' .. ARGV[6], ARGV[5])
return {0}
"""

# KEYS n, open, due, buyer's zset, seller's zset, untold, untold bodies
# ARGV id, buyer, listing, seller, body, version, state, expires_at_ms ('' once closed),
#      updated_ms, expected version
# Returns {0} when the stored version (or listing, or party) differs, {1} when
# stored, {2, id} when reopening it would make a second open one for the buyer.
_REPLACE_LUA: Final = """
local cur = redis.call('HMGET', KEYS[1], 'version', 'listing', 'buyer', 'seller')
if cur[1] ~= ARGV[10] or cur[2] ~= ARGV[3] or cur[3] ~= ARGV[2] or cur[4] ~= ARGV[4] then
  return {0}
end
local holder = redis.call('HGET', KEYS[2], ARGV[2])
if ARGV[7] == 'open' then
  if holder and holder ~= ARGV[1] then
    return {2, holder}
  end
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
  redis.call('ZADD', KEYS[3], ARGV[8], ARGV[1])
else
  if holder == ARGV[1] then
    redis.call('HDEL', KEYS[2], ARGV[2])
  end
  redis.call('ZREM', KEYS[3], ARGV[1])
end
redis.call('HSET', KEYS[1], 'body', ARGV[5], 'version', ARGV[6], 'state', ARGV[7])
redis.call('ZADD', KEYS[4], ARGV[9], ARGV[1])
redis.call('ZADD', KEYS[5], ARGV[9], ARGV[1])
redis.call('ZADD', KEYS[6], ARGV[9], ARGV[1] .. ':' .. ARGV[6])
redis.call('HSET', KEYS[7], ARGV[1] .. ':' .. ARGV[6], ARGV[5])
return {1}
"""

# KEYS untold, untold bodies; ARGV before ms, limit. Returns the bodies, oldest change first.
_UNTOLD_LUA: Final = """
local out = {}
for _, change in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1],
                                   'LIMIT', 0, ARGV[2])) do
  out[#out + 1] = redis.call('HGET', KEYS[2], change)
end
return out
"""

# KEYS the member's zset; ARGV n: prefix, listing ('' for any), '1' for open ones only,
# limit, page. Returns the bodies, most recently changed first (ties: id descending).
_OF_MEMBER_LUA: Final = """
local out, start = {}, 0
local limit, page = tonumber(ARGV[4]), tonumber(ARGV[5])
while #out < limit do
  local ids = redis.call('ZREVRANGE', KEYS[1], start, start + page - 1)
  for _, id in ipairs(ids) do
    local n = redis.call('HMGET', ARGV[1] .. id, 'listing', 'state', 'body')
    if n[3] and (ARGV[2] == '' or n[1] == ARGV[2]) and (ARGV[3] == '' or n[2] == 'open') then
      out[#out + 1] = n[3]
      if #out == limit then
        break
      end
    end
  end
  if #ids < page then
    break
  end
  start = start + page
end
return out
"""

# KEYS open; ARGV n: prefix. Returns the bodies of the listing's open negotiations.
_OPEN_LUA: Final = """
local out = {}
for _, id in ipairs(redis.call('HVALS', KEYS[1])) do
  out[#out + 1] = redis.call('HGET', ARGV[1] .. id, 'body')
end
return out
"""

# KEYS due; ARGV n: prefix, now_ms, limit. Returns the bodies, earliest deadline first.
_DUE_LUA: Final = """
local out = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, ARGV[3])) do
  out[#out + 1] = redis.call('HGET', ARGV[1] .. id, 'body')
end
return out
"""

# KEYS likes, liked; ARGV member, listing, ts ('' to forget the like). Returns 1 when it
# changed something: a like and its index by member are one step.
_LIKE_LUA: Final = """
if ARGV[3] == '' then
  redis.call('ZREM', KEYS[2], ARGV[2])
  return redis.call('ZREM', KEYS[1], ARGV[1])
end
local added = redis.call('ZADD', KEYS[1], 'NX', -tonumber(ARGV[3]), ARGV[1])
if added == 1 then
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
end
return added
"""

# KEYS listing; ARGV '1' or '0'. Returns the listing's fields, or nil when there is none.
_SET_OFFERS_ENABLED_LUA: Final = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  return false
end
redis.call('HSET', KEYS[1], 'offers_enabled', ARGV[1])
return redis.call('HGETALL', KEYS[1])
"""


class RedisOffers:
    """The likes and negotiations part of ``RedisStore``; ``_init_offers`` registers
    its scripts."""

    _client: Redis
    _prefix: str

    def _init_offers(self) -> None:
        self._offers = f"{self._prefix}:{{offers}}"
        register = self._client.register_script
        self._create_negotiation: AsyncScript = register(_CREATE_LUA)
        self._replace_negotiation: AsyncScript = register(_REPLACE_LUA)
        self._negotiations_of_member: AsyncScript = register(_OF_MEMBER_LUA)
        self._open_negotiations: AsyncScript = register(_OPEN_LUA)
        self._due_negotiations: AsyncScript = register(_DUE_LUA)
        self._set_offers_enabled: AsyncScript = register(_SET_OFFERS_ENABLED_LUA)
        self._untold: AsyncScript = register(_UNTOLD_LUA)
        self._like: AsyncScript = register(_LIKE_LUA)

    def _offer_key(self, part: str) -> str:
        return f"{self._offers}:{part}"

    def _negotiation_keys(self, neg: Negotiation) -> list[str]:
        return [
            self._offer_key(f"n:{neg.id}"),
            self._offer_key(f"open:{neg.listing_id}"),
            self._offer_key("due"),
            self._offer_key(f"user:{neg.buyer_id}"),
            self._offer_key(f"user:{neg.seller_id}"),
            *self._untold_keys(),
        ]

    def _untold_keys(self) -> list[str]:
        return [self._offer_key("untold"), self._offer_key("untold:body")]

    # Likes.

    async def put_like(self, listing_id: ListingId, user_id: UserId, ts: int) -> bool:
        return await self._change_like(listing_id, user_id, ts)

    async def delete_like(self, listing_id: ListingId, user_id: UserId) -> bool:
        return await self._change_like(listing_id, user_id, "")

    async def _change_like(self, listing_id: ListingId, user_id: UserId, ts: int | str) -> bool:
        keys = [self._offer_key(f"likes:{listing_id}"), self._offer_key(f"liked:{user_id}")]
        with edge():
            changed = await self._like(keys=keys, args=[user_id, listing_id, ts])
        return bool(changed)

    async def likers(self, listing_id: ListingId, before: int | None, limit: int) -> list[Like]:
        if limit <= 0:  # Redis reads a negative count as "no limit"
            return []
        with edge():
            found = await self._client.zrangebyscore(
                self._offer_key(f"likes:{listing_id}"),
                "-inf" if before is None else f"({-before}",
                "+inf",
                start=0,
                num=limit,
                withscores=True,
            )
        pairs = cast(list[tuple[bytes, float]], found)  # redis-py types it loosely
        return [Like(UserId(as_text(user_id)), -int(score)) for user_id, score in pairs]

    async def set_offers_enabled(self, listing_id: ListingId, enabled: bool) -> Listing | None:
        with edge():
            flat = await self._set_offers_enabled(
                keys=[f"{self._prefix}:listing:{listing_id}"], args=[int(enabled)]
            )
        if flat is None:
            return None
        fields = {as_text(k): as_text(v) for k, v in zip(flat[::2], flat[1::2], strict=True)}
        return Listing(
            listing_id,
            UserId(fields["seller_id"]),
            fields["title"],
            Money(int(fields["amount"]), fields["currency"]),
            fields.get("photo_url"),
            fields["offers_enabled"] == "1",
            fields["status"],
        )

    # Negotiations.

    async def create_negotiation(self, negotiation: Negotiation) -> Negotiation:
        neg = negotiation
        if neg.state is not OfferState.open:
            raise ValueError("a new negotiation is open")
        with edge():
            reply = await self._create_negotiation(
                keys=self._negotiation_keys(neg),
                args=[
                    neg.id, neg.buyer_id, neg.listing_id, neg.seller_id,
                    encode_negotiation(neg), neg.version, neg.state.value,
                    _deadline(neg), neg.updated_ms,
                ],
            )  # fmt: skip
        if reply[0] == 1:
            raise offer_exists(as_text(reply[1]))
        if reply[0] == 2:
            raise ParleyError(ErrorCode.conflict, f"negotiation {neg.id} exists already")
        return neg

    async def replace_negotiation(self, negotiation: Negotiation) -> bool:
        neg = negotiation
        with edge():
            reply = await self._replace_negotiation(
                keys=self._negotiation_keys(neg),
                args=[
                    neg.id, neg.buyer_id, neg.listing_id, neg.seller_id,
                    encode_negotiation(neg), neg.version, neg.state.value,
                    _deadline(neg), neg.updated_ms,
                    neg.version - 1,
                ],
            )  # fmt: skip
        if reply[0] == 2:
            raise offer_exists(as_text(reply[1]))
        return bool(reply[0] == 1)

    async def get_negotiation(self, offer_id: str) -> Negotiation | None:
        with edge():
            body = await self._client.hget(self._offer_key(f"n:{offer_id}"), "body")
        return None if body is None else decode_negotiation(body)

    async def negotiations_of(
        self,
        user_id: UserId,
        *,
        listing_id: ListingId | None = None,
        open_only: bool = False,
        limit: int = 100,
    ) -> list[Negotiation]:
        if limit <= 0:
            return []
        with edge():
            bodies = await self._negotiations_of_member(
                keys=[self._offer_key(f"user:{user_id}")],
                args=[self._offer_key("n:"), listing_id or "", "1" if open_only else "", limit,
                      PAGE],
            )  # fmt: skip
        return _decode_all(bodies)

    async def open_negotiations(self, listing_id: ListingId) -> list[Negotiation]:
        with edge():
            bodies = await self._open_negotiations(
                keys=[self._offer_key(f"open:{listing_id}")], args=[self._offer_key("n:")]
            )
        found = _decode_all(bodies)
        # Most recently changed first, as on SQLite (the hash has no order).
        found.sort(key=lambda n: (n.updated_ms, n.id), reverse=True)
        return found

    async def due_negotiations(self, now_ms: int, limit: int) -> list[Negotiation]:
        if limit <= 0:
            return []
        with edge():
            bodies = await self._due_negotiations(
                keys=[self._offer_key("due")], args=[self._offer_key("n:"), now_ms, limit]
            )
        return _decode_all(bodies)

    async def next_deadline(self) -> int | None:
        with edge():
            first = await self._client.zrange(self._offer_key("due"), 0, 0, withscores=True)
        return int(first[0][1]) if first else None

    async def untold_negotiations(self, before_ms: int, limit: int) -> list[Negotiation]:
        if limit <= 0:
            return []
        with edge():
            bodies = await self._untold(keys=self._untold_keys(), args=[before_ms, limit])
        return _decode_all(bodies)

    async def mark_told(self, offer_id: str, version: int) -> None:
        untold, bodies = self._untold_keys()
        change = f"{offer_id}:{version}"
        with edge():
            async with self._client.pipeline(transaction=True) as tx:
                tx.zrem(untold, change)
                tx.hdel(bodies, change)
                await tx.execute()


def _decode_all(bodies: list[Any]) -> list[Negotiation]:
    return [decode_negotiation(body) for body in bodies if body is not None]


def _deadline(neg: Negotiation) -> int | str:
    return "" if neg.expires_at_ms is None else neg.expires_at_ms
