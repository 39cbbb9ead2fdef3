"""Instructions the hub executes per connect, counted by callgrind, at two commits.

``python -m bench.connect_cost --rev BEFORE [--rev AFTER] [--connections 1000]
[--repeat 2]`` starts the hub of each commit (``git archive``, as ``bench.run
--parley-rev``; the working tree without ``--rev``) on the embedded store under
``valgrind --tool=callgrind``, opens ``--warm`` connections, zeroes the counters,
then opens ``--connections`` more the way W3 does (a new member each: ``connect``
with an HS256 token, then ``subscribe`` to one of W3's listing rooms) and dumps
the counters. It prints the instructions per connect of every thread of the hub
(event loop, store reader and writer), commits alternately.

Instructions do not depend on what else the machine runs, unlike W3's CPU
milliseconds: on a shared machine they tell a change's cost where CPU time
cannot. They are not time either: a cache miss or a thread hand-off costs more
than its instructions say. Under valgrind the hub runs about 50 times slower.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import jwt
from websockets.asyncio.client import ClientConnection, connect

from bench import parley
from bench.parley import ParleyTarget

W3_ROOMS = 10  # listing rooms the connections spread over, as W3's
CONCURRENCY = 8  # connections opening at once


async def _open(url: str, secret: str, user: str, room: str) -> ClientConnection:
    token = jwt.encode(
        {"sub": user, "name": f"idle_{user}", "locale": "en", "exp": int(time.time()) + 3600},
        secret,
        algorithm="HS256",
    )
    ws = await connect(url, subprotocols=["parley.v1.json"], open_timeout=600)  # type: ignore[list-item]
    frames = ({"op": "connect", "token": token}, {"op": "subscribe", "room": room})
    for rid, frame in enumerate(frames, 1):
        await ws.send(json.dumps({**frame, "id": rid}))
        answer = json.loads(await asyncio.wait_for(ws.recv(), 600))
        if "error" in answer:
            raise RuntimeError(f"{frame['op']} refused: {answer['error']}")
    return ws


async def _open_all(url: str, secret: str, first: int, count: int) -> list[ClientConnection]:
    sem = asyncio.Semaphore(CONCURRENCY)

    async def one(i: int) -> ClientConnection:
        async with sem:
            return await _open(url, secret, f"c{i}", f"listing:bw3-{i % W3_ROOMS}")

    return list(await asyncio.gather(*(one(i) for i in range(first, first + count))))


async def _control(*args: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        "callgrind_control",
        *args,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    if await proc.wait() != 0:
        raise RuntimeError(f"callgrind_control {' '.join(args)} failed")


def _instructions(out: Path, pid: int) -> tuple[int, int]:
    """The sum of the ``summary`` of every thread's dump of the measured phase,
    and how many threads it covers."""
    total = threads = 0
    for dump in out.parent.glob(f"{out.name}.{pid}.1-*"):  # dump 1, any thread
        threads += 1
        for line in dump.read_text().splitlines():
            if line.startswith("summary:"):
                total += int(line.split()[1])
    return total, threads


async def measure(source: Path | None, connections: int, warm: int, work: Path) -> float:
    """Instructions per connect of the hub of ``source`` (the working tree if None)."""
    out = work / "callgrind.out"
    wrapper = (
        "valgrind",
        "--tool=callgrind",
        "--separate-threads=yes",
        f"--callgrind-out-file={out}.%p",
    )
    # Under valgrind a connect takes long enough for the hub's timeouts to fire.
    slow = {"auth_timeout": 600.0, "ping_interval": 600.0, "ping_timeout": 600.0}
    target = ParleyTarget(work / "logs", "sqlite", slow, source, wrapper=wrapper, start_timeout=300)
    await target.start()
    try:
        params = {"rooms": W3_ROOMS}
        await target.prepare("W3", params)
        pid = target.procs[-1].pid
        held = await _open_all(target.url, target.jwt_secret, 0, warm)
        await _control("--zero", str(pid))
        held += await _open_all(target.url, target.jwt_secret, warm, connections)
        await _control("--dump", str(pid))
        for ws in held:
            await ws.close()
        total, threads = _instructions(out, pid)
        print(f"  {threads} threads counted", flush=True)
        return total / connections
    finally:
        await target.stop()


async def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.connect_cost", description=__doc__)
    ap.add_argument("--rev", action="append", default=[], help="a commit (twice: before, after)")
    ap.add_argument("--connections", type=int, default=1000, help="connects counted per run")
    ap.add_argument("--warm", type=int, default=100, help="connects before the counting")
    ap.add_argument("--repeat", type=int, default=2, help="runs per commit, alternating")
    args = ap.parse_args(argv)
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        ap.error("valgrind (with callgrind_control) is not installed")
    if not 1 <= args.connections <= 5000:
        ap.error("--connections must be between 1 and 5,000")
    if parley.available() is not None:
        ap.error(str(parley.available()))
    with tempfile.TemporaryDirectory(prefix="parley-connect-cost-") as tmp:
        root = Path(tmp)
        sources: dict[str, Path | None] = {}
        for rev in args.rev or ["working tree"]:
            if rev == "working tree":
                sources[rev] = None
            else:
                into = root / "src" / rev
                parley.snapshot(rev, into)
                sources[rev] = into
        counts: dict[str, list[float]] = {rev: [] for rev in sources}
        for n in range(args.repeat):
            for rev, source in sources.items():
                work = root / f"{rev}-{n}"
                work.mkdir()
                counts[rev].append(await measure(source, args.connections, args.warm, work))
                print(
                    f"{rev} run {n + 1}: {counts[rev][-1]:,.0f} instructions per connect",
                    flush=True,
                )
    for rev, found in counts.items():
        print(
            f"{rev}: median {statistics.median(found):,.0f} instructions per connect "
            f"[{min(found):,.0f}, {max(found):,.0f}], {len(found)} runs"
        )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
