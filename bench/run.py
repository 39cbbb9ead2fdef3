"""Run the benchmark suite: ``python -m bench.run [--workloads W1,W2] [--servers raw,socketio]
[--repeat 3] [--quick]``.

For every workload, repeat and server (server order rotated each repeat so
drift spreads evenly), it starts the server fresh on core 1, the load
generator (bench/loadgen.js) on core 0, reads the server's CPU time and RSS
from /proc at the load generator's phase boundaries, and stops everything in
``finally``. Each run is one JSON line in ``bench/results/<stamp>/runs.jsonl``
and one progress line on stderr; at the end each (server, workload) prints one
JSON line on stdout: the median over the repeats, with ``spread`` holding
[min, max]. ``table.md`` in the same folder holds the Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import procs, report, workloads
from bench.profile import Profiler, py_spy
from bench.targets import BENCH, Target, make_target

SERVERS = ("raw", "socketio", "parley", "parley-redis", "parley-cluster", "parley-redis-2hubs")
# parley-cluster (six Redis nodes on the server core) and parley-redis-2hubs (two hubs
# on one Redis, on the server core) run when named in --servers.
DEFAULT_SERVERS = ("raw", "socketio", "parley", "parley-redis")
PARLEY_TARGETS = ("parley", "parley-redis", "parley-cluster", "parley-redis-2hubs")


class RunFailed(Exception):
    pass


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    add = ap.add_argument
    add("--workloads", default=",".join(workloads.ALL), help="comma-separated, e.g. W1,W2")
    add(
        "--servers",
        default=",".join(DEFAULT_SERVERS),
        help=f"comma-separated among {','.join(SERVERS)} (default: {','.join(DEFAULT_SERVERS)})",
    )
    add("--repeat", type=int, default=None, help="runs per server and workload (3; 1 with --quick)")
    add("--quick", action="store_true", help="small sizes: a smoke test in seconds")
    add("--w5-rate", type=float, default=None, help="posts/s for W5 (default: half Parley's W4)")
    add("--w3-connections", type=int, default=None, help="W3's idle connections (10,000)")
    add("--w2-rate", type=int, default=None, help="posts/s for W2 (5,000)")
    add("--parley-config", type=Path, default=None, help="YAML merged into the hub's config")
    add("--parley-rev", default=None, help="run the hub of this commit, not the working tree")
    add(
        "--store-core",
        choices=("server", "loadgen"),
        default="server",
        help="the core of Parley's Redis nodes: the hub's (default) or the load generator's",
    )
    add("--out", type=Path, default=None, help="results folder (default bench/results/<stamp>)")
    add("--markdown", action="store_true", help="also print the Markdown table")
    add("--profile", action="store_true", help="py-spy each Python server (not for the tables)")
    args = ap.parse_args(argv)
    args.workloads = [w.strip().upper() for w in args.workloads.split(",") if w.strip()]
    args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    for w in args.workloads:
        if w not in workloads.FULL:
            ap.error(f"unknown workload {w}")
    for s in args.servers:
        if s not in SERVERS:
            ap.error(f"unknown server {s}")
    if args.repeat is None:
        args.repeat = 1 if args.quick else 3
    if args.store_core == "loadgen":
        procs.STORE_CORE = procs.LOADGEN_CORE
    if not 1 <= args.repeat <= 20:
        ap.error("--repeat must be between 1 and 20")
    if args.w2_rate is not None and not 100 <= args.w2_rate <= 50_000:
        ap.error("--w2-rate must be between 100 and 50,000 posts/s")
    if args.w3_connections is not None and not 1_000 <= args.w3_connections <= 28_000:
        # One source address reaches one port through at most ~28,000 ephemeral ports.
        ap.error("--w3-connections must be between 1,000 and 28,000")
    return args


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def ensure_node_modules() -> None:
    if all((BENCH / "node_modules" / name).is_dir() for name in ("socket.io", "bufferutil")):
        return
    log("bench: installing the load generator's and Socket.IO's packages (npm ci)")
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=BENCH, check=True, timeout=600)


# ------------------------------------------------------------------ one run ---


class LoadGen:
    """The load generator process and its line protocol (see bench/loadgen.js)."""

    def __init__(self, proc: asyncio.subprocess.Process, bound: float) -> None:
        self.proc = proc
        self.bound = bound

    async def expect(self, phase: str) -> dict[str, Any]:
        assert self.proc.stdout is not None
        while True:
            try:
                line = await asyncio.wait_for(self.proc.stdout.readline(), self.bound)
            except TimeoutError:
                raise RunFailed(f"load generator silent {self.bound:.0f}s before {phase}") from None
            if not line:
                code = await self.proc.wait()
                raise RunFailed(f"load generator exited (code {code}) before {phase}")
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if msg.get("phase") == "error":
                raise RunFailed(f"load generator: {msg.get('error')}")
            if msg.get("phase") == phase:
                return msg  # type: ignore[no-any-return]

    async def next(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"next\n")
        await self.proc.stdin.drain()


class Snapshot:
    def __init__(self, target: Target, loadgen_pid: int) -> None:
        pids = target.pids()
        self.t = time.monotonic()
        self.server_cpu = procs.tree_cpu_seconds(pids)
        self.store_cpu = procs.tree_cpu_seconds(target.store_pids())
        self.loadgen_cpu = procs.cpu_seconds(loadgen_pid)
        self.server_rss_kb = procs.tree_rss_kb(pids)
        self.server_core_busy = procs.core_busy_seconds(procs.SERVER_CORE)


async def measure(
    target: Target,
    workload: str,
    params: dict[str, Any],
    run_dir: Path,
    profile_to: Path | None = None,
) -> dict[str, Any]:
    await target.start()
    await target.prepare(workload, params)
    bound = workloads.expected_seconds(workload, params)
    spec = {
        "target": target.protocol,
        "url": target.url,
        "urls": target.urls or [target.url],
        "workload": workload,
        "params": params,
        "jwt_secret": target.jwt_secret,
        "text_bytes": workloads.TEXT_BYTES,
        "connect_concurrency": 64,
        "max_seconds": bound,
    }
    argv = procs.pinned(procs.LOADGEN_CORE, ["node", str(BENCH / "loadgen.js"), json.dumps(spec)])
    with open(run_dir / "logs" / "loadgen.log", "ab") as err:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=err,
            limit=1 << 20,
        )
    lg = LoadGen(proc, bound)
    pid = target.python_pid()
    profiler = Profiler(pid, profile_to) if profile_to and pid else None
    try:
        if workload == "W3":
            row = await _idle(target, lg, params, profiler)
        else:
            row = await _traffic(target, lg, workload, profiler)
        if profiler is not None:
            row["profile"] = str(profile_to)
        return row
    finally:
        if profiler is not None:
            await profiler.stop()
        await procs.stop(proc, grace=10)


async def _traffic(
    target: Target, lg: LoadGen, workload: str, profiler: Profiler | None
) -> dict[str, Any]:
    ready = await lg.expect("ready")
    if profiler is not None:
        await profiler.start()
    s0 = Snapshot(target, lg.proc.pid)
    await lg.next()
    done = await lg.expect("done")
    s1 = Snapshot(target, lg.proc.pid)
    if profiler is not None:
        await profiler.stop()
    await lg.next()
    await lg.expect("closed")

    wall = s1.t - s0.t
    server_cpu = s1.server_cpu - s0.server_cpu
    store_cpu = s1.store_cpu - s0.store_cpu
    hub_cpu = server_cpu - store_cpu
    on_server_core = server_cpu if procs.STORE_CORE == procs.SERVER_CORE else hub_cpu
    loadgen_cpu = s1.loadgen_cpu - s0.loadgen_cpu
    d = max(1, done["deliveries"])
    row: dict[str, Any] = {
        "status": "ok" if done["complete"] and not done["errors"] else "incomplete",
        "connections": ready["connections"],
        "posts": done["posts"],
        "deliveries": done["deliveries"],
        "expected_deliveries": done["expected_deliveries"],
        "deliveries_per_s": done["deliveries_per_s"],
        "server_cpu_s": server_cpu,
        "server_cpu_s_per_1M": server_cpu / d * 1e6,
        "server_cpu_util": server_cpu / wall,
        # The server without its store (Parley's hubs alone): what a hub host spends.
        "hub_cpu_s_per_1M": hub_cpu / d * 1e6,
        "store_cpu_s_per_1M": store_cpu / d * 1e6,
        "loadgen_cpu_s": loadgen_cpu,
        "loadgen_cpu_s_per_1M": loadgen_cpu / d * 1e6,
        "loadgen_cpu_util": loadgen_cpu / wall,
        "latency_ms": done["latency_ms"],
        "server_rss_mb": s1.server_rss_kb / 1024,
        # Time the server's core spent on anything but the server: other load drifting in.
        "server_core_other_util": max(
            0.0, s1.server_core_busy - s0.server_core_busy - on_server_core
        )
        / wall,
        "avg_frame_bytes": done["avg_frame_bytes"],
        "errors": done["errors"],
        "first_error": done["first_error"],
        "other_frames": done["other_frames"],
    }
    for key in (
        "ack_latency_ms",
        "target_rate",
        "achieved_send_rate",
        "max_send_lag_ms",
        "acked_posts",
        "acked_posts_per_s",
    ):
        if key in done:
            row[key] = done[key]
    if workload == "W4":
        row["server_cpu_s_per_1M_posts"] = server_cpu / max(1, done["acked_posts"]) * 1e6
        row["hub_cpu_s_per_1M_posts"] = hub_cpu / max(1, done["acked_posts"]) * 1e6
    return row


async def _idle(
    target: Target, lg: LoadGen, params: dict[str, Any], profiler: Profiler | None
) -> dict[str, Any]:
    await lg.expect("warm")
    if profiler is not None:  # the connect phase: idle connections cost no CPU
        await profiler.start()
    s_warm = Snapshot(target, lg.proc.pid)
    await lg.next()
    connected = await lg.expect("connected")
    s_conn = Snapshot(target, lg.proc.pid)
    if profiler is not None:
        await profiler.stop()
    await asyncio.sleep(params["hold_s"])
    s_idle = Snapshot(target, lg.proc.pid)
    await lg.next()
    idle_done = await lg.expect("idle_done")
    await lg.next()
    await lg.expect("closed")

    added = params["connections"] - params["warm"]
    return {
        "status": "ok" if not idle_done["errors"] else "incomplete",
        "connections": params["connections"],
        "connect_s": connected["connect_s"],
        "connects_per_s": connected["connects_per_s"],
        "server_cpu_ms_per_connect": (s_conn.server_cpu - s_warm.server_cpu) / added * 1e3,
        "loadgen_cpu_ms_per_connect": (s_conn.loadgen_cpu - s_warm.loadgen_cpu) / added * 1e3,
        "rss_per_conn_kb": (s_idle.server_rss_kb - s_warm.server_rss_kb) / added,
        "server_rss_mb": s_idle.server_rss_kb / 1024,
        "idle_server_cpu_util": (s_idle.server_cpu - s_conn.server_cpu) / (s_idle.t - s_conn.t),
        "errors": idle_done["errors"],
        "first_error": idle_done["first_error"],
    }


# --------------------------------------------------------------------- main ---


async def main(args: argparse.Namespace) -> int:
    ensure_node_modules()
    if args.profile and py_spy() is None:
        log("bench: --profile needs py-spy: .venv/bin/pip install py-spy")
        return 2
    fd_limit = procs.raise_fd_limit()
    if args.w3_connections and args.w3_connections + 1_000 > fd_limit:
        # The hub and the load generator each hold one socket per connection.
        log(
            f"bench: the open-files limit is {fd_limit}: too low for {args.w3_connections:,}"
            " connections (raise it: ulimit -n)"
        )
        return 2
    if procs.can_pin():
        os.sched_setaffinity(0, {procs.LOADGEN_CORE})
    else:
        log("bench: fewer than 2 cores or no taskset: running unpinned, figures are not comparable")

    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir = args.out or BENCH / "results" / (stamp + ("-quick" if args.quick else ""))
    (run_dir / "logs").mkdir(parents=True, exist_ok=True)
    machine = report.machine_info()
    machine["fd_limit"] = fd_limit
    machine["command"] = " ".join(["python -m bench.run", *sys.argv[1:]])
    (run_dir / "machine.json").write_text(json.dumps(machine, indent=2) + "\n")
    log(f"bench: results in {run_dir}")

    parley_extra: dict[str, Any] = {}
    if args.parley_config:
        import yaml

        parley_extra = yaml.safe_load(args.parley_config.read_text()) or {}
    from bench import parley

    parley_source = None
    if args.parley_rev:
        # Outside the repository, so no tool that walks the tree finds a second copy.
        parley_source = Path(tempfile.mkdtemp(prefix="parley-src-"))
        atexit.register(shutil.rmtree, parley_source, True)
        sha = parley.snapshot(args.parley_rev, parley_source)
        machine["parley_commit"] = sha[:12]
        (run_dir / "machine.json").write_text(json.dumps(machine, indent=2) + "\n")
        log(f"bench: Parley from commit {sha[:12]}")

    unavailable: dict[str, str] = {}
    why = parley.available()
    if why:
        for name in PARLEY_TARGETS:
            unavailable[name] = why

    size = "quick" if args.quick else "full"
    sizes = workloads.QUICK if args.quick else workloads.FULL
    rows_by_key: dict[tuple[str, str], list[dict[str, Any]]] = {}
    summaries: list[dict[str, Any]] = []
    failed = False
    started = time.monotonic()

    with open(run_dir / "runs.jsonl", "a") as runs_file:
        for workload in args.workloads:
            servers = [s for s in workloads.SERVERS[workload] if s in args.servers]
            params = dict(sizes[workload])
            if workload == "W5":
                params["rate"], params["rate_source"] = _w5_rate(args, rows_by_key, size)
                params["posts_per_conn"] = workloads.w5_posts_per_conn(params)
            if workload == "W3" and args.w3_connections:
                params["connections"] = args.w3_connections
            if workload == "W2" and args.w2_rate:
                params["rate"] = args.w2_rate
            for rep in range(args.repeat):
                shift = rep % len(servers) if servers else 0
                for server in servers[shift:] + servers[:shift]:
                    row: dict[str, Any] = {"server": server, "workload": workload}
                    row["repeat"] = rep + 1
                    if server in unavailable:
                        row.update(status="unavailable", error=unavailable[server])
                    else:
                        target = make_target(server, run_dir / "logs", parley_extra, parley_source)
                        t0 = time.monotonic()
                        try:
                            profile_to = None
                            if args.profile:
                                name = f"{server}-{workload}-{rep + 1}.txt"
                                profile_to = run_dir / "logs" / name
                            row.update(await measure(target, workload, params, run_dir, profile_to))
                        except Exception as exc:  # one failed run must not stop the suite
                            row.update(status="error", error=f"{type(exc).__name__}: {exc}")
                            if server in PARLEY_TARGETS and "start" in _stage(exc):
                                unavailable[server] = row["error"]
                        finally:
                            await target.stop()
                        row["run_s"] = round(time.monotonic() - t0, 2)
                        row["params"] = params
                    rows_by_key.setdefault((server, workload), []).append(row)
                    runs_file.write(json.dumps(row) + "\n")
                    runs_file.flush()
                    log(report.progress_line(row))
                    if row["status"] in ("error", "incomplete"):
                        failed = True
            for server in servers:
                summary = report.summarize(
                    server, workload, rows_by_key.get((server, workload), [])
                )
                if workload == "W5":
                    summary["rate_source"] = params["rate_source"]
                summaries.append(summary)
                print(json.dumps(summary), flush=True)

    (run_dir / "summary.jsonl").write_text("".join(json.dumps(s) + "\n" for s in summaries))
    table = report.markdown(summaries, machine)
    (run_dir / "table.md").write_text(table)
    if args.markdown:
        print(table)
    log(f"bench: done in {time.monotonic() - started:.0f}s; table in {run_dir / 'table.md'}")
    return 1 if failed else 0


def _stage(exc: Exception) -> str:
    """'start' when the server never came up (so its later runs are skipped)."""
    text = str(exc)
    if isinstance(exc, FileNotFoundError | procs.StartFailed) or "listening" in text:
        return "start"
    return "run"


def _w5_rate(
    args: argparse.Namespace, rows: dict[tuple[str, str], list[dict[str, Any]]], size: str
) -> tuple[float, str]:
    if args.w5_rate:
        return args.w5_rate, "--w5-rate"
    w4 = [r["acked_posts_per_s"] for r in rows.get(("parley", "W4"), []) if r["status"] == "ok"]
    if w4:
        median = statistics.median(w4)
        return round(
            median / 2
        ), f"half of Parley's W4 median on the embedded store ({median:,.0f})"
    rate = workloads.W5_FALLBACK_RATE[size]
    return rate, f"fallback {rate} posts/s (no Parley W4 result in this run)"


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args(None))))
