"""The cluster harness itself (``tests/support/redis_cluster.py``), on real processes.

It starts healthy; a key acknowledged by a replica (``WAIT 1``) survives its
master's ``kill -9`` and the automatic failover; a slot moved by hand
(``move_slot``) or by ``redis-cli --cluster reshard`` (``migrate_slot``) while a
thread writes to it loses none of the acknowledged writes.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.redis_cluster import SLOTS, RedisCluster, RedisNode, hash_tag_for_slot

PRELOAD = 1000  # keys in the slot before it moves
MAX_WRITES = 2000  # the writer's bound, with WRITER_SECONDS
WRITER_SECONDS = 10.0


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[RedisCluster]:
    """A cluster for one test that kills nodes or moves slots."""
    with RedisCluster(tmp_path / "cluster") as cluster:
        yield cluster


def test_the_shared_cluster_is_healthy_with_three_masters_and_three_replicas(
    redis_cluster: RedisCluster,
) -> None:
    redis_cluster.wait_healthy(timeout=5)
    masters, replicas = redis_cluster.masters(), redis_cluster.replicas()
    assert len(masters) == 3
    assert len(replicas) == 3
    seeds = redis_cluster.url.removeprefix("redis+cluster://").removesuffix("/").split(",")
    assert sorted(seeds) == sorted(f"127.0.0.1:{m.port}" for m in masters)
    assert 6379 not in {node.port for node in redis_cluster.nodes}
    view = {v.node_id: v for v in redis_cluster.view()}
    assert sum(end - start + 1 for m in masters for start, end in view[m.node_id].slots) == SLOTS
    assert {view[r.node_id].master_id for r in replicas} == {m.node_id for m in masters}
    slot = redis_cluster.slot_of("{harness}:a")
    assert redis_cluster.master_for_key("{harness}:a") is redis_cluster.master_for_slot(slot)
    with redis_cluster.client() as client:
        client.set("{harness}:a", "1")
        assert client.get("{harness}:a") == b"1"


async def test_flushall_empties_every_master(redis_cluster: RedisCluster) -> None:
    with redis_cluster.client() as client:
        for n in range(30):  # spread over the three shards
            client.set(f"flush-{n}", "x")
    await redis_cluster.flushall()
    for master in redis_cluster.masters():
        assert master.query("DBSIZE") == 0


def test_a_failed_start_kills_every_node_it_started(tmp_path: Path) -> None:
    cluster = RedisCluster(tmp_path / "cluster")
    broken = cluster.nodes[3]
    broken.data_dir.mkdir(parents=True)
    (broken.data_dir / "nodes.conf").write_text("not a cluster configuration\n")
    with pytest.raises(RuntimeError, match="exited at start"):
        cluster.start()
    assert not any(node.running for node in cluster.nodes)
    for node in cluster.nodes[:3]:  # started before the failure, killed after it
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", node.port), timeout=1).close()
    cluster.close()


@pytest.mark.slow
def test_a_replicated_key_survives_its_masters_kill_9_and_the_failover(
    own_cluster: RedisCluster,
) -> None:
    key = "{failover}:k"
    slot = own_cluster.slot_of(key)
    with own_cluster.client() as client:
        node = client.get_node_from_key(key)
        # SET and WAIT on one connection: WAIT counts that connection's writes.
        with client.get_redis_connection(node).pipeline(transaction=False) as pipe:
            pipe.set(key, "kept")
            pipe.execute_command("WAIT", 1, 1000)
            _, replicated = pipe.execute()
    assert replicated >= 1

    master = own_cluster.master_for_slot(slot)
    replica = next(
        r for r in own_cluster.replicas() if _master_id(own_cluster, r) == master.node_id
    )
    dead = own_cluster.kill_master_for(key)
    assert dead is master and not dead.running
    promoted = own_cluster.wait_failover(slot)
    assert promoted is replica
    with own_cluster.client() as client:
        assert client.get(key) == b"kept"

    own_cluster.restart(dead)
    assert dead in own_cluster.replicas()
    assert _master_id(own_cluster, dead) == promoted.node_id
    assert own_cluster.master_for_slot(slot) is promoted


@pytest.mark.slow
@pytest.mark.parametrize("how", ["move_slot", "migrate_slot"])
def test_a_slot_moved_under_writes_keeps_every_acknowledged_write(
    own_cluster: RedisCluster, how: str
) -> None:
    source = own_cluster.masters()[0]
    first = min(start for start, _ in _slots(own_cluster, source))
    slot = first + 2  # migrate_slot moves every slot of the source up to it: three
    target = next(m for m in own_cluster.masters() if m is not source)
    tag = hash_tag_for_slot(slot)
    with own_cluster.client() as client:
        with client.pipeline() as pipe:
            for n in range(PRELOAD):
                pipe.set(f"{{{tag}}}:k{n}", "old")
            pipe.execute()
        writer = Writer(own_cluster, tag)
        writer.start()
        try:
            writer.wait_for(20)
            before = len(writer.acked)
            if how == "move_slot":
                own_cluster.move_slot(slot, target, batch=10)
            else:
                assert own_cluster.migrate_slot(slot, target) == [first, first + 1, slot]
            during = len(writer.acked) - before
            writer.wait_for(len(writer.acked) + 20)  # and writes go on after the move
        finally:
            writer.stop.set()
            writer.join(WRITER_SECONDS + 5)
        assert not writer.is_alive()

        assert writer.errors == []
        assert during > 0, "no write was acknowledged while the slot moved"
        assert own_cluster.master_for_slot(slot) is target
        assert source.query("CLUSTER", "COUNTKEYSINSLOT", slot) == 0
        written = len(writer.acked)
        assert target.query("CLUSTER", "COUNTKEYSINSLOT", slot) == max(PRELOAD, written)
        values = client.mget([f"{{{tag}}}:k{n}" for n in range(max(PRELOAD, written))])
    for n, value in enumerate(values):
        assert value == (f"new-{n}".encode() if n < written else b"old"), n
    own_cluster.wait_healthy(timeout=10)


class Writer(threading.Thread):
    """Writes ``{tag}:k0``, ``{tag}:k1``, ... in order, one at a time, until told to
    stop, MAX_WRITES writes or WRITER_SECONDS seconds; keeps what was acknowledged."""

    def __init__(self, cluster: RedisCluster, tag: str) -> None:
        super().__init__(daemon=True)
        self.client = cluster.client()
        self.tag = tag
        self.acked: list[int] = []
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.progress = threading.Condition()

    def run(self) -> None:
        deadline = time.monotonic() + WRITER_SECONDS
        try:
            for n in range(MAX_WRITES):
                if self.stop.is_set() or time.monotonic() > deadline:
                    return
                try:
                    self.client.set(f"{{{self.tag}}}:k{n}", f"new-{n}")
                except Exception as exc:
                    self.errors.append(f"k{n}: {type(exc).__name__}: {exc}")
                    return
                with self.progress:
                    self.acked.append(n)
                    self.progress.notify_all()
        finally:
            self.client.close()
            with self.progress:
                self.progress.notify_all()

    def wait_for(self, count: int) -> None:
        """Until ``count`` writes are acknowledged (or the writer ended)."""
        with self.progress:
            self.progress.wait_for(
                lambda: len(self.acked) >= count or not self.is_alive(), WRITER_SECONDS
            )


def _slots(cluster: RedisCluster, node: RedisNode) -> list[tuple[int, int]]:
    return next(v.slots for v in cluster.view() if v.node_id == node.node_id)


def _master_id(cluster: RedisCluster, node: RedisNode) -> str | None:
    return next(v.master_id for v in cluster.view() if v.node_id == node.node_id)
