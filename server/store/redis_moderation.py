"""Members' blocks and mutes on Redis (``RedisModeration``, mixed into ``RedisStore``).

Key layout (``parley`` is the store's ``key_prefix``; ``{user:<id>}`` is the hash
tag of the member's own room, so a member's lists share its slot)::

    parley:{user:<id>}:blocks   zset  blocked member -> when (ms)
    parley:{user:<id>}:mutes    zset  room -> when (ms)

A bounded addition is one script on the member's one key (``_ADD_LUA``): the
count and the addition are one step whichever hub runs it.

The review queue lives beside the backend's event feed, under its hash tag
``{backend:events}``, so that filing a message's first report and appending
``report.created`` to the feed are one script on one slot (``_FILE_LUA``, which
runs the store's own append after its part)::

    parley:{backend:events}:reports:n        the last queue number given (INCR)
    parley:{backend:events}:reports:by_msg   hash  "<room>\\0<seq>" -> item id
    parley:{backend:events}:reports:open     zset  item id -> queue number
    parley:{backend:events}:reports:resolved zset  item id -> queue number
    parley:{backend:events}:report:<id>      hash  the item (``_ITEM_FIELDS``)
    parley:{backend:events}:report:<id>:who  hash  reporter -> reason
    parley:{backend:events}:report:<id>:flags hash reporter -> their reason, note,
                                             when, and which note of the item is theirs
    parley:{backend:events}:reports:by:<reporter>  zset  item id -> when reported

An erased reporter's flags stand under an ``erased:<random>`` placeholder, their
notes without words (``_FORGET_REPORTER_LUA``, one script per item).

Restrictions are one hash, read whole by every hub at start and on resync::

    parley:{restrictions}:all   hash  member -> restriction (JSON)
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Collection
from typing import TYPE_CHECKING, Any, Final, cast

import orjson

from parley.server.core.model import Draft, UserId
from parley.server.core.moderation import check_room_for_list
from parley.server.core.reports import (
    EVENTS_ROOM,
    MAX_NOTES,
    Filed,
    Flag,
    Report,
    erased_reporter,
    own_report,
)
from parley.server.core.restrictions import Restriction, from_wire, restriction_wire
from parley.server.store.member_lists import LIST_NAMES, MemberLists
from parley.server.store.redis_wire import APPEND_ARGV, as_text, edge, encode_body

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

PAGE: Final = 200  # a member's reports read at once

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


# Run before the store's append script (``_APPEND_LUA``), whose KEYS 1-8 and ARGV
# 1-APPEND_ARGV (16) are the event's append; ARGV 17.. are the report's: prefix of the queue's keys,
# the message's key, new id, reporter, reason, note ('' for none), ts, room, seq,
# author id, snapshot (JSON), notes kept. Returns {9, id, duplicate, reporters,
# reason} unless the report is the message's first: then the append's own reply.
_FILE_PREFIX_LUA: Final = """
local p = ARGV[17]
-- The reporter's own record of the item, and their index of items: the export
-- and the erasure of a reporter read them.
local function own_flag(rk, id, noted)
  redis.call('HSET', rk .. ':flags', ARGV[20], cjson.encode(
    {reason = ARGV[21], note = ARGV[22], ts = tonumber(ARGV[23]), noted = noted}))
  redis.call('ZADD', p .. 'reports:by:' .. ARGV[20], ARGV[23], id)
end
local id = redis.call('HGET', p .. 'reports:by_msg', ARGV[18])
if id then
  local rk = p .. 'report:' .. id
  local first = redis.call('HGET', rk .. ':who', ARGV[20])
  if first then
    return {9, id, 1, tonumber(redis.call('HGET', rk, 'reporters')), first}
  end
  redis.call('HSET', rk .. ':who', ARGV[20], ARGV[21])
  local reporters = redis.call('HINCRBY', rk, 'reporters', 1)
  local reasons = cjson.decode(redis.call('HGET', rk, 'reasons'))
  reasons[ARGV[21]] = (reasons[ARGV[21]] or 0) + 1
  redis.call('HSET', rk, 'reasons', cjson.encode(reasons), 'updated', ARGV[23])
  local noted = 0
  if ARGV[22] ~= '' and tonumber(redis.call('HGET', rk, 'noted')) < tonumber(ARGV[28]) then
    noted = redis.call('HINCRBY', rk, 'noted', 1)
    redis.call('HSET', rk, 'note:' .. noted,
               cjson.encode({reason = ARGV[21], note = ARGV[22], ts = tonumber(ARGV[23])}))
  end
  own_flag(rk, id, noted)
  if redis.call('HGET', rk, 'state') ~= 'open' then
    redis.call('HSET', rk, 'state', 'open')
    redis.call('ZREM', p .. 'reports:resolved', id)
    redis.call('ZADD', p .. 'reports:open', redis.call('HGET', rk, 'n'), id)
  end
  return {9, id, 0, reporters, ARGV[21]}
