"""A member's own lists (blocks, mutes) over three primitives each backend provides.

``SqliteModeration`` and ``RedisModeration`` store a list as (member, item) ->
when; this mixin gives the ``Store`` methods their names and types once.
"""

from __future__ import annotations

import abc

from parley.server.core.model import UserId

LIST_NAMES = {"blocks": "the block list", "mutes": "the list of muted rooms"}


class MemberLists(abc.ABC):
    @abc.abstractmethod
    async def _add_to_list(self, part: str, user_id: str, item: str, ts: int, limit: int) -> bool:
        """Add ``item`` to the member's list ``part``, bounded by ``limit``, in one step."""

    @abc.abstractmethod
    async def _remove_from_list(self, part: str, user_id: str, item: str) -> bool: ...

    @abc.abstractmethod
    async def _list(self, part: str, user_id: str, limit: int) -> list[tuple[str, int]]:
        """Items and when, most recent first."""

    @abc.abstractmethod
    async def _clear_lists(self, user_id: str) -> None:
        """Remove the member's blocks and mutes, in one step."""

    async def drop_member_lists(self, user_id: UserId) -> None:
        await self._clear_lists(user_id)

    async def block(self, user_id: UserId, other: UserId, ts: int, limit: int) -> bool:
        return await self._add_to_list("blocks", user_id, other, ts, limit)

    async def unblock(self, user_id: UserId, other: UserId) -> bool:
        return await self._remove_from_list("blocks", user_id, other)

    async def blocks(self, user_id: UserId, limit: int) -> list[tuple[UserId, int]]:
        return [(UserId(other), ts) for other, ts in await self._list("blocks", user_id, limit)]

    async def mute(self, user_id: UserId, room: str, ts: int, limit: int) -> bool:
        return await self._add_to_list("mutes", user_id, room, ts, limit)

    async def unmute(self, user_id: UserId, room: str) -> bool:
        return await self._remove_from_list("mutes", user_id, room)

    async def mutes(self, user_id: UserId, limit: int) -> list[tuple[str, int]]:
        return await self._list("mutes", user_id, limit)
