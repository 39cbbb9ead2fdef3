"""Presence shared by every hub on one Redis: who watches which room, on a live hub.

Keys (``parley`` is the store's prefix)::

    parley:{room}:present   hash  "<user id>|<hub id>" -> 1, while that hub has
                            a connection of that member in the room
    parley:{room}:watching  hash  "<hub id>" -> how many distinct members watch
                            the room on that hub; public rooms only, no ids
    parley:hub:<hub id>     exists while the hub lives (refreshed, with a TTL)

A hub that dies leaves its fields behind; they stop counting once its key
expires, and are removed by the next ``present`` or ``watchers`` that meets
them. Writes go through one task in order, so a quick leave-then-enter can
never land reversed, and the changes of one moment share one pipeline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from typing import TYPE_CHECKING, Final

from redis.exceptions import RedisError

from parley.server.core.model import UserId
from parley.server.store.base import COUNTED_ROOMS, Presence
from parley.server.store.redis_wire import DOWN, as_text, cancel_firmly, edge

if TYPE_CHECKING:
    from parley.server.store.redis import RedisStore

log = logging.getLogger("parley.store.redis")

HUB_TTL: Final = 15.0  # seconds a hub counts as alive after its last heartbeat
HEARTBEAT: Final = 5.0  # seconds between heartbeats
ENTER_WAIT: Final = 2.0  # longest an enter waits for its write (then it goes on regardless)


class RedisPresence(Presence):
    def __init__(self, store: RedisStore) -> None:
        super().__init__()
        self._store = store
        self.hub_id = secrets.token_hex(8)
        self._dirty: set[tuple[str, str]] = set()
        self._wanted = 0  # generation of the latest change
        self._written = 0  # generation the writer has stored
        self._wake = asyncio.Event()
        self._written_event = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    def _hub_key(self, hub_id: str) -> str:
        return f"{self._store._prefix}:hub:{hub_id}"

    async def start(self) -> None:
        await self._beat()
        self._tasks = [
            asyncio.create_task(self._heartbeat(), name="parley-presence-heartbeat"),
            asyncio.create_task(self._writer(), name="parley-presence-writer"),
        ]

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        for task in self._tasks:
            await cancel_firmly(task)  # the flag ends the loops if redis-py eats the cancel
        self._tasks = []
        with contextlib.suppress(*DOWN, RedisError):
            await self._store._client.delete(self._hub_key(self.hub_id))

    async def enter(self, room: str, user_id: UserId) -> None:
        if self._add(room, user_id, 1):
            generation = self._mark(room, user_id)
            if not room.startswith(COUNTED_ROOMS):  # a count may lag; who is here may not
                await self._wait(generation)

    def leave(self, room: str, user_id: UserId) -> None:
        if self._add(room, user_id, -1):
            self._mark(room, user_id)

    async def present(self, room: str, user_id: UserId) -> bool:
        if self.here(room, user_id):
            return True
        key = self._store._key(room, "present")
        prefix = f"{user_id}|"
        client = self._store._client
        with edge():
            fields = [as_text(f) for f in await client.hkeys(key)]
            # This hub's own fields may lag its count: the count is the truth here.
            own = f"{prefix}{self.hub_id}"
            mine = [f for f in fields if f.startswith(prefix) and f != own]
            if not mine:
                return False
            alive = await self._alive(key, mine, [f[len(prefix) :] for f in mine])
        return any(alive)

    async def watchers(self, room: str) -> int:
        key = self._store._key(room, "watching")
        with edge():
            fields = await self._store._client.hgetall(key)
            counts = {as_text(hub_id): int(n) for hub_id, n in fields.items()}
            # This hub's own count may lag: the one in memory is the truth here.
            counts.pop(self.hub_id, None)
            hubs = list(counts)
            alive = await self._alive(key, hubs, hubs) if hubs else []
        others = sum(counts[hub] for hub, up in zip(hubs, alive, strict=True) if up)
        return self.members_here(room) + others

    async def _alive(self, key: str, fields: list[str], hubs: list[str]) -> list[bool]:
        """Whether each hub lives; the fields of dead ones are removed from ``key``."""
        client = self._store._client
        async with client.pipeline(transaction=False) as pipe:
            for hub_id in hubs:
                pipe.exists(self._hub_key(hub_id))
            alive = [bool(up) for up in await pipe.execute()]
        dead = [field for field, up in zip(fields, alive, strict=True) if not up]
        if dead:
            await client.hdel(key, *dead)
        return alive

    async def wait_written(self) -> None:
        await self._wait(self._wanted)

    async def _wait(self, generation: int) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(ENTER_WAIT):
                while self._written < generation:
                    await self._written_event.wait()

    def _mark(self, room: str, user_id: str) -> int:
        self._dirty.add((room, user_id))
        self._wanted += 1
        self._wake.set()
        return self._wanted

    async def _writer(self) -> None:
        failures = 0
        while not self._stopping:
            await self._wake.wait()
            self._wake.clear()
            generation, dirty, self._dirty = self._wanted, self._dirty, set()
            try:
                counted: set[str] = set()
                async with self._store._client.pipeline(transaction=False) as pipe:
                    for room, user_id in dirty:
                        if room.startswith(COUNTED_ROOMS):
                            counted.add(room)
                            continue
                        key, field = self._store._key(room, "present"), f"{user_id}|{self.hub_id}"
                        if self.here(room, user_id):
                            pipe.hset(key, field, 1)
                        else:
                            pipe.hdel(key, field)
                    for room in counted:
                        key, members = self._store._key(room, "watching"), self.members_here(room)
                        if members:
                            pipe.hset(key, self.hub_id, members)
                        else:
                            pipe.hdel(key, self.hub_id)
                    await pipe.execute()
            except (*DOWN, RedisError) as exc:
                self._dirty |= dirty
                failures += 1
                log.debug("presence: write failed (%s); retrying", exc)
                await asyncio.sleep(min(5.0, 0.05 * 2**failures))
                self._wake.set()
                continue
            failures = 0
            self._written = generation
            self._written_event.set()
            self._written_event.clear()

    async def _beat(self) -> None:
        with contextlib.suppress(*DOWN, RedisError):
            await self._store._client.set(self._hub_key(self.hub_id), 1, ex=int(HUB_TTL))

    async def _heartbeat(self) -> None:
        while not self._stopping:
            await asyncio.sleep(HEARTBEAT)
            await self._beat()
