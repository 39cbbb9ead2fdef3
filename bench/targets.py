"""The servers under test: how to start one, which processes are "the server", how to stop it.

Each target runs pinned to core 1 (the load generator has core 0) and is
started fresh for every measured run. ``protocol`` names the load generator's
adapter for it.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from bench import procs

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent

# Parley's targets and their stores: embedded, one Redis, a Redis Cluster, and
# two hubs sharing one Redis (each room's two members on different hubs).
PARLEY_STORES = {
    "parley": "sqlite",
    "parley-redis": "redis",
    "parley-cluster": "cluster",
    "parley-redis-2hubs": "redis",
}


class Target:
    name = ""
    protocol = ""  # the load generator's adapter: raw | socketio | parley
    jwt_secret = "unused"

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: list[asyncio.subprocess.Process] = []
        self.url = ""
        self.urls: list[str] = []  # every hub's URL when there are several; else [url]

    async def start(self) -> None:
        raise NotImplementedError

    async def prepare(self, workload: str, params: dict[str, Any]) -> None:
        """Create what the workload's rooms need (Parley: listings and orders)."""

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def python_pid(self) -> int | None:
        """The Python process to profile, if the server is one."""
        return None

    def store_pids(self) -> list[int]:
        """The processes of the server's own store (Parley's Redis nodes), if any."""
        return []

    async def stop(self) -> None:
        for proc in reversed(self.procs):
            await procs.stop(proc)
        self.procs.clear()

    async def _serve(
        self, argv: list[str], port: int, log_name: str, timeout: float = 20, *, core: int = -1
    ) -> None:
        log = self.log_dir / log_name
        proc = await procs.spawn(procs.pinned(procs.SERVER_CORE if core < 0 else core, argv), log)
        self.procs.append(proc)
        await procs.wait_for_port(port, proc, timeout, log)


class RawWebsockets(Target):
    """websockets + uvloop, broadcast only: the floor of what the library can do."""

    name = "raw"
    protocol = "raw"

    def python_pid(self) -> int | None:
        return self.procs[0].pid if self.procs else None

    async def start(self) -> None:
        port = procs.free_port()
        self.url = f"ws://127.0.0.1:{port}"
        script = BENCH / "servers" / "raw_ws.py"
        await self._serve([sys.executable, str(script), str(port)], port, "raw.log")


class SocketIO(Target):
    """Socket.IO 4 on Node, rooms with io.to(room).emit."""

    name = "socketio"
    protocol = "socketio"

    async def start(self) -> None:
        port = procs.free_port()
        self.url = f"ws://127.0.0.1:{port}"
        script = BENCH / "servers" / "socketio_server.js"
        await self._serve(["node", str(script), str(port)], port, "socketio.log")


def make_target(
    name: str, log_dir: Path, parley_extra: dict[str, Any], parley_source: Path | None = None
) -> Target:
    if name == "raw":
        return RawWebsockets(log_dir)
    if name == "socketio":
        return SocketIO(log_dir)
    if name in PARLEY_STORES:
        from bench.parley import ParleyTarget

        hubs = 2 if name == "parley-redis-2hubs" else 1
        return ParleyTarget(log_dir, PARLEY_STORES[name], parley_extra, parley_source, hubs=hubs)
    raise ValueError(f"unknown server {name!r}")
