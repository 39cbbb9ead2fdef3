"""A real Redis Cluster the tests own: three masters, one replica each, on loopback.

Six ``redis-server`` processes on free ports (data port and cluster bus port,
never 6379), each in its own directory, joined with ``redis-cli --cluster
create``. Tests kill a master with SIGKILL and wait for its replica's
automatic promotion, bring the dead node back (it rejoins as a replica), and
move a slot while clients write to it, either with the manual migration
(``move_slot``) or with ``redis-cli --cluster reshard`` (``migrate_slot``).

Settings, chosen for fast and durable tests:

- ``cluster-node-timeout`` 1000 ms: a dead master is flagged after about a
  second, and its replica is promoted a second or two later.
- ``cluster-replica-validity-factor 0``: a replica is always promotable, however
  long ago it last heard from its master.
- ``appendfsync always`` and no RDB snapshots, as ``redis_server.py``: every
  acknowledged write is on disk, and a restarted node replays only its AOF.
- ``repl-diskless-sync-delay 0``: a replica's full sync starts at once (Redis 7
  waits 5 s by default for more replicas to share the transfer).
- ``cluster-require-full-coverage`` is left at ``yes`` (Redis's default): while
  a dead master's slots have no owner, every node answers ``CLUSTERDOWN``.

Every wait is bounded; a timeout raises with the tail of every node's log.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import redis
import redis.asyncio
import redis.cluster
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.retry import Retry

from tests.support.redis_server import RedisServer, free_port

SLOTS = 16384
NODE_TIMEOUT_MS = 1000
READY_TIMEOUT = 30.0  # seconds for the cluster to form, or to heal after a change
FAILOVER_TIMEOUT = 30.0  # seconds for a replica to replace a dead master
CLI_TIMEOUT = 120.0  # seconds for one redis-cli --cluster command
MIGRATE_TIMEOUT_MS = 10_000  # MIGRATE's own timeout, per batch
POLL = 0.05  # seconds between two looks at the cluster


def find_redis_cli() -> str:
    path = shutil.which("redis-cli")
    if path is None:
        raise RuntimeError(
            "redis-cli is not on PATH; the cluster tests need it to create and "
            "reshard their cluster. Install it with scripts/ensure-redis"
        )
    return path


def hash_tag_for_slot(slot: int) -> str:
    """A short string whose hash slot is ``slot``: keys ``{tag}:...`` all live there."""
    if not 0 <= slot < SLOTS:
        raise ValueError(f"no slot {slot}")
    for n in range(1_000_000):  # every slot is reached long before this
        tag = f"t{n}"
        if key_slot(tag.encode()) == slot:
            return tag
    raise RuntimeError(f"no tag found for slot {slot}")


class RedisNode(RedisServer):
    """One ``redis-server`` of the cluster; ``start`` after a kill keeps its port and
    its ``nodes.conf``, so it comes back as the same node (same ``node_id``)."""

    def __init__(
        self, data_dir: Path, *, port: int, bus_port: int, node_timeout_ms: int = NODE_TIMEOUT_MS
    ) -> None:
        super().__init__(data_dir, port=port)
        self._may_move = True  # picked by the cluster, which meets its nodes once they run
        self.bus_port = bus_port
        self.node_timeout_ms = node_timeout_ms
        self.node_id = ""  # read from the node once it runs

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def server_args(self) -> list[str]:
        return [
            *super().server_args(),
            "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf",
            "--cluster-port", str(self.bus_port),
            "--cluster-node-timeout", str(self.node_timeout_ms),
            "--cluster-replica-validity-factor", "0",
            "--repl-diskless-sync-delay", "0",
        ]  # fmt: skip

    def _move(self) -> None:
        self.port, self.bus_port = unique_free_ports(2)

    def start(self) -> None:
        """Start the node and wait until it answers PING; a no-op if it runs."""
        if self.running:
            return
        super().start()
        self.node_id = str(self.query("CLUSTER", "MYID"))

    def client(self, *, decode_responses: bool = False) -> redis.Redis:
        """A client of this node alone, which never retries: a refused connection
        fails at once (redis-py's default retries back off for seconds)."""
        return redis.Redis(
            host="127.0.0.1",
            port=self.port,
            decode_responses=decode_responses,
            socket_timeout=5,
            socket_connect_timeout=2,
            retry=Retry(NoBackoff(), 0),
        )

    def query(self, *args: str | int) -> Any:
        """One command on this node alone (no redirection), its reply decoded."""
        with self.client(decode_responses=True) as client:
            return client.execute_command(*args)

    def log_tail(self, lines: int = 15) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<RedisNode {self.address} {self.node_id[:8] or '?'} {state}>"


@dataclass
class NodeView:
    """One line of ``CLUSTER NODES``: a node as one member of the cluster sees it."""

    node_id: str
    port: int
    flags: frozenset[str]
    master_id: str | None
    slots: list[tuple[int, int]] = field(default_factory=list)  # inclusive ranges

    @property
    def is_master(self) -> bool:
        return "master" in self.flags

    @property
    def failing(self) -> bool:
        return bool(self.flags & {"fail", "fail?", "handshake", "noaddr"})

    def owns(self, slot: int) -> bool:
        return any(start <= slot <= end for start, end in self.slots)


def parse_cluster_nodes(text: str) -> list[NodeView]:
    views = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 8:
            continue
        address = parts[1].split("@")[0]
        slots = []
        for item in parts[8:]:
            if item.startswith("["):  # a slot being imported or migrated: not owned yet
                continue
            start, _, end = item.partition("-")
            slots.append((int(start), int(end or start)))
        views.append(
            NodeView(
                node_id=parts[0],
                port=int(address.rpartition(":")[2]),
                flags=frozenset(parts[2].split(",")),
                master_id=None if parts[3] == "-" else parts[3],
                slots=slots,
            )
        )
    return views


def parse_info(text: str) -> dict[str, str]:
    fields = (line.partition(":") for line in text.splitlines() if ":" in line)
    return {name: value.strip() for name, _, value in fields}


class ClusterNotReady(RuntimeError):
    pass


class RedisCluster:
    """Three masters and three replicas (by default), started by ``start`` or ``with``.

    ``url`` is ``redis+cluster://127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3/``: the
    addresses of the nodes that were masters when the cluster was created. They
    stay valid seed nodes after a failover or a slot move (a client learns the
    topology from whichever answers), and keep their ports across ``restart``.
    """

    def __init__(
        self,
        data_dir: Path | None = None,
        *,
        masters: int = 3,
        replicas_per_master: int = 1,
        node_timeout_ms: int = NODE_TIMEOUT_MS,
    ) -> None:
        if masters < 3:
            raise ValueError("Redis Cluster needs at least three masters")
        self._cli = find_redis_cli()
        self._own_dir = data_dir is None
        self.data_dir = (
            Path(tempfile.mkdtemp(prefix="parley-cluster-")) if data_dir is None else data_dir
        )
        self.replicas_per_master = replicas_per_master
        ports = unique_free_ports(2 * masters * (1 + replicas_per_master))
        self.nodes: list[RedisNode] = [
            RedisNode(
                self.data_dir / f"node-{port}",
                port=port,
                bus_port=bus,
                node_timeout_ms=node_timeout_ms,
            )
            for port, bus in zip(ports[0::2], ports[1::2], strict=True)
        ]
        self._seeds: list[RedisNode] = []

    # Start and stop.

    @property
    def url(self) -> str:
        if not self._seeds:
            raise RuntimeError("the cluster is not started")
        return "redis+cluster://" + ",".join(node.address for node in self._seeds) + "/"

    def start(self) -> None:
        """Start every node, create the cluster, wait until it is healthy.

        On any failure every process started is killed before the error rises.
        """
        try:
            for node in self.nodes:
                node.start()
            self._cli_run(
                "--cluster",
                "create",
                *(node.address for node in self.nodes),
                "--cluster-replicas",
                str(self.replicas_per_master),
                "--cluster-yes",
            )
            self.wait_healthy()
            # The masters that serve slots: a node's view may still call a fresh
            # replica a master (without slots) for a moment after the creation.
            owners = {v.node_id for v in self.view() if v.is_master and v.slots}
            self._seeds = [node for node in self.nodes if node.node_id in owners]
        except BaseException:
            self.kill_all()
            raise

    def kill_all(self) -> None:
        """SIGKILL every node still running."""
        for node in self.nodes:
            with contextlib.suppress(Exception):
                node.kill()

    def close(self) -> None:
        """Kill every node; remove the data directory if this object created it."""
        self.kill_all()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> RedisCluster:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # The topology.

    def running(self) -> list[RedisNode]:
        return [node for node in self.nodes if node.running]

    def view(self, node: RedisNode | None = None) -> list[NodeView]:
        """``CLUSTER NODES`` as ``node`` (by default the first running node) sees it."""
        asked = node or self._any_running()
        return parse_cluster_nodes(str(asked.query("CLUSTER", "NODES")))

    def masters(self) -> list[RedisNode]:
        """Running nodes that are masters, by a running node's ``CLUSTER NODES``."""
        ids = {v.node_id for v in self.view() if v.is_master and not v.failing}
        return [node for node in self.running() if node.node_id in ids]

    def replicas(self) -> list[RedisNode]:
        """Running nodes that are replicas, by a running node's ``CLUSTER NODES``."""
        ids = {v.node_id for v in self.view() if "slave" in v.flags and not v.failing}
        return [node for node in self.running() if node.node_id in ids]

    def slot_of(self, key: str) -> int:
        """The key's hash slot, by ``CLUSTER KEYSLOT``."""
        return int(self._any_running().query("CLUSTER", "KEYSLOT", key))

    def master_for_slot(self, slot: int) -> RedisNode:
        """The node that owns ``slot``, by a running node's ``CLUSTER NODES``."""
        for view in self.view():
            if view.is_master and view.owns(slot):
                return self._node(view.node_id)
        raise ClusterNotReady(f"no master owns slot {slot}")

    def master_for_key(self, key: str) -> RedisNode:
        return self.master_for_slot(self.slot_of(key))

    def client(self) -> redis.cluster.RedisCluster:
        """A synchronous cluster client (follows ``MOVED`` and ``ASK``) for assertions."""
        return redis.cluster.RedisCluster(
            host="127.0.0.1",
            port=self._any_running().port,  # the client learns the other nodes from it
            socket_timeout=5,
            socket_connect_timeout=2,
        )

    async def flushall(self) -> None:
        """FLUSHALL on every running master (their replicas follow)."""
        for node in self.running():
            async with redis.asyncio.Redis(
                host="127.0.0.1", port=node.port, decode_responses=True
            ) as client:
                if (await client.role())[0] == "master":
                    await client.flushall()

    # Faults.

    def kill_master_for(self, key: str) -> RedisNode:
        """SIGKILL the master that owns ``key``'s slot; returns it (for ``restart``)."""
        node = self.master_for_key(key)
        node.kill()
        return node

    def wait_failover(self, slot: int, timeout: float = FAILOVER_TIMEOUT) -> RedisNode:
        """Wait until a running node owns ``slot`` in every running node's view and
        every running node says ``cluster_state:ok``; returns the slot's new master.

        The failover is Redis's own: no ``CLUSTER FAILOVER`` is sent.
        """
        self._wait(self._running_slot_problems, timeout, f"a failover of slot {slot}")
        return self.master_for_slot(slot)

    def restart(self, node: RedisNode, timeout: float = READY_TIMEOUT) -> None:
        """Start ``node`` again on its port and wait until the cluster is healthy.

        A master that was failed over comes back as a replica of the node that
        replaced it, and has synced from it when this returns.
        """
        if node not in self.nodes:
            raise ValueError(f"{node!r} is not a node of this cluster")
        node.stop()
        node.start()
        self.wait_healthy(timeout)

    def wait_healthy(self, timeout: float = READY_TIMEOUT) -> None:
        """Wait until every node runs, says ``cluster_state:ok`` with all 16384 slots
        served, all agree on who owns which slot, none sees another as failing, and
        every master's replicas are online."""
        self._wait(self._problems, timeout, "a healthy cluster")

    # Slot moves.

    def move_slot(
        self,
        slot: int,
        target: RedisNode,
        *,
        batch: int = 100,
        timeout: float = 60.0,
    ) -> None:
        """Move ``slot`` to ``target`` as ``redis-cli --cluster reshard`` does:
        IMPORTING on the target, MIGRATING on the source, its keys moved ``batch`` at
        a time with ``MIGRATE``, then ``SETSLOT NODE`` on the target, the source and
        every other master (the order of Redis's ``CLUSTER SETSLOT`` documentation).
        Clients may write to the slot throughout (``ASK``); returns once every running
        node sees ``target`` as its owner."""
        source = self.master_for_slot(slot)
        if source is target:
            return
        if target not in self.masters():
            raise ValueError(f"{target!r} is not a running master")
        deadline = time.monotonic() + timeout
        target.query("CLUSTER", "SETSLOT", slot, "IMPORTING", source.node_id)
        source.query("CLUSTER", "SETSLOT", slot, "MIGRATING", target.node_id)
        while True:
            keys = source.query("CLUSTER", "GETKEYSINSLOT", slot, batch)
            assert isinstance(keys, list)
            if not keys:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"slot {slot} still has keys on {source!r} after {timeout}s")
            source.query(
                "MIGRATE", "127.0.0.1", target.port, "", 0, MIGRATE_TIMEOUT_MS,
                "KEYS", *(str(key) for key in keys),
            )  # fmt: skip
        # The target first (it bumps its epoch and claims the slot), then the source
        # (it stops answering ASK), then the other masters (they learn it sooner).
        others = [m for m in self.masters() if m is not source and m is not target]
        for node in (target, source, *others):
            node.query("CLUSTER", "SETSLOT", slot, "NODE", target.node_id)
        self._wait_owner(slot, target, deadline - time.monotonic())

    def reshard(
        self, source: RedisNode, target: RedisNode, count: int, timeout: float = CLI_TIMEOUT
    ) -> None:
        """``redis-cli --cluster reshard``: ``count`` slots of ``source`` to ``target``
        (the tool chooses which: the lowest-numbered ones), then wait until every
        running node agrees on the slots' owners."""
        self._cli_run(
            "--cluster", "reshard", source.address,
            "--cluster-from", source.node_id,
            "--cluster-to", target.node_id,
            "--cluster-slots", str(count),
            "--cluster-yes",
            timeout=timeout,
        )  # fmt: skip
        self._wait(self._running_slot_problems, READY_TIMEOUT, "agreement after a reshard")

    def migrate_slot(self, slot: int, to_node: RedisNode) -> list[int]:
        """Move ``slot`` to ``to_node`` with ``redis-cli --cluster reshard``.

        The tool moves a number of slots, not a chosen one, starting from the
        source's lowest: this moves every slot of ``slot``'s master up to and
        including ``slot``, and returns them. Pick a slot near the start of its
        master's ranges to move few.
        """
        source = self.master_for_slot(slot)
        if source is to_node:
            return []
        owned = sorted(
            s
            for view in self.view()
            if view.node_id == source.node_id
            for start, end in view.slots
            for s in range(start, end + 1)
        )
        moved = [s for s in owned if s <= slot]
        self.reshard(source, to_node, len(moved))
        owner = self.master_for_slot(slot)
        if owner is not to_node:
            raise RuntimeError(f"redis-cli moved {len(moved)} slots but {slot} is on {owner!r}")
        return moved

    # Internals.

    def _any_running(self) -> RedisNode:
        for node in self.nodes:
            if node.running:
                return node
        raise ClusterNotReady("no node of the cluster is running")

    def _node(self, node_id: str) -> RedisNode:
        for node in self.nodes:
            if node.node_id == node_id:
                return node
        raise ClusterNotReady(f"node {node_id} is not one of this cluster's")

    def _cli_run(self, *args: str, timeout: float = CLI_TIMEOUT) -> str:
        try:
            done = subprocess.run(
                [self._cli, *args],
                capture_output=True,
                text=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(
                f"redis-cli {' '.join(args[:2])} took over {timeout:.0f}s\n{self._logs()}"
            ) from exc
        output = done.stdout + done.stderr
        # A failure is a non-zero exit or an "[ERR]" line, whichever redis-cli gives.
        if done.returncode != 0 or "[ERR]" in output:
            raise RuntimeError(
                f"redis-cli {' '.join(args)} failed ({done.returncode}):\n"
                f"{output[-3000:]}\n{self._logs()}"
            )
        return output

    def _wait(self, problems: Callable[[], list[str]], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        found: list[str] = []
        while True:
            try:
                found = problems()
            except redis.RedisError as exc:  # a node still loading, a connection refused
                found = [f"{type(exc).__name__}: {exc}"]
            if not found:
                return
            if time.monotonic() > deadline:
                raise ClusterNotReady(
                    f"no {what} after {timeout:.0f}s: " + "; ".join(found) + "\n" + self._logs()
                )
            time.sleep(POLL)

    def _wait_owner(self, slot: int, owner: RedisNode, timeout: float) -> None:
        def problems() -> list[str]:
            found = []
            for node in self.running():
                owners = [v.node_id for v in self.view(node) if v.is_master and v.owns(slot)]
                if owners != [owner.node_id]:
                    found.append(f"{node.address} sees slot {slot} on {owners}")
            return found

        self._wait(problems, max(timeout, 1.0), f"agreement that {owner!r} owns slot {slot}")

    def _running_slot_problems(self) -> list[str]:
        return self._slot_problems(self.running())

    def _problems(self) -> list[str]:
        stopped = [node.address for node in self.nodes if not node.running]
        if stopped:
            return [f"not running: {', '.join(stopped)}"]
        running = self.running()
        return (
            self._slot_problems(running)
            or self._failing_problems(running)
            or self._replication_problems(running)
        )

    def _slot_problems(self, running: Iterable[RedisNode]) -> list[str]:
        """Each node: state ok, every slot served; all: the same owners, all running."""
        found: list[str] = []
        maps: dict[str, list[tuple[int, int, str]]] = {}
        live_ids = {node.node_id for node in self.running()}
        for node in running:
            info = parse_info(str(node.query("CLUSTER", "INFO")))
            if info.get("cluster_state") != "ok" or info.get("cluster_slots_ok") != str(SLOTS):
                found.append(
                    f"{node.address}: cluster_state:{info.get('cluster_state')} "
                    f"slots_ok:{info.get('cluster_slots_ok')}"
                )
                continue
            owners = sorted(
                (start, end, view.node_id)
                for view in self.view(node)
                if view.is_master
                for start, end in view.slots
            )
            dead = {owner for _, _, owner in owners} - live_ids
            if dead:
                found.append(f"{node.address} sees slots on stopped node(s) {sorted(dead)}")
            maps[node.address] = owners
        if len({tuple(owners) for owners in maps.values()}) > 1:
            found.append("the nodes disagree on who owns which slot")
        return found

    def _failing_problems(self, running: Iterable[RedisNode]) -> list[str]:
        found = []
        for node in running:
            for view in self.view(node):
                if view.failing:
                    found.append(f"{node.address} sees {view.port} as {','.join(view.flags)}")
        return found

    def _replication_problems(self, running: Iterable[RedisNode]) -> list[str]:
        found = []
        replicas: set[str] = set()
        for node in running:
            info = node.query("INFO", "replication")  # parsed by redis-py into a dict
            if info.get("role") == "master":
                online = sum(
                    1
                    for name, value in info.items()
                    if name.startswith("slave")
                    and isinstance(value, dict)
                    and value.get("state") == "online"
                )
                owns = any(v.node_id == node.node_id and v.slots for v in self.view(node))
                if owns and online < self.replicas_per_master:
                    found.append(f"{node.address} has {online} online replica(s)")
            elif info.get("master_link_status") != "up":
                found.append(f"replica {node.address}: link to its master is not up")
            else:
                replicas.add(node.node_id)
        # Every node's view knows each replica as one: right after the creation
        # (gossip, paced by the node timeout) a view may still call it a master.
        for node in list(running) if not found else []:
            stale = [v.port for v in self.view(node) if v.node_id in replicas and v.is_master]
            if stale:
                found.append(f"{node.address} still sees replica(s) {stale} as masters")
        return found

    def _logs(self) -> str:
        return "\n".join(
            f"--- {node.address} ({'running' if node.running else 'stopped'}):\n" + node.log_tail()
            for node in self.nodes
        )


def unique_free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports (never 6379)."""
    ports: list[int] = []
    for _ in range(count * 20):
        port = free_port()
        if port not in ports:
            ports.append(port)
        if len(ports) == count:
            return ports
    raise RuntimeError(f"could not find {count} distinct free ports")
