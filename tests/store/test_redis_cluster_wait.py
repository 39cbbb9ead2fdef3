"""On a cluster, an append is acknowledged only once a replica of the node that
stored it has it, even when it was redirected to another node by a slot move."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Iterator

import pytest
from redis.crc import key_slot

from parley.protocol.errors import ErrorCode, ParleyError
from parley.server.core.model import Author, Draft, UserId
from parley.server.store.redis import RedisStore
from tests.support.redis_cluster import RedisCluster, RedisNode

AUTHOR = Author(UserId("u1"), "alice")


@contextlib.contextmanager
def frozen(node: RedisNode) -> Iterator[None]:
    """The node's process stopped (SIGSTOP): as a replica, it acknowledges nothing."""
    pid = int(node.query("INFO", "server")["process_id"])
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


async def test_an_append_redirected_by_a_slot_move_waits_on_the_node_that_stored_it(
    redis_cluster: RedisCluster,
) -> None:
    await redis_cluster.flushall()
    room = "listing:wait-redirect"
    store = RedisStore(redis_cluster.url + "?wait_replicas=1&wait_timeout_ms=300")
    await store.open()
    try:
        first = await store.append(room, Draft("comment", "before", 1, AUTHOR, "c1"))
        slot = key_slot(f"parley:{{{room}}}:seq".encode())
        source = redis_cluster.master_for_slot(slot)
        target = next(m for m in redis_cluster.masters() if m is not source)
        [target_replica] = [
            r for r in redis_cluster.replicas()
            if r.query("INFO", "replication")["master_port"] == target.port
        ]  # fmt: skip
        # The slot moves; this store still sends the room's appends to the source,
        # which answers MOVED, and the append runs on the target. With the
        # target's only replica frozen, no replica of the node that stored it
        # has it: it must not be acknowledged.
        await asyncio.to_thread(redis_cluster.move_slot, slot, target)
        with frozen(target_replica):
            with pytest.raises(ParleyError) as refused:
                await store.append(room, Draft("comment", "moved", 2, AUTHOR, "c2"))
            assert refused.value.code is ErrorCode.unavailable
        # Stored all the same: the retry gets it once, confirmed now.
        again = await store.append(room, Draft("comment", "moved", 2, AUTHOR, "c2"))
        assert again.entry.seq == first.entry.seq + 1
        after = await store.append(room, Draft("comment", "after", 3, AUTHOR, "c3"))
        assert after.entry.seq == again.entry.seq + 1
        assert [e.text for e in await store.entries_after(room, 0, 10)] == [
            "before",
            "moved",
            "after",
        ]
    finally:
        await store.close()
