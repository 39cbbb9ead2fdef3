"""Members' data rights on Redis (``RedisRights``, mixed into ``RedisStore``): the
index of what each member wrote.

Key layout (``parley`` is the store's ``key_prefix``)::

    parley:{room}:by:<member>       zset  seq of each entry the member wrote in the
                                          room (comments, edits, deletions, receipts)
    parley:{member:<id>}:rooms      zset  the rooms the member wrote in (score 0:
                                          in name order)
    parley:{offers}:liked:<member>  zset  listing -> ts (``redis_offers``)
    parley:{member:<id>}:erasure    hash  state (erasing, erased), ts
    parley:rights:indexed           present once entries (and likes) stored before
                                    the indexes existed were added to them

The room's part lives under the room's hash tag and is written by the append
script itself, in the same step as the entry. The member's list of rooms lives
on the member's slot: on one Redis the append script writes it too, the first
time this hub appends for the member in the room (each hub remembers the pairs
it wrote). On a Redis Cluster the script cannot reach that slot: an idempotent
``ZADD`` is stored before the member's first append in the room, so the list
may name a room where the append then failed, never miss one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Collection
from typing import TYPE_CHECKING, Any, Final, cast

import msgpack

from parley.server.core.model import Entry, ListingId, UserId
from parley.server.core.offers import Negotiation
from parley.server.store.base import Erasure, ErasureState
from parley.server.store.offers_wire import decode_negotiation
from parley.server.store.redis_wire import as_text, decode_entries, edge

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

log = logging.getLogger("parley.store.redis")

# KEYS erasure; ARGV state, ts. Returns {state, ts} as stored: an erased member stays so.
_SET_ERASURE_LUA: Final = """
local cur = redis.call('HGET', KEYS[1], 'state')
if cur ~= 'erased' and cur ~= ARGV[1] then
  redis.call('HSET', KEYS[1], 'state', ARGV[1], 'ts', ARGV[2])
end
return redis.call('HMGET', KEYS[1], 'state', 'ts')
"""

# KEYS user; ARGV placeholder. Returns the name key to free ('' for none). The key is
# kept as 'prev_key' until freed (``_FREE_NAMES_LUA``), so a crash between the two
# steps frees it on the next run.
_ERASE_PROFILE_LUA: Final = """
local cur = redis.call('HMGET', KEYS[1], 'name_key', 'prev_key', 'locale')
local free = cur[1] or cur[2] or ''
redis.call('HSET', KEYS[1], 'name', ARGV[1], 'locale', cur[3] or 'en')
redis.call('HDEL', KEYS[1], 'email', 'name_key')
if free ~= '' then
  redis.call('HSET', KEYS[1], 'prev_key', free)
