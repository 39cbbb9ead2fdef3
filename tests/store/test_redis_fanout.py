"""Redis fan-out between hubs, against a real redis-server that the tests break.

Two ``RedisStore`` instances on one Redis play two hub processes. ``RoomWatcher``
does with a store's announcements what the hub does: feeds them through
``RoomFeed``, fills gaps from the log and re-checks the room on ``on_resync``;
so "no silent loss" is checked end to end, not only "the store reconnected".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest

from parley.server.core.feed import FeedStep, RoomFeed
from parley.server.core.model import Author, Draft, Entry, RoomHead, UserId
from parley.server.store.base import StoreUnavailable
from parley.server.store.redis import RedisStore
from parley.server.store.redis_fanout import RedisFanout
from parley.server.store.redis_presence import RedisPresence
from tests.support.redis_server import RedisServer

ROOM = "listing:l1"
ALICE = Author(UserId("alice"), "Alice")
WAIT = 5.0  # seconds; every wait below ends as soon as its condition holds


def fast_store(url: str, sharded_pubsub: bool | None = None) -> RedisStore:
    """Settings short enough that reconnects and the PING watchdog act within a test."""
    return RedisStore(
        url,
        sharded_pubsub=sharded_pubsub,
        reconnect_min=0.01,
        reconnect_max=0.2,
        ping_interval=0.2,
    )


def comment(text: str) -> Draft:
    return Draft("comment", text, 1, ALICE)


def seqs_of(entries: list[Entry]) -> list[int]:
    return [e.seq for e in entries]


class RoomWatcher:
    """A hub's view of one room: in seq order, gaps filled, resynced on reconnect."""

    def __init__(self, store: RedisStore, room: str) -> None:
        self.store = store
        self.room = room
        self.delivered: list[Entry] = []
        self.resets = 0
        self.resyncs = 0
        self.feed = RoomFeed("", 0)
        self._changed = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self.store.fanout.listener = self._on_entry
        self.store.fanout.on_resync = self._on_resync
        await self.store.fanout.follow(self.room)
        head = await self.store.head(self.room)
        self.feed = RoomFeed(head.epoch, head.seq)

    async def until(self, condition: Callable[[], bool], timeout: float = WAIT) -> None:
        async with asyncio.timeout(timeout):
            while not condition():
                self._changed.clear()
                await self._changed.wait()

    async def resynced(self, after: int) -> None:
        """Wait for a resync beyond the ``after``-th one to have completed."""
        await self.until(lambda: self.resyncs > after)

    @property
    def seqs(self) -> list[int]:
        return [e.seq for e in self.delivered]

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_entry(self, entry: Entry, epoch: str) -> None:
        self._apply(self.feed.accept(entry, epoch))

    def _apply(self, step: FeedStep) -> None:
        self.resets += step.reset
        self.delivered.extend(step.ready)
        if step.fill_after is not None:
            self._spawn(self._fill(step.fill_after))
        self._changed.set()

    async def _fill(self, after: int) -> None:
        for entry in await self.store.entries_after(self.room, after, 1000):
            self._apply(self.feed.accept(entry, self.feed.epoch))

    def _on_resync(self) -> None:
        self._spawn(self._resync())

    async def _resync(self) -> None:
        head = await self.store.head(self.room)
        if head.epoch != self.feed.epoch:
            self.feed = RoomFeed(head.epoch, head.seq)
            self.resets += 1
        else:
            await self._fill(self.feed.last_seq)
        self.resyncs += 1
        self._changed.set()


@pytest.fixture
async def hubs(redis_server: RedisServer) -> AsyncIterator[tuple[RedisStore, RedisStore]]:
    redis_server.start()  # a no-op unless an earlier test left it stopped
    await redis_server.flushall()
    a, b = fast_store(redis_server.url), fast_store(redis_server.url)
    await a.open()
    await b.open()
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


async def test_entries_appended_on_one_hub_reach_the_other_in_seq_order(
    hubs: tuple[RedisStore, RedisStore],
) -> None:
    a, b = hubs
    watcher = RoomWatcher(b, ROOM)
    await watcher.start()
    sequential = [await a.append(ROOM, comment(f"s{i}")) for i in range(10)]
    concurrent = await asyncio.gather(*(a.append(ROOM, comment(f"c{i}")) for i in range(40)))
    await watcher.until(lambda: len(watcher.delivered) == 50)
    assert watcher.seqs == list(range(1, 51))
    assert watcher.delivered == sorted(
        (r.entry for r in [*sequential, *concurrent]), key=lambda e: e.seq
    )
    assert watcher.resets == 0


