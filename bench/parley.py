"""The Parley target: a hub started from a generated config, on the embedded or the Redis store.

The hub runs as ``parley serve --config <file>`` pinned to the server core;
with the Redis store, its own ``redis-server`` (on a free port, never 6379) is
pinned to the same core and counted as part of the server. Rooms are created
the way a marketplace would: listings and orders through the internal HTTP API.

Naming shared with bench/loadgen.js: W1's room is ``listing:bw1``; in rooms of
two (W2, W4, W5) order ``bo<j>`` of listing ``bl<j>`` joins buyer ``b<j>`` and
seller ``s<j>``; W3 subscribes to ``listing:bw3-<i % rooms>``.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from bench import procs
from bench.redis_cluster import BenchCluster
from bench.targets import PARLEY_STORES, REPO, Target

API_KEY = "bench-key"
PARLEY = REPO / ".venv" / "bin" / "parley"
# A snapshot from before Parley installed under its own name has top-level packages.
_CLI = "import sys; from parley.server.cli import main; sys.exit(main())"
_CLI_TOP_LEVEL = "import sys; from server.cli import main; sys.exit(main())"


def snapshot(rev: str, into: Path) -> str:
    """Extract the hub's packages at commit ``rev`` into ``into`` (no checkout: the work
    tree is untouched), so the hub measured is that commit whatever changes meanwhile.
    Returns the commit's full id."""
    sha = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--verify", f"{rev}^{{commit}}"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    into.mkdir(parents=True, exist_ok=True)
    listed = subprocess.run(
        ["git", "-C", str(REPO), "ls-tree", "--name-only", sha],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    paths = [p for p in ("parley", "protocol", "server", "client", "js") if p in listed]
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", sha, *paths],
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return sha


def available() -> str | None:
    """None when the hub can be started, else why not."""
    if not PARLEY.exists():
        return f"{PARLEY.relative_to(REPO)} not installed"
    return None


class ParleyTarget(Target):
    protocol = "parley"

    def __init__(
        self,
        log_dir: Path,
        store: str,
        extra_config: dict[str, Any],
        source: Path | None = None,
        *,
        hubs: int = 1,
        wrapper: tuple[str, ...] = (),
        start_timeout: float = 30,
    ) -> None:
        super().__init__(log_dir)
        self.store = store
        self.hubs = hubs  # hub processes sharing the store (several only on Redis)
        self.name = next(name for name, s in PARLEY_STORES.items() if s == store)
        if hubs > 1:
            self.name = f"parley-{store}-{hubs}hubs"
        self.extra_config = extra_config
        self.source = source  # a snapshot of the code to run, else the working tree
        self.jwt_secret = secrets.token_hex(32)
        self.tmp: Path | None = None
        self.api = ""
        self.n_store = 0
        # A command the hub runs under (``bench.connect_cost``: valgrind), and how
        # long its ports may take to open then.
        self.wrapper = wrapper
        self.start_timeout = start_timeout

    async def start(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="parley-bench-"))
        if self.store == "redis":
            redis_port = procs.free_port()
            await self._serve(
                [
                    "redis-server",
                    "--port",
                    str(redis_port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "yes",
                    "--appendfsync",
                    "everysec",
                    "--dir",
                    str(self.tmp),
                ],
                redis_port,
                "redis.log",
                core=procs.STORE_CORE,
            )
            store = f"redis://127.0.0.1:{redis_port}/0"
        elif self.store == "cluster":
            cluster = BenchCluster(self.tmp / "cluster", self.log_dir)
            try:
                await cluster.start()
            finally:
                self.procs.extend(cluster.procs)  # stopped with the hub, even after a failure
            store = cluster.url
        else:
            store = f"sqlite:///{self.tmp}/parley.sqlite3"
        self.n_store = len(self.procs)  # the store's processes come first
        for hub in range(self.hubs):
            ws, api = await self._start_hub(store, hub)
            self.urls.append(ws)
            if hub == 0:
                self.url, self.api = ws, api

    async def _start_hub(self, store: str, hub: int) -> tuple[str, str]:
        """One hub process on ``store``, pinned to the server core; its WebSocket and API URLs."""
        assert self.tmp is not None
        ws_port, api_port = procs.free_port(), procs.free_port()
        config = {
            "ws_host": "127.0.0.1",
            "ws_port": ws_port,
            "api_host": "127.0.0.1",
            "api_port": api_port,
            "api_key": API_KEY,
            "store": store,
            "jwt_secret": self.jwt_secret,
            "jwt_algorithm": "HS256",
            # Lifted: W1's single poster and W4's posters measure throughput,
            # not the per-connection write limit (20/s after a burst of 100).
            "write_rate": 1_000_000.0,
            "write_burst": 1_000_000,
            **self.extra_config,
        }
        path = self.tmp / f"config-{hub}.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        argv = [str(PARLEY), "serve", "--config", str(path)]
        # Every load connection comes from 127.0.0.1: no cap per address, and
        # no staggered drain at the end. As environment variables, which
        # snapshots older than these settings ignore (in the file: refused).
        env = {
            **os.environ,
            "PARLEY_MAX_CONNECTIONS_PER_IP": "0",
            "PARLEY_DRAIN_WINDOW": "0",
            # Lifted like write_rate and write_burst: a poster's member budget.
            "PARLEY_MEMBER_WRITE_RATE": "1000000",
            "PARLEY_MEMBER_WRITE_BURST": "1000000",
        }
        if self.source is not None:
            # The snapshot's packages come first on sys.path, before the editable install.
            # -P: no working directory on sys.path, where the work tree's
            # packages would shadow the snapshot's.
            cli = _CLI if (self.source / "parley").is_dir() else _CLI_TOP_LEVEL
            argv = [sys.executable, "-P", "-c", cli, "serve", "--config", str(path)]
            env["PYTHONPATH"] = str(self.source)
        log = self.log_dir / (f"{self.name}.log" if hub == 0 else f"{self.name}-{hub}.log")
        argv = [*self.wrapper, *argv]
        proc = await procs.spawn(procs.pinned(procs.SERVER_CORE, argv), log, env=env)
        self.procs.append(proc)
        await procs.wait_for_port(ws_port, proc, self.start_timeout, log)
        await procs.wait_for_port(api_port, proc, self.start_timeout, log)
        return f"ws://127.0.0.1:{ws_port}", f"http://127.0.0.1:{api_port}"

    def python_pid(self) -> int | None:
        return self.procs[-1].pid if self.procs else None  # the hub; Redis comes first

    def store_pids(self) -> list[int]:
        return [p.pid for p in self.procs[: self.n_store]]

    async def stop(self) -> None:
        await super().stop()
        self.urls.clear()
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None

    async def prepare(self, workload: str, params: dict[str, Any]) -> None:
        calls: list[tuple[str, dict[str, Any]]] = []

        def listing(lid: str, seller: str) -> None:
            calls.append(
                (
                    f"/v1/listings/{lid}",
                    {
                        "seller_id": seller,
                        "title": f"Bench item {lid}",
                        "price": {"amount": 1000, "currency": "CAD"},
                        "offers_enabled": False,
                        "status": "active",
                    },
                )
            )

        if workload == "W1":
            listing("bw1", "sw1")
        elif workload == "W3":
            for r in range(params["rooms"]):
                listing(f"bw3-{r}", "sw3")
        else:
            for j in range(params["connections"] // 2):
                listing(f"bl{j}", f"s{j}")
        # Orders after their listings.
        orders = []
        if workload not in ("W1", "W3"):
            for j in range(params["connections"] // 2):
                body = {"listing_id": f"bl{j}", "buyer_id": f"b{j}", "seller_id": f"s{j}"}
                orders.append((f"/v1/orders/bo{j}", body))
        await self._put_all(calls)
        await self._put_all(orders)

    async def _put_all(self, calls: list[tuple[str, dict[str, Any]]]) -> None:
        sem = asyncio.Semaphore(16)
        headers = {"Authorization": f"Bearer {API_KEY}"}
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(self.api, headers=headers, timeout=timeout) as http:

            async def put(path: str, body: dict[str, Any]) -> None:
                async with sem, http.put(path, json=body) as resp:
                    if resp.status >= 300:
                        text = (await resp.text())[:300]
                        raise RuntimeError(f"PUT {path} -> HTTP {resp.status}: {text}")

            await asyncio.gather(*(put(p, b) for p, b in calls))
