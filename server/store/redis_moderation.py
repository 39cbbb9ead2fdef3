"""Members' blocks and mutes on Redis (``RedisModeration``, mixed into ``RedisStore``).

Key layout (``parley`` is the store's ``key_prefix``; ``{user:<id>}`` is the hash
tag of the member's own room, so a member's lists share its slot)::

    parley:{user:<id>}:blocks   zset  blocked member -> when (ms)
    parley:{user:<id>}:mutes    zset  room -> when (ms)

A bounded addition is one script on the member's one key (``_ADD_LUA``): the
count and the addition are one step whichever hub runs it.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any, Final, cast

from parley.server.core.model import UserId
from parley.server.core.moderation import check_room_for_list
from parley.server.store.member_lists import LIST_NAMES, MemberLists
from parley.server.store.redis_wire import as_text, edge

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

# KEYS list; ARGV item, ts, limit. Returns 1 when added, 0 when there, -1 when full.
_ADD_LUA: Final = """
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return 0
end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  return -1
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
return 1
"""


class RedisModeration(MemberLists):
    """The blocks and mutes part of ``RedisStore``; ``_init_moderation`` registers
    its scripts."""

    _client: Redis
    _prefix: str

    def _init_moderation(self) -> None:
        self._add_to_list_script: AsyncScript = self._client.register_script(_ADD_LUA)

    def _member_key(self, user_id: str, part: str) -> str:
        return f"{self._prefix}:{{user:{user_id}}}:{part}"

    async def _add_to_list(self, part: str, user_id: str, item: str, ts: int, limit: int) -> bool:
        with edge():
            added = int(
                await self._add_to_list_script(
                    keys=[self._member_key(user_id, part)], args=[item, ts, limit]
                )
            )
        if added == -1:
            check_room_for_list(limit, limit, LIST_NAMES[part])
        return added == 1

    async def _remove_from_list(self, part: str, user_id: str, item: str) -> bool:
        with edge():
            removed = await self._client.zrem(self._member_key(user_id, part), item)
        return bool(removed)

    async def _list(self, part: str, user_id: str, limit: int) -> list[tuple[str, int]]:
        if limit <= 0:
            return []
        with edge():
            found = await self._client.zrevrange(
                self._member_key(user_id, part), 0, limit - 1, withscores=True
            )
        pairs = cast(list[tuple[bytes, float]], found)
        return [(as_text(item), int(ts)) for item, ts in pairs]

    async def blocked_between(self, user_id: UserId, others: Collection[UserId]) -> set[UserId]:
        wanted: list[str] = list(others)
        if not wanted:
            return set()
        with edge():
            async with self._client.pipeline(transaction=False) as pipe:
                for other in wanted:  # each on its own slot: no script could span them
                    pipe.zscore(self._member_key(other, "blocks"), user_id)
                pipe.zmscore(self._member_key(user_id, "blocks"), wanted)
                replies: list[Any] = await pipe.execute()
        theirs, mine = replies[:-1], replies[-1]
        return {
            UserId(other)
            for other, them, me in zip(wanted, theirs, mine, strict=True)
            if them is not None or me is not None
        }

    async def silencing(
        self, user_id: UserId, author: UserId | None, room: str | None
    ) -> tuple[bool, bool]:
        with edge():
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.zscore(self._member_key(user_id, "blocks"), author or "")
                pipe.zscore(self._member_key(user_id, "mutes"), room or "")
                blocked, muted = await pipe.execute()
        return blocked is not None, muted is not None