@pytest.mark.parametrize("sharded", [None, True, False])
async def test_channels_are_sharded_where_the_server_offers_it(
    redis_server: RedisServer, sharded: bool | None
) -> None:
    await redis_server.flushall()
    a = fast_store(redis_server.url, sharded)
    b = fast_store(redis_server.url, sharded)
    await a.open()
    await b.open()
    try:
        watcher = RoomWatcher(b, ROOM)
        await watcher.start()
        await a.append(ROOM, comment("hello"))
        await watcher.until(lambda: watcher.seqs == [1])
        channel = f"parley:{{{ROOM}}}:ch"
        with redis_server.client() as client:
            version = int(str(client.info("server")["redis_version"]).partition(".")[0])
            shard_subscribers = client.execute_command("PUBSUB", "SHARDNUMSUB", channel)[1]
            plain_subscribers = client.pubsub_numsub(channel)[0][1]
        uses_sharded = sharded if sharded is not None else version >= 7
        assert (shard_subscribers, plain_subscribers) == ((1, 0) if uses_sharded else (0, 1))
    finally:
        await a.close()
        await b.close()


async def test_killed_pubsub_connection_reconnects_resyncs_and_loses_nothing(
    hubs: tuple[RedisStore, RedisStore], redis_server: RedisServer
) -> None:
    a, b = hubs
    watcher = RoomWatcher(b, ROOM)
    await watcher.start()
    total = 120

    async def post() -> None:
        for i in range(total):
            await a.append(ROOM, comment(f"m{i}"))
            await asyncio.sleep(0.001)

    poster = asyncio.create_task(post())
    for round_ in range(3):
        wanted = 10 * (round_ + 1)
        await watcher.until(lambda: len(watcher.delivered) > wanted)  # noqa: B023
        with redis_server.client() as client:
            assert client.client_kill_filter(_type="pubsub") >= 1
        await watcher.resynced(round_)
        await b.check()
    await poster
    await watcher.until(lambda: len(watcher.delivered) == total)
    assert watcher.seqs == list(range(1, total + 1))
    assert watcher.resets == 0


async def test_entry_published_while_a_hub_is_deaf_arrives_by_resync(
    hubs: tuple[RedisStore, RedisStore], redis_server: RedisServer
) -> None:
    a, b = hubs
    watcher = RoomWatcher(b, ROOM)
    await watcher.start()
    await a.append(ROOM, comment("heard live"))
    await watcher.until(lambda: watcher.seqs == [1])
    with redis_server.client() as admin:
        connected = admin.info("clients")["connected_clients"]
        # One connection fewer than now: once b's pub/sub connection is cut,
        # its reconnects are refused until the limit is lifted.
        admin.config_set("maxclients", connected - 1)
        try:
            assert admin.client_kill_filter(_type="pubsub") == 1
            # Published while b cannot hear, and nothing after it: only the
            # resync can bring it.
            await a.append(ROOM, comment("published while b was deaf"))
            with pytest.raises(StoreUnavailable):
                await b.check()
        finally:
            admin.config_set("maxclients", 10_000)
    await watcher.resynced(0)
    await watcher.until(lambda: watcher.seqs == [1, 2])
    assert watcher.delivered[1].text == "published while b was deaf"