end
return free
"""

# KEYS log; ARGV seq, body as read, new body, ... Stores each new body whose entry
# still holds the body read; returns the seqs that changed meanwhile (read again).
_REPLACE_BODIES_LUA: Final = """
local stale = {}
for i = 1, #ARGV, 3 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2])
  else
    stale[#stale + 1] = ARGV[i]
  end
end
return stale
"""

NOTED_MAX: Final = 100_000  # (member, room) pairs a hub remembers as indexed
BACKFILL_BATCH: Final = 500  # log fields read per round trip by the backfill
PAGE: Final = 200  # likes or negotiations read at once by the export


class RedisRights:
    """The members' data rights part of ``RedisStore``, mixed into it."""

    _client: Redis
    _prefix: str
    cluster: bool

    if TYPE_CHECKING:  # provided by RedisStore
        _read: AsyncScript  # reads entries by seq (``_READ_LUA``)
        _free_names: AsyncScript  # frees usernames (``_FREE_NAMES_LUA``)

        def _user_key(self, user_id: str) -> str: ...

        def _usernames_key(self) -> str: ...

        def _room_keys(self, room: str, *parts: str) -> list[str]: ...

        async def _blank_deleted_edits(self, room: str, entries: list[Entry]) -> list[Entry]: ...

    def _init_rights(self) -> None:
        register = self._client.register_script
        self._set_erasure: AsyncScript = register(_SET_ERASURE_LUA)
        self._erase_profile: AsyncScript = register(_ERASE_PROFILE_LUA)
        self._replace_bodies: AsyncScript = register(_REPLACE_BODIES_LUA)
        self._noted: set[tuple[str, str]] = set()
        self._pending_notes: list[tuple[tuple[str, str], asyncio.Future[None]]] = []
        self._note_tasks: set[asyncio.Future[None]] = set()

    def _member_rooms_key(self, user_id: str) -> str:
        return f"{self._prefix}:{{member:{user_id}}}:rooms"

    def _by_key(self, room: str, user_id: str) -> str:
        return self._room_keys(room, f"by:{user_id}")[0]

    async def _note_room(self, user_id: str, room: str) -> str:
        """See that ``room`` is among the member's rooms before their entry is appended
        to it; return the key the append script must add it to ('' for none).

        On one Redis the append script adds it itself, the first time this hub
        appends for the member there. On a Redis Cluster the member's rooms are
        on another slot: the notes of one loop iteration share one pipeline, sent
        before the appends (a burst of first posts takes a few connections, not
        one each).
        """
        pair = (user_id, room)
        if pair in self._noted:
            return ""
        if not self.cluster:
            return self._member_rooms_key(user_id)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        if not self._pending_notes:
            loop.call_soon(self._send_notes)
        self._pending_notes.append((pair, future))
        await future
        return ""

    def _noted_room(self, user_id: str, room: str) -> None:
        if len(self._noted) >= NOTED_MAX:
            self._noted.clear()
        self._noted.add((user_id, room))

    def _send_notes(self) -> None:
        batch, self._pending_notes = self._pending_notes, []
        task = asyncio.ensure_future(self._run_notes(batch))
        self._note_tasks.add(task)
        task.add_done_callback(self._note_tasks.discard)

    async def _run_notes(self, batch: list[tuple[tuple[str, str], asyncio.Future[None]]]) -> None:
        pairs = list(dict.fromkeys(pair for pair, _ in batch))
        failed: BaseException | None = None
        try:
            with edge():
                async with self._client.pipeline(transaction=False) as pipe:
                    for user_id, room in pairs:
                        pipe.zadd(self._member_rooms_key(user_id), {room: 0})
                    await pipe.execute()
        except BaseException as exc:  # every waiter hears it, whatever it is
            failed = exc
        else:
            for pair in pairs:
                self._noted_room(*pair)
        for _, future in batch:
            if not future.done():
                if failed is None:
                    future.set_result(None)
                else:
                    future.set_exception(failed)
        if failed is not None and not isinstance(failed, Exception):
            raise failed

    async def member_entries(
        self, user_id: UserId, after: tuple[str, int] | None, limit: int
    ) -> list[Entry]:
        out: list[Entry] = []
        room, after_seq = after if after is not None else ("", 0)
        low = f"[{room}" if after is not None else "-"  # the cursor's room may have more
        while len(out) < limit:
            with edge():
                found = await self._client.zrangebylex(
                    self._member_rooms_key(user_id), low, "+", start=0, num=1
                )
            rooms = cast(list[bytes], found)  # redis-py types it loosely
            if not rooms:
                break
            if as_text(rooms[0]) != room:
                room, after_seq = as_text(rooms[0]), 0
            wanted = limit - len(out)
            with edge():
                seq_key, log_key, mod_key = self._room_keys(room, "seq", "log", "mod")
                flat = await self._read(
                    keys=[seq_key, log_key, self._by_key(room, user_id), mod_key],
                    args=["from", after_seq, wanted],
                )
            out.extend(await self._blank_deleted_edits(room, decode_entries(room, flat)))
            low = f"({room}"
        return out

    async def member_likes(self, user_id: UserId) -> AsyncIterator[list[tuple[ListingId, int]]]:
        key = f"{self._prefix}:{{offers}}:liked:{user_id}"
        cursor = 0
        while True:
            with edge():
                cursor, found = await self._zscan(key, cursor, PAGE)
            if found:
                yield [(ListingId(as_text(listing)), int(ts)) for listing, ts in found]
            if cursor == 0:
                return

    async def member_negotiations(self, user_id: UserId) -> AsyncIterator[list[Negotiation]]:
        key = f"{self._prefix}:{{offers}}:user:{user_id}"
        cursor = 0
        while True:
            with edge():
                cursor, found = await self._zscan(key, cursor, PAGE)
                async with self._client.pipeline(transaction=False) as pipe:
                    for offer_id, _ in found:
                        pipe.hget(f"{self._prefix}:{{offers}}:n:{as_text(offer_id)}", "body")
                    bodies = await pipe.execute() if found else []
            page = [decode_negotiation(body) for body in bodies if body is not None]
            if page:
                yield page
            if cursor == 0:
                return

    # Erasure.

    def _erasure_key(self, user_id: str) -> str:
        return f"{self._prefix}:{{member:{user_id}}}:erasure"

    async def erasure(self, user_id: UserId) -> Erasure | None:
        with edge():
            found = await self._client.hmget(self._erasure_key(user_id), ["state", "ts"])
        state, ts = cast(list[Any], found)  # redis-py types it loosely
        return None if state is None else Erasure(_erasure_state(state), int(ts))

    async def set_erasure(self, user_id: UserId, state: ErasureState, ts: int) -> Erasure:
        with edge():
            stored, at = await self._set_erasure(
                keys=[self._erasure_key(user_id)], args=[state, ts]
            )
        return Erasure(_erasure_state(stored), int(at))

    async def erase_profile(self, user_id: UserId, placeholder: str) -> None:
        with edge():
            free = await self._erase_profile(keys=[self._user_key(user_id)], args=[placeholder])
            if free:
                await self._free_names(keys=[self._usernames_key()], args=[user_id, "", free])
                await self._client.hdel(self._user_key(user_id), "prev_key")

    async def rename_author(
        self, room: str, user_id: UserId, seqs: Collection[int], name: str
    ) -> None:
        def rename(items: list[Any]) -> bool:
            if items[3] != user_id or items[4] == name:
                return False
            items[4] = name
            return True

        await self._rewrite_bodies(room, [str(seq) for seq in seqs], rename)

    async def _rewrite_bodies(
        self, room: str, seqs: list[str], change: Callable[[list[Any]], bool]
    ) -> None:
        """Apply ``change`` to the bodies of ``seqs``, each stored only if no one else
        changed it meanwhile (read again then). Bodies are written by this
        module's Python (``redis_wire``), so re-encoding one changes only what
        ``change`` changed."""
        [log_key] = self._room_keys(room, "log")
        todo = seqs
        while todo:
            with edge():
                bodies = cast(list[bytes | None], await self._client.hmget(log_key, todo))
            args: list[Any] = []
            for seq, body in zip(todo, bodies, strict=True):
                if body is None:
                    continue
                items = msgpack.unpackb(body)
                if change(items):
                    args += [seq, body, msgpack.packb(items, use_bin_type=True)]
            if not args:
                return
            with edge():
                stale = await self._replace_bodies(keys=[log_key], args=args)
            todo = [as_text(seq) for seq in stale]

    async def drop_room_entries(self, room: str) -> None:
        with edge():
            await self._client.delete(*self._room_keys(room, "log", "msgs", "mod", "idem", "read"))

    async def drop_read_marks(self, user_id: UserId, rooms: Collection[str]) -> None:
        with edge():
            async with self._client.pipeline(transaction=False) as pipe:
                for room in rooms:
                    pipe.hdel(self._room_keys(room, "marks")[0], user_id)
                if rooms:
                    await pipe.execute()

    async def forget_freed(self) -> None:
        pass  # the AOF and RDB files are rewritten by Redis (docs/moderation.md)

    async def _zscan(
        self, key: str, cursor: int, count: int
    ) -> tuple[int, list[tuple[bytes, float]]]:
        cursor, found = await self._client.zscan(key, cursor, count=count)
        return cursor, cast(list[tuple[bytes, float]], found)  # redis-py types it loosely

    async def _index_member_entries(self) -> None:
        """Index the entries of a data set written before the index existed; once."""
        done = f"{self._prefix}:rights:indexed"
        with edge():
            if await self._client.exists(done):
                return
            async for key in self._client.scan_iter(
                match=f"{self._prefix}:{{*}}:log", count=1000, _type="hash"
            ):
                await self._index_log(as_text(key))
            async for key in self._client.scan_iter(
                match=f"{self._prefix}:{{offers}}:likes:*", count=1000, _type="zset"
            ):
                await self._index_likes(as_text(key))
            await self._client.set(done, 1)

    async def _index_log(self, log_key: str) -> None:
        room = log_key[len(self._prefix) + 2 : -len("}:log")]
        cursor = 0
        while True:
            cursor, found = await self._client.hscan(log_key, cursor, count=BACKFILL_BATCH)
            fields = cast(dict[bytes, bytes], found)  # redis-py types it loosely
            by_member: dict[str, dict[str, int]] = {}
            for seq, body in fields.items():
                author_id = _author_of(body)
                if author_id is not None:
                    by_member.setdefault(author_id, {})[as_text(seq)] = int(seq)
            for user_id, seqs in by_member.items():
                await self._client.zadd(self._member_rooms_key(user_id), {room: 0})
                await self._client.zadd(self._by_key(room, user_id), cast(Any, seqs))
            if cursor == 0:
                return

    async def _index_likes(self, likes_key: str) -> None:
        listing_id = likes_key.rpartition(":likes:")[2]
        cursor = 0
        while True:
            cursor, found = await self._zscan(likes_key, cursor, BACKFILL_BATCH)
            for user_id, minus_ts in found:
                liked = f"{self._prefix}:{{offers}}:liked:{as_text(user_id)}"
                await self._client.zadd(liked, {listing_id: -int(minus_ts)}, nx=True)
            if cursor == 0:
                return


def _erasure_state(stored: Any) -> ErasureState:
    return "erased" if stored == b"erased" else "erasing"


def _author_of(body: bytes) -> str | None:
    """The author's id of an entry body (``redis_wire``: the fourth item)."""
    author_id = msgpack.unpackb(body)[3]
    return None if author_id is None else str(author_id)
