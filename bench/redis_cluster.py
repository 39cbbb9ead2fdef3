"""The Redis Cluster of the ``parley-cluster`` target: three masters, one replica each.

Six ``redis-server`` processes on free loopback ports (data and cluster bus
ports chosen, never 6379), each in its own directory, pinned to the server core
and counted as part of the server, as ``parley-redis``'s one Redis is; AOF with
``appendfsync everysec``, as there. ``redis-cli --cluster create`` joins them; the
cluster is ready when every node says ``cluster_state:ok`` with all slots served
and every master has a replica online (the hub's appends wait for one).

``cluster-node-timeout`` stays at Redis's 15 s: six nodes and the hub share one
core under load, and a shorter timeout could fail a busy master over mid-run.
The tests' harness (tests/support/redis_cluster.py) starts its clusters the same
way; the bench keeps this small copy so that it imports nothing from tests/.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from pathlib import Path

import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from bench import procs

MASTERS = 3
NODES = 6  # three masters, one replica each
SLOTS = 16384
SYSTEM_REDIS_PORT = 6379


class ClusterStartFailed(procs.StartFailed):
    pass


class BenchCluster:
    """Start with ``start``; its processes are in ``procs`` (stop them with ``stop``)."""

    def __init__(self, directory: Path, log_dir: Path) -> None:
        self.directory = directory
        self.log_dir = log_dir
        self.procs: list[asyncio.subprocess.Process] = []
        ports = _distinct_free_ports(2 * NODES)
        self.ports = ports[0::2]
        self.bus_ports = ports[1::2]
        self.master_ports: list[int] = []  # known once the cluster is ready

    @property
    def url(self) -> str:
        """The store URL: ``redis+cluster://`` and the masters' addresses."""
        if not self.master_ports:
            raise RuntimeError("the cluster is not started")
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.master_ports) + "/"

    def log_path(self, i: int) -> Path:
        return self.log_dir / f"redis-cluster-{i + 1}.log"

    async def start(self, timeout: float = 60.0) -> None:
        """Start the nodes, create the cluster, wait until it is ready (within ``timeout``).

        Processes started before a failure stay in ``procs`` for ``stop``."""
        deadline = time.monotonic() + timeout
        redis_server = shutil.which("redis-server")
        redis_cli = shutil.which("redis-cli")
        if redis_server is None or redis_cli is None:
            raise ClusterStartFailed(
                "redis-server and redis-cli must be on PATH (scripts/ensure-redis)"
            )
        for i, (port, bus_port) in enumerate(zip(self.ports, self.bus_ports, strict=True)):
            node_dir = self.directory / f"node-{i + 1}"
            node_dir.mkdir(parents=True, exist_ok=True)
            argv = [
                redis_server,
                "--port", str(port),
                "--bind", "127.0.0.1",
                "--dir", str(node_dir),
                "--save", "",
                "--appendonly", "yes",
                "--appendfsync", "everysec",
                "--cluster-enabled", "yes",
                "--cluster-config-file", "nodes.conf",
                "--cluster-port", str(bus_port),
                "--repl-diskless-sync-delay", "0",
            ]  # fmt: skip
            proc = await procs.spawn(
                procs.pinned(procs.STORE_CORE, argv), self.log_path(i), cwd=node_dir
            )
            self.procs.append(proc)
        for i, (proc, port) in enumerate(zip(self.procs, self.ports, strict=True)):
            left = max(1.0, deadline - time.monotonic())
            try:
                await procs.wait_for_port(port, proc, left, self.log_path(i))
            except procs.StartFailed as exc:
                raise ClusterStartFailed(f"Redis Cluster node {i + 1}: {exc}") from None
        await self._create(redis_cli, deadline)
        await self._wait_ready(deadline)

    async def stop(self) -> None:
        for proc in reversed(self.procs):
            await procs.stop(proc)
        self.procs.clear()

    async def _create(self, redis_cli: str, deadline: float) -> None:
        log = self.log_dir / "redis-cluster-create.log"
        argv = [redis_cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports)]
        argv += ["--cluster-replicas", "1", "--cluster-yes"]
        offset = log.stat().st_size if log.exists() else 0  # the log holds earlier runs too
        create = await procs.spawn(argv, log)
        try:
            await asyncio.wait_for(create.wait(), max(1.0, deadline - time.monotonic()))
        except TimeoutError:
            await procs.stop(create)
            raise ClusterStartFailed(
                f"redis-cli --cluster create did not finish\n{procs.log_tail(log)}"
            ) from None
        with open(log, errors="replace") as f:
            f.seek(offset)
            output = f.read()
        if create.returncode != 0 or "[ERR]" in output:
            raise ClusterStartFailed(
                f"redis-cli --cluster create failed ({create.returncode})\n{procs.log_tail(log)}"
            )

    async def _wait_ready(self, deadline: float) -> None:
        while True:
            problems, masters = await self._problems()
            if not problems and len(masters) == MASTERS:
                self.master_ports = masters
                return
            if time.monotonic() > deadline:
                tails = "\n".join(
                    f"--- node {i + 1}:\n{procs.log_tail(self.log_path(i))}" for i in range(NODES)
                )
                raise ClusterStartFailed(
                    "Redis Cluster not ready: " + "; ".join(problems) + "\n" + tails
                )
            await asyncio.sleep(0.1)

    async def _problems(self) -> tuple[list[str], list[int]]:
        """What keeps the cluster from being ready, and the masters' ports."""
        found, masters = [], []
        for port in self.ports:
            client = redis.asyncio.Redis(
                host="127.0.0.1",
                port=port,
                decode_responses=True,
                socket_timeout=5,
                retry=Retry(NoBackoff(), 0),
            )
            try:
                info = await client.cluster("INFO")  # parsed by redis-py into a dict
                if (
                    info.get("cluster_state") != "ok"
                    or int(info.get("cluster_slots_ok", 0)) != SLOTS
                ):
                    found.append(f"{port}: cluster_state:{info.get('cluster_state')}")
                    continue
                replication = await client.info("replication")
                if replication.get("role") == "master":
                    masters.append(port)
                    online = [
                        v
                        for k, v in replication.items()
                        if k.startswith("slave") and isinstance(v, dict)
                        if v.get("state") == "online"
                    ]
                    if not online:
                        found.append(f"{port}: master with no replica online")
                elif replication.get("master_link_status") != "up":
                    found.append(f"{port}: replica not in sync")
            except redis.RedisError as exc:
                found.append(f"{port}: {type(exc).__name__}: {exc}")
            finally:
                with contextlib.suppress(Exception):
                    await client.aclose()
        return found, masters


def _distinct_free_ports(count: int) -> list[int]:
    ports: list[int] = []
    for _ in range(count * 20):
        port = procs.free_port()
        if port not in ports and port != SYSTEM_REDIS_PORT:
            ports.append(port)
        if len(ports) == count:
            return ports
    raise ClusterStartFailed(f"could not find {count} distinct free ports")