async def test_silent_connection_is_cut_by_the_ping_watchdog(
    hubs: tuple[RedisStore, RedisStore],
    redis_server: RedisServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    a, b = hubs
    watcher = RoomWatcher(b, ROOM)
    await watcher.start()
    caplog.set_level(logging.WARNING, logger="parley.store.redis")
    # Redis holds every client's commands, PINGs included, as a dead link would.
    with redis_server.client() as client:
        client.execute_command("CLIENT", "PAUSE", 1000, "ALL")
    await watcher.resynced(0)
    assert "no answer to PING" in caplog.text
    await a.append(ROOM, comment("after the pause"))
    await watcher.until(lambda: watcher.seqs == [1])


async def test_redis_down_refuses_writes_then_comes_back_with_its_aof(
    hubs: tuple[RedisStore, RedisStore], redis_server: RedisServer
) -> None:
    a, b = hubs
    watcher = RoomWatcher(b, ROOM)
    await watcher.start()
    for i in range(3):
        await a.append(ROOM, comment(f"before {i}"))
    await watcher.until(lambda: len(watcher.delivered) == 3)
    before = await a.head(ROOM)

    redis_server.stop()
    try:
        with pytest.raises(StoreUnavailable):
            await a.append(ROOM, comment("during the outage"))
        with pytest.raises(StoreUnavailable):
            await a.head(ROOM)
        for store in (a, b):
            with pytest.raises(StoreUnavailable):
                await store.check()
    finally:
        redis_server.start()

    await watcher.resynced(0)
    await b.check()
    after = await a.append(ROOM, comment("after"))
    assert after.entry.seq == 4
    assert await a.head(ROOM) == RoomHead(4, before.epoch)
    await watcher.until(lambda: len(watcher.delivered) == 4)
    assert watcher.seqs == [1, 2, 3, 4]
    assert [e.text for e in await a.entries_after(ROOM, 0, 10)] == [
        "before 0",
        "before 1",
        "before 2",
        "after",
    ]
    assert watcher.resets == 0


async def test_acknowledged_appends_survive_a_redis_crash(
    hubs: tuple[RedisStore, RedisStore], redis_server: RedisServer
) -> None:
    a, b = hubs
    watcher = RoomWatcher(b, ROOM)
    await watcher.start()
    acknowledged = await asyncio.gather(*(a.append(ROOM, comment(f"m{i}")) for i in range(30)))
    redis_server.kill()  # SIGKILL: no shutdown, no last fsync
    redis_server.start()
    await watcher.resynced(0)
    assert seqs_of(await a.entries_after(ROOM, 0, 100)) == list(range(1, 31))
    assert {r.entry.seq for r in acknowledged} == set(range(1, 31))
    assert watcher.resets == 0


async def test_redis_back_without_its_data_gives_rooms_a_new_epoch(
    hubs: tuple[RedisStore, RedisStore],
    redis_server: RedisServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    a, b = hubs
    watcher = RoomWatcher(b, ROOM)
    await watcher.start()
    for i in range(3):
        await a.append(ROOM, comment(f"before {i}"))
    await watcher.until(lambda: len(watcher.delivered) == 3)
    before = await a.head(ROOM)
    caplog.set_level(logging.WARNING, logger="parley.store.redis")

    redis_server.restart(keep_data=False)

    await watcher.resynced(0)
    head = await a.head(ROOM)
    assert head.seq == 0 and head.epoch != before.epoch
    assert watcher.resets == 1 and watcher.feed.epoch == head.epoch
    assert "Redis lost its data" in caplog.text
    # The room starts again from 1 under the new epoch: no old seq is reused
    # under the old one.
    await a.append(ROOM, comment("new life"))
    await watcher.until(lambda: len(watcher.delivered) == 4)
    assert [(e.seq, e.text) for e in watcher.delivered[3:]] == [(1, "new life")]


@pytest.mark.parametrize("noticed_by", ["head", "append"])
async def test_log_behind_what_a_hub_has_seen_gets_a_new_epoch(
    hubs: tuple[RedisStore, RedisStore], redis_server: RedisServer, noticed_by: str
) -> None:
    a, b = hubs
    await a.fanout.follow(ROOM)
    for i in range(5):
        await a.append(ROOM, comment(f"m{i}"))
    before = await a.head(ROOM)
    # Redis restored from an older snapshot: the log ends at 3, same epoch.
    with redis_server.client() as client:
        client.set(f"parley:{{{ROOM}}}:seq", 3)
        client.hdel(f"parley:{{{ROOM}}}:log", "4", "5")
        client.zrem(f"parley:{{{ROOM}}}:msgs", "4", "5")
    if noticed_by == "append":
        assert (await a.append(ROOM, comment("next"))).entry.seq == 4
    head = await a.head(ROOM)
    assert head.epoch != before.epoch
    assert head.seq == (4 if noticed_by == "append" else 3)
    assert await b.head(ROOM) == head


async def test_open_and_check_fail_while_redis_is_down(redis_server: RedisServer) -> None:
    redis_server.stop()
    try:
        store = fast_store(redis_server.url)
        with pytest.raises(StoreUnavailable):
            await store.open()
        await store.close()
    finally:
        redis_server.start()


def test_reconnect_backoff_grows_with_jitter_up_to_its_bound() -> None:
    store = RedisStore("redis://127.0.0.1:1/0", reconnect_min=0.1, reconnect_max=1.0)
    fanout: RedisFanout = store.fanout
    for failures, ceiling in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (50, 1.0)]:
        delays = {fanout._backoff(failures) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1


# Ephemeral events (typing, presence) and public rooms' watcher counts.

TYPING = {"event": "typing", "room": ROOM, "user_id": "alice", "name": "Alice"}


class Heard:
    """What a store's fan-out passes on, entries and ephemeral events, in order."""

    def __init__(self, store: RedisStore) -> None:
        self.items: list[tuple[str, Any]] = []
        self._changed = asyncio.Event()
        store.fanout.listener = lambda entry, _epoch: self._add(("entry", entry.seq))
        store.fanout.ephemeral_listener = lambda room, event: self._add((room, event))

    def _add(self, item: tuple[str, Any]) -> None:
        self.items.append(item)
        self._changed.set()

    async def until(self, count: int) -> None:
        async with asyncio.timeout(WAIT):
            while len(self.items) < count:
                self._changed.clear()
                await self._changed.wait()


async def test_ephemeral_events_reach_every_follower_in_order_and_are_never_stored(
    hubs: tuple[RedisStore, RedisStore],
) -> None:
    a, b = hubs
    heard = Heard(a), Heard(b)
    for store in (a, b):
        await store.fanout.follow(ROOM)
    await a.append(ROOM, comment("before"))
    await a.fanout.publish_ephemeral(ROOM, TYPING)
    await a.append(ROOM, comment("after"))
    for hub in heard:  # the publishing hub hears it too
        await hub.until(3)
        assert hub.items == [("entry", 1), (ROOM, TYPING), ("entry", 2)]
    assert (await b.head(ROOM)).seq == 2
    assert seqs_of(await b.entries_after(ROOM, 0, 10)) == [1, 2]


async def test_only_followers_hear_an_event_and_a_bad_payload_is_dropped(
    hubs: tuple[RedisStore, RedisStore],
    redis_server: RedisServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    a, b = hubs
    heard = Heard(b)
    await b.fanout.follow(ROOM)
    caplog.set_level(logging.WARNING, logger="parley.store.redis")
    channel = f"parley:{{{ROOM}}}:ch"
    with redis_server.client() as client:
        publish = b.fanout._command("PUBLISH")
        client.execute_command(publish, channel, b"\x92\x01\x02")  # an array, not an event
        client.execute_command(publish, channel, b"\xc1")  # not msgpack at all
    await a.fanout.publish_ephemeral("listing:unfollowed", TYPING)
    await a.fanout.publish_ephemeral(ROOM, TYPING)
    await a.append(ROOM, comment("still heard"))
    await heard.until(2)
    assert heard.items == [(ROOM, TYPING), ("entry", 1)]
    assert caplog.text.count("undecodable event") == 2


async def test_watchers_of_a_public_room_add_up_over_live_hubs_and_name_nobody(
    hubs: tuple[RedisStore, RedisStore], redis_server: RedisServer
) -> None:
    a, b = hubs
    assert isinstance(a.presence, RedisPresence) and isinstance(b.presence, RedisPresence)
    for store, user in [(a, "u1"), (a, "u1"), (a, "u2"), (b, "u3")]:
        await store.presence.enter(ROOM, UserId(user))  # u1 twice: two devices
    for store in (a, b):
        await store.presence.wait_written()  # a count is written behind the enter
    assert await a.presence.watchers(ROOM) == 3
    assert await b.presence.watchers(ROOM) == 3
    a.presence.leave(ROOM, UserId("u2"))
    await a.presence.wait_written()
    assert await b.presence.watchers(ROOM) == 2
    watching = f"parley:{{{ROOM}}}:watching"
    with redis_server.client() as client:
        assert client.exists(f"parley:{{{ROOM}}}:present") == 0
        assert client.hgetall(watching) == {
            a.presence.hub_id.encode(): b"1",
            b.presence.hub_id.encode(): b"1",
        }
    # A hub gone stops counting; its field goes with it.
    await a.presence.stop()
    assert await b.presence.watchers(ROOM) == 1
    with redis_server.client() as client:
        assert client.hkeys(watching) == [b.presence.hub_id.encode()]