end
id = ARGV[19]
local rk = p .. 'report:' .. id
local n = redis.call('INCR', p .. 'reports:n')
redis.call('HSET', p .. 'reports:by_msg', ARGV[18], id)
redis.call('HSET', rk, 'n', n, 'room', ARGV[24], 'seq', ARGV[25], 'author', ARGV[26],
           'snapshot', ARGV[27], 'state', 'open', 'created', ARGV[23], 'updated', ARGV[23],
           'reporters', 1, 'reasons', cjson.encode({[ARGV[21]] = 1}), 'noted', 0)
if ARGV[22] ~= '' then
  redis.call('HSET', rk, 'noted', 1, 'note:1',
             cjson.encode({reason = ARGV[21], note = ARGV[22], ts = tonumber(ARGV[23])}))
end
redis.call('HSET', rk .. ':who', ARGV[20], ARGV[21])
own_flag(rk, id, ARGV[22] ~= '' and 1 or 0)
redis.call('ZADD', p .. 'reports:open', n, id)
"""


# KEYS item, item:who, item:flags, the reporter's index; ARGV reporter, placeholder,
# item id.
# The reporter's flag in the item goes to the placeholder without its note, the
# note in the item's notes loses its words; returns 1 when done, 0 when not there.
_FORGET_REPORTER_LUA: Final = """
local raw = redis.call('HGET', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[3])
if not raw then
  return 0
end
local flag = cjson.decode(raw)
if flag.noted > 0 then
  local field = 'note:' .. flag.noted
  local note = cjson.decode(redis.call('HGET', KEYS[1], field))
  local kept = {reason = note.reason, note = cjson.null, ts = note.ts}
  redis.call('HSET', KEYS[1], field, cjson.encode(kept))
end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[2], flag.reason)
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HSET', KEYS[3], ARGV[2], cjson.encode({reason = flag.reason, ts = flag.ts, noted = 0}))
return 1
"""


# KEYS item, open, resolved; ARGV id, resolution (JSON), ts. Returns 1 when resolved now.
_RESOLVE_LUA: Final = """
if redis.call('HGET', KEYS[1], 'state') ~= 'open' then
  return 0
