"""Redis's "not now" answers become ``StoreUnavailable``, and nothing is stored;
once Redis is back, the first calls work."""

from __future__ import annotations

import asyncio

import pytest
from redis.exceptions import ResponseError

from parley.server.core.model import AppendResult, Author, Draft, UserId
from parley.server.store.base import StoreUnavailable
from parley.server.store.redis import APPEND_BATCH, RedisStore
from tests.support.redis_server import RedisServer

ROOM = "listing:l1"
ALICE = Author(UserId("alice"), "Alice")


@pytest.fixture
def store(redis_store: RedisStore) -> RedisStore:
    return redis_store


async def test_out_of_memory_refuses_the_append_before_it_stores_anything(
    store: RedisStore, redis_server: RedisServer
) -> None:
    await store.append(ROOM, Draft("comment", "fits", 1, ALICE))
    with redis_server.client() as admin:
        admin.config_set("maxmemory", "1")  # with noeviction, every write is refused
        try:
            with pytest.raises(StoreUnavailable):
                await store.append(ROOM, Draft("comment", "does not fit", 2, ALICE))
        finally:
            admin.config_set("maxmemory", "0")
    assert [e.text for e in await store.entries_after(ROOM, 0, 10)] == ["fits"]
    assert (await store.append(ROOM, Draft("comment", "fits again", 3, ALICE))).entry.seq == 2


async def test_a_replica_refuses_writes_as_unavailable(
    store: RedisStore, redis_server: RedisServer
) -> None:
    with redis_server.client() as admin:
        # A replica of nothing answers READONLY to writes, as after a failover
        # that left the hubs pointing at a replica.
        admin.execute_command("REPLICAOF", "127.0.0.1", "1")
        try:
            with pytest.raises(StoreUnavailable):
                await store.append(ROOM, Draft("comment", "hello", 1, ALICE))
        finally:
            admin.execute_command("REPLICAOF", "NO", "ONE")
    assert await store.entries_after(ROOM, 0, 10) == []


async def test_first_calls_after_a_redis_restart_use_fresh_connections(
    store: RedisStore, redis_server: RedisServer
) -> None:
    # Several pooled connections, all closed by the restart.
    await asyncio.gather(
        *(store.append(ROOM, Draft("comment", f"m{i}", 1, ALICE)) for i in range(8))
    )
    # In a thread, so that the loop sees the connections close, as a hub's would.
    await asyncio.to_thread(redis_server.restart)
    results = await asyncio.gather(
        *(store.append(ROOM, Draft("comment", f"n{i}", 2, ALICE)) for i in range(8))
    )
    assert sorted(r.entry.seq for r in results) == list(range(9, 17))


async def test_appends_after_redis_lost_its_scripts_load_them_again_and_store_once(
    store: RedisStore, redis_server: RedisServer
) -> None:
    await store.append(ROOM, Draft("comment", "before", 1, ALICE))
    with redis_server.client() as admin:
        admin.script_flush()  # as after a restart without persistence of scripts
    results = await asyncio.gather(
        *(store.append(ROOM, Draft("comment", f"after {i}", 2, ALICE)) for i in range(5))
    )
    assert [r.entry.seq for r in results] == [2, 3, 4, 5, 6]
    entries = await store.entries_after(ROOM, 0, 10)
    assert [e.text for e in entries] == ["before"] + [f"after {i}" for i in range(5)]


async def test_an_append_that_fails_leaves_the_others_of_its_batch_stored(
    store: RedisStore, redis_server: RedisServer
) -> None:
    broken = "listing:broken"
    with redis_server.client() as admin:
        admin.hset(f"parley:{{{broken}}}:seq", "not", "a counter")  # INCR fails on it
    # One loop iteration: one pipeline, the good appends before and after the bad one.
    results = await asyncio.gather(
        store.append(ROOM, Draft("comment", "before", 1, ALICE)),
        store.append(broken, Draft("comment", "refused", 1, ALICE)),
        store.append(ROOM, Draft("comment", "after", 1, ALICE)),
        return_exceptions=True,
    )
    assert isinstance(results[1], ResponseError) and "WRONGTYPE" in str(results[1])
    assert [r.entry.seq for r in (results[0], results[2]) if isinstance(r, AppendResult)] == [1, 2]
    assert [e.text for e in await store.entries_after(ROOM, 0, 10)] == ["before", "after"]


async def test_a_burst_longer_than_a_batch_is_stored_whole_in_order(store: RedisStore) -> None:
    count = APPEND_BATCH * 2 + 7
    rooms = [f"listing:r{i % 3}" for i in range(count)]
    results = await asyncio.gather(
        *(
            store.append(room, Draft("comment", f"m{i}", 1, ALICE, client_msg_id=f"c{i}"))
            for i, room in enumerate(rooms)
        )
    )
    for r in range(3):
        seqs = [
            res.entry.seq for res, room in zip(results, rooms, strict=True) if room.endswith(str(r))
        ]
        assert seqs == list(range(1, len(seqs) + 1))
    again = await store.append("listing:r0", Draft("comment", "m0", 1, ALICE, client_msg_id="c0"))
    assert again.duplicate and again.entry.seq == 1
