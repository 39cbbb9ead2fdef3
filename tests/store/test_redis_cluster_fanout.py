"""The fan-out on a Redis Cluster: a room subscribed on a shard that does not own its
slot is let go at once and subscribed again where it lives, then the hub resyncs."""

from __future__ import annotations

import asyncio

from redis.crc import key_slot

from parley.server.core.model import Author, Draft, Entry, UserId
from parley.server.store.redis import RedisStore
from parley.server.store.redis_cluster import ClusterFanout, as_cluster, shard_name
from tests.support.redis_cluster import RedisCluster

ROOM = "listing:refused-here"
ALICE = Author(UserId("alice"), "Alice")
PATIENCE = 10.0  # seconds: a bound on waits that end as soon as their condition holds


async def test_a_subscription_refused_with_moved_is_rerouted_without_waiting_for_a_timeout(
    redis_cluster: RedisCluster,
) -> None:
    await redis_cluster.flushall()
    # Confirmations that never come would hold follow() this long: far over PATIENCE.
    store = RedisStore(redis_cluster.url, socket_timeout=60.0)
    await store.open()
    try:
        fanout = store.fanout
        assert isinstance(fanout, ClusterFanout)
        resynced = asyncio.Event()
        heard: list[Entry] = []
        fanout.on_resync = resynced.set
        fanout.listener = lambda entry, epoch: heard.append(entry)
        # The client's topology is stale, as when the node it asked has not yet
        # learnt of a slot move: it takes another master for the room's owner.
        cluster = as_cluster(store._client)
        slot = key_slot(f"parley:{{{ROOM}}}:ch".encode())
        owner = redis_cluster.master_for_slot(slot)
        other = next(m for m in redis_cluster.masters() if m is not owner)
        stale = cluster.get_node(host="127.0.0.1", port=other.port)
        assert stale is not None
        cluster.nodes_manager.slots_cache[slot] = [stale]

        # That master answers MOVED: the room is let go at once, not after the
        # confirmation's timeout, and the fan-out subscribes it on the owner.
        await asyncio.wait_for(fanout.follow(ROOM), PATIENCE)
        await asyncio.wait_for(resynced.wait(), PATIENCE)
        assert fanout.follows(ROOM)
        assert fanout._room_shard[ROOM] == f"127.0.0.1:{owner.port}"
        assert shard_name(fanout._owner(ROOM)) == f"127.0.0.1:{owner.port}"
        assert fanout.reconnects == 0  # no link dropped for want of a confirmation

        appended = await store.append(ROOM, Draft("comment", "heard", 1, ALICE))
        async with asyncio.timeout(PATIENCE):
            while not heard:
                await asyncio.sleep(0.01)
        assert [e.seq for e in heard] == [appended.entry.seq]
    finally:
        await store.close()


async def test_a_room_followed_again_before_its_unsubscribe_was_answered_is_not_taken_for_moved(
    redis_cluster: RedisCluster,
) -> None:
    await redis_cluster.flushall()
    store = RedisStore(redis_cluster.url)
    await store.open()
    try:
        fanout = store.fanout
        assert isinstance(fanout, ClusterFanout)
        heard: list[Entry] = []
        fanout.listener = lambda entry, epoch: heard.append(entry)
        # Another room on the same shard keeps the shard's link open.
        owner = shard_name(fanout._owner(ROOM))
        neighbour = next(
            room
            for room in (f"user:n{n}" for n in range(10_000))
            if shard_name(fanout._owner(room)) == owner
        )
        await fanout.follow(neighbour)
        await fanout.follow(ROOM)
        # The room's last watcher leaves and another comes at once (a reconnect):
        # the answer to the unsubscribe arrives once the room is followed again.
        await asyncio.wait_for(asyncio.gather(fanout.unfollow(ROOM), fanout.follow(ROOM)), PATIENCE)
        appended = await store.append(ROOM, Draft("comment", "heard", 1, ALICE))
        async with asyncio.timeout(PATIENCE):
            while not heard:
                await asyncio.sleep(0.01)
        assert [e.seq for e in heard] == [appended.entry.seq]
        assert fanout._reroute_task is None  # nothing was taken for a slot move
    finally:
        await store.close()