end
redis.call('HSET', KEYS[1], 'state', 'resolved', 'resolution', ARGV[2], 'updated', ARGV[3])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], redis.call('HGET', KEYS[1], 'n'), ARGV[1])
return 1
"""


class RedisModeration(MemberLists):
    """The blocks and mutes part of ``RedisStore``; ``_init_moderation`` registers
    its scripts."""

    _client: Redis
    _prefix: str
    _seen: dict[str, tuple[str, int]]

    if TYPE_CHECKING:  # provided by RedisStore

        def _room_keys(self, room: str, *parts: str) -> list[str]: ...

        def _key(self, room: str, part: str) -> str: ...

        def _sharded(self) -> bool: ...

    def _init_moderation(self, append_lua: str) -> None:
        register = self._client.register_script
        self._add_to_list_script: AsyncScript = register(_ADD_LUA)
        self._file_report: AsyncScript = register(_FILE_PREFIX_LUA + append_lua)
        self._resolve_report: AsyncScript = register(_RESOLVE_LUA)
        self._forget_reporter: AsyncScript = register(_FORGET_REPORTER_LUA)

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

    async def _clear_lists(self, user_id: str) -> None:
        with edge():  # both keys under the member's hash tag: one slot
            await self._client.delete(*(self._member_key(user_id, part) for part in LIST_NAMES))

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

    # Reports.

    def _queue_key(self, part: str) -> str:
        return self._key(EVENTS_ROOM, part)

    async def file_report(
        self,
        report_id: str,
        snapshot: dict[str, Any],
        flag: Flag,
        event: Draft,
    ) -> Filed:
        events_room = EVENTS_ROOM
        known_epoch, known_seq = self._seen.get(events_room, ("", 0))
        append_args: list[Any] = [
            secrets.token_hex(8), known_epoch, known_seq, encode_body(event), "s", "", b"",
            f"\0{event.client_msg_id}", self._key(events_room, "ch"),
            "SPUBLISH" if self._sharded() else "PUBLISH", "",
        ]  # fmt: skip
        append_args += [""] * (APPEND_ARGV - len(append_args))  # the report's follow them
        room, seq = snapshot["room"], snapshot["seq"]
        report_args: list[Any] = [
            self._key(events_room, ""), f"{room}\0{seq}", report_id, flag.reporter,
            flag.reason, flag.note or "", flag.ts, room, seq, snapshot["author"]["id"],
            orjson.dumps(snapshot), MAX_NOTES,
        ]  # fmt: skip
        keys = self._room_keys(events_room, "seq", "epoch", "log", "msgs", "mod", "idem",
                               "closed", "read")  # fmt: skip
        with edge():
            reply = await self._file_report(keys=keys, args=[*append_args, *report_args])
        if reply[0] == 9:
            _, found_id, duplicate, reporters, reason = reply
            return Filed(as_text(found_id), duplicate=bool(duplicate), created=False,
                         reporters=int(reporters), reason=as_text(reason))  # fmt: skip
        return Filed(report_id, duplicate=False, created=True, reporters=1, reason=flag.reason)

    async def get_report(self, report_id: str) -> Report | None:
        with edge():
            fields = await self._client.hgetall(self._queue_key(f"report:{report_id}"))
        return None if not fields else _report(report_id, cast(dict[bytes, bytes], fields))

    async def reports(self, state: str, after: int, limit: int) -> list[Report]:
        if limit <= 0:
            return []
        with edge():
            found = await self._client.zrangebyscore(
                self._queue_key(f"reports:{state}"), f"({after}", "+inf", start=0, num=limit
            )
            ids = [as_text(i) for i in cast(list[bytes], found)]
            if not ids:
                return []
            async with self._client.pipeline(transaction=False) as pipe:
                for report_id in ids:
                    pipe.hgetall(self._queue_key(f"report:{report_id}"))
                rows: list[Any] = await pipe.execute()
        return [_report(i, fields) for i, fields in zip(ids, rows, strict=True) if fields]

    async def resolve_report(self, report_id: str, resolution: dict[str, Any]) -> Report | None:
        keys = [
            self._queue_key(f"report:{report_id}"),
            self._queue_key("reports:open"),
            self._queue_key("reports:resolved"),
        ]
        with edge():
            await self._resolve_report(
                keys=keys, args=[report_id, orjson.dumps(resolution), resolution["ts"]]
            )
        return await self.get_report(report_id)

    async def member_reports(self, user_id: UserId) -> AsyncIterator[list[dict[str, Any]]]:
        index = self._queue_key(f"reports:by:{user_id}")
        start = 0
        while True:
            with edge():
                found = await self._client.zrange(index, start, start + PAGE - 1)
                ids = [as_text(i) for i in cast(list[bytes], found)]
                async with self._client.pipeline(transaction=False) as pipe:
                    for report_id in ids:
                        key = self._queue_key(f"report:{report_id}")
                        pipe.hmget(key, ["room", "seq"])
                        pipe.hget(f"{key}:flags", user_id)
                    replies: list[Any] = await pipe.execute()
            page = [
                own_report(report_id, as_text(where[0]), int(where[1]), orjson.loads(flag))
                for report_id, where, flag in zip(ids, replies[::2], replies[1::2], strict=True)
                if flag is not None and where[0] is not None
            ]
            if page:
                yield page
            if len(ids) < PAGE:
                return
            start += PAGE

    async def forget_reporter(self, user_id: UserId, limit: int) -> int:
        index = self._queue_key(f"reports:by:{user_id}")
        with edge():
            found = await self._client.zrange(index, 0, limit - 1)
            for report_id in (as_text(i) for i in cast(list[bytes], found)):
                key = self._queue_key(f"report:{report_id}")
                placeholder = erased_reporter(secrets.token_hex(8))
                await self._forget_reporter(
                    keys=[key, f"{key}:who", f"{key}:flags", index],
                    args=[user_id, placeholder, report_id],
                )
        return len(found)

    # Restrictions.

    def _restrictions_key(self) -> str:
        return f"{self._prefix}:{{restrictions}}:all"

    async def put_restriction(self, restriction: Restriction) -> None:
        with edge():
            await self._client.hset(
                self._restrictions_key(),
                restriction.user_id,
                orjson.dumps(restriction_wire(restriction)),
            )

    async def delete_restriction(self, user_id: UserId) -> bool:
        with edge():
            return bool(await self._client.hdel(self._restrictions_key(), user_id))

    async def get_restriction(self, user_id: UserId) -> Restriction | None:
        with edge():
            raw = await self._client.hget(self._restrictions_key(), user_id)
        return None if raw is None else from_wire(orjson.loads(raw))

    async def restrictions(self, now_ms: int) -> list[Restriction]:
        with edge():
            found = await self._client.hgetall(self._restrictions_key())
        every = [from_wire(orjson.loads(raw)) for raw in cast(dict[bytes, bytes], found).values()]
        return sorted((r for r in every if r.active_at(now_ms)), key=lambda r: r.user_id)


def _report(report_id: str, fields: dict[bytes, bytes]) -> Report:
    notes = [
        orjson.loads(fields[f"note:{i}".encode()]) for i in range(1, int(fields[b"noted"]) + 1)
    ]
    resolution = fields.get(b"resolution")
    return Report(
        id=report_id,
        number=int(fields[b"n"]),
        room=as_text(fields[b"room"]),
        seq=int(fields[b"seq"]),
        author_id=UserId(as_text(fields[b"author"])),
        snapshot=orjson.loads(fields[b"snapshot"]),
        state=as_text(fields[b"state"]),
        created_ts=int(fields[b"created"]),
        updated_ts=int(fields[b"updated"]),
        reporters=int(fields[b"reporters"]),
        reasons=orjson.loads(fields[b"reasons"]),
        notes=notes,
        resolution=None if resolution is None else orjson.loads(resolution),
    )
