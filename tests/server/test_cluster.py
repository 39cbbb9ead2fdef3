"""Hubs on a Redis Cluster: a master killed, a busy room's slot moved, under posting.

Each test starts its own cluster (three masters, three replicas, on loopback)
and two ``parley serve`` processes on it. Members post through both hubs and
retry what was not acknowledged with the same ``client_msg_id``; members watch
the room on both hubs. Afterwards: every acknowledged post is in the log once,
under the seq it was acknowledged with, and every watcher saw the room's seqs
without a gap, in order, and was never told to reload.

The scale-out suite of one Redis (``test_scale_out``) runs on the tests'
shared cluster too, at the bottom of this file.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from redis.crc import key_slot

from parley.client import ParleyClient
from tests.server import test_scale_out
from tests.server.test_rolling_restart import Posting, member
from tests.support.hubproc import API_KEY, HubProcess
from tests.support.redis_cluster import RedisCluster
from tests.support.room_log import assert_stored_once_at_ack, watch, whole_log

pytestmark = pytest.mark.slow

ROOM = "listing:L1"


def slot_of(room: str) -> int:
    return key_slot(f"parley:{{{room}}}:seq".encode())  # every key and the channel of room


def listing_on_slot(slot: int) -> str:
    """A listing id whose room lives on ``slot`` (a bounded search)."""
    for n in range(2_000_000):
        if slot_of(f"listing:L{n}") == slot:
            return f"L{n}"
    raise AssertionError(f"no listing id found for slot {slot}")


SLOT = slot_of(ROOM)
SETTINGS: dict[str, Any] = {
    "write_burst": 10_000,
    "member_write_burst": 10_000,
    "drain_window": 0.0,
}


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[RedisCluster]:
    # 2 s: a master starved on a busy machine is not failed over by mistake.
    with RedisCluster(tmp_path / "cluster", node_timeout_ms=2000) as started:
        yield started


class Scene:
    """Two hubs on the cluster, watchers and posters on both, posting under way."""

    def __init__(self, tmp_path: Path, cluster: RedisCluster, listing_id: str = "L1") -> None:
        self.listing_id = listing_id
        self.room = f"listing:{listing_id}"
        self.hubs = [HubProcess(tmp_path, cluster.url, **SETTINGS) for _ in range(2)]
        self.clients: list[ParleyClient] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.watched: list[list[dict[str, Any]]] = []
        self.posting = Posting(self.room)
        self.posters: dict[str, ParleyClient] = {}
        self.streams: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        for hub in self.hubs:
            await asyncio.to_thread(hub.start)
        body = {"seller_id": "s1", "title": "Coat", "price": {"amount": 100, "currency": "CAD"}}
        headers = {"Authorization": f"Bearer {API_KEY}"}
        url = f"{self.hubs[0].api_url}/v1/listings/{self.listing_id}"
        async with aiohttp.ClientSession(headers=headers) as http, http.put(url, json=body) as put:
            assert put.status == 200
        for h, hub in enumerate(self.hubs):  # every watcher before the first post
            for i in range(2):
                watcher = await member(hub, f"w{h}-{i}")
                await watcher.subscribe(self.room)
                self.clients.append(watcher)
                self.watched.append([])
                self.tasks.append(asyncio.create_task(watch(watcher, self.watched[-1])))
        for h, hub in enumerate(self.hubs):
            for i in range(2):
                who = f"p{h}-{i}"
                self.posters[who] = await member(hub, who)
                self.clients.append(self.posters[who])
                self.streams.append(asyncio.create_task(self.posting.post(self.posters[who], who)))

    async def finish(self) -> None:
        """Stop posting; check the log and every watcher."""
        self.posting.stop.set()
        await asyncio.wait_for(asyncio.gather(*self.streams), 60)
        acks = self.posting.acks
        for text, seq in list(acks.items())[::10]:
            who = text.rsplit("-", 1)[0]
            again = await self.posters[who].post(self.room, text, client_msg_id=text)
            assert (again["seq"], again["duplicate"]) == (seq, True), text

        reader = await member(self.hubs[1], "reader")
        self.clients.append(reader)
        log = await whole_log(reader, self.room)
        assert sorted(log) == list(range(1, len(log) + 1)), "the log has a gap"
        assert_stored_once_at_ack(log, acks)

        last = max(acks.values())
        deadline = time.monotonic() + 30
        while any(not seen or seen[-1].get("seq", 0) < last for seen in self.watched):
            assert time.monotonic() < deadline, "a watcher never caught up"
            await asyncio.sleep(0.05)
        for seen in self.watched:
            assert all(e["event"] == "message" for e in seen), "a watcher was told to reload"
            assert [e["seq"] for e in seen][:last] == list(range(1, last + 1))

    async def close(self) -> None:
        for task in self.tasks + self.streams:
            task.cancel()
        for client in self.clients:
            await client.close()
        for hub in self.hubs:
            hub.stop()


@pytest.fixture
async def scene(tmp_path: Path, cluster: RedisCluster) -> AsyncIterator[Scene]:
    running = Scene(tmp_path, cluster)
    try:
        await running.start()
        yield running
    finally:
        await running.close()


async def readyz(hub: HubProcess) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(hub.api_url + "/readyz") as response:
        return response.status, await response.text()


async def test_a_master_killed_mid_stream_loses_no_acknowledged_post_and_leaves_no_gap(
    scene: Scene, cluster: RedisCluster
) -> None:
    await scene.posting.grow(60)
    dead = await asyncio.to_thread(cluster.kill_master_for, f"parley:{{{ROOM}}}:seq")

    # While the shard has no master, /readyz names it.
    said: list[str] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status, text = await readyz(scene.hubs[0])
        if status == 503 and str(dead.port) in text:
            said.append(text)
            break
        await asyncio.sleep(0.05)
    assert said, "/readyz never named the shard that was down"

    await asyncio.to_thread(cluster.wait_failover, SLOT)
    # The promoted replica has no replica of its own: appends there wait for one
    # (wait_replicas=1) and are refused until the old master is back as one.
    await asyncio.to_thread(cluster.restart, dead)
    await scene.posting.grow(60, timeout=60)  # posting goes on, on the promoted replica
    await scene.finish()
    deadline = time.monotonic() + 15
    while (await readyz(scene.hubs[0]))[0] != 200:
        assert time.monotonic() < deadline, "/readyz did not come back after the failover"
        await asyncio.sleep(0.1)


async def test_a_busy_rooms_slot_moved_while_posting_loses_nothing_and_leaves_no_gap(
    scene: Scene, cluster: RedisCluster
) -> None:
    await scene.posting.grow(60)
    source = cluster.master_for_key(f"parley:{{{ROOM}}}:seq")
    target = next(node for node in cluster.masters() if node.port != source.port)
    await asyncio.to_thread(cluster.move_slot, SLOT, target)
    assert cluster.master_for_key(f"parley:{{{ROOM}}}:seq").port == target.port
    await scene.posting.grow(60, timeout=60)
    await scene.finish()


async def test_a_busy_rooms_slot_resharded_with_redis_cli_loses_nothing_and_leaves_no_gap(
    tmp_path: Path, cluster: RedisCluster
) -> None:
    # redis-cli --cluster reshard moves a master's lowest slots first: the room is put
    # on the lowest slot of a master, so that moving one slot moves the busy room.
    first = min(start for node in cluster.view() if node.is_master for start, _ in node.slots)
    scene = Scene(tmp_path, cluster, listing_on_slot(first))
    try:
        await scene.start()
        await scene.posting.grow(60)
        source = cluster.master_for_slot(first)
        target = next(node for node in cluster.masters() if node.port != source.port)
        moved = await asyncio.to_thread(cluster.migrate_slot, first, target)
        assert moved == [first]
        assert cluster.master_for_slot(first).port == target.port
        await scene.posting.grow(60, timeout=60)
        await scene.finish()
    finally:
        await scene.close()


# The scale-out suite, on the shared cluster: the same tests, other hubs.


@pytest.fixture
async def shared_cluster(redis_cluster: RedisCluster) -> RedisCluster:
    await redis_cluster.flushall()
    return redis_cluster


@pytest.fixture
def hubs(tmp_path: Path, shared_cluster: RedisCluster) -> Iterator[list[HubProcess]]:
    with test_scale_out.running_hubs(tmp_path, shared_cluster.url) as started:
        yield started


http = test_scale_out.http
clients = test_scale_out.clients
test_members_on_two_hubs_see_each_others_comments_in_order = (
    test_scale_out.test_members_on_two_hubs_see_each_others_comments_in_order
)
test_an_order_room_spans_both_hubs = test_scale_out.test_an_order_room_spans_both_hubs
test_a_client_that_drops_from_one_hub_resumes_on_the_other = (
    test_scale_out.test_a_client_that_drops_from_one_hub_resumes_on_the_other
)
test_kill_9_of_a_hub_loses_no_acknowledged_post_and_duplicates_none = (
    test_scale_out.test_kill_9_of_a_hub_loses_no_acknowledged_post_and_duplicates_none
)
test_a_deleted_listing_closes_its_room_on_every_hub = (
    test_scale_out.test_a_deleted_listing_closes_its_room_on_every_hub
)
