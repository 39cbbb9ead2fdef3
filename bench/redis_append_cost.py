"""What the hub spends per append on the Redis store, on the CPU, at two commits.

``python -m bench.redis_append_cost --rev REV [--appends 20000] [--burst 400]
[--repeat 3] [--instructions]`` starts one ``redis-server`` (loopback, a free
port, no persistence), then runs ``RedisStore.append`` for comments spread
over 2,000 order rooms and 4,000 authors, ``--burst`` at a time (the appends
of one loop iteration, as when many members post at once), and prints the hub
process's CPU microseconds per append (Redis's own CPU is not counted) of the
working tree and of ``REV``, run alternately. With ``--instructions``, each
tree instead runs under ``valgrind --tool=callgrind`` twice, with ``--appends``
and twice as many, and the difference of the two instruction counts divided by
``--appends`` is the instructions per append: a figure a loaded machine does
not move. The fan-out to a hub's own members is not part of this (nobody
follows the rooms): W2 and W4 measure the whole.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import procs
from bench.append_cost import extract, print_figures

_MEASURE = """
import asyncio, secrets, sys, time
sys.path.insert(0, sys.argv[1]) if sys.argv[1] else None
import uvloop
from parley.server.store.redis import RedisStore
from parley.server.core.model import Author, Draft, UserId

url, appends, burst = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
text = "Bonjour, est-ce encore disponible ? Merci " * 3

def draft(i):
    author = Author(UserId(f"u{i % 4000}"), "n")
    return Draft("comment", text, i, author, client_msg_id=f"c{i}")

async def main():
    store = RedisStore(url, key_prefix=f"cost{secrets.token_hex(4)}")
    await store.open()
    started = time.process_time()
    for start in range(0, appends, burst):
        await asyncio.gather(
            *(store.append(f"order:o{i % 2000}", draft(i)) for i in range(start, start + burst))
        )
    print((time.process_time() - started) / appends * 1e6)
    await store.close()

uvloop.run(main())
"""


def measure(tree: str, url: str, appends: int, burst: int, valgrind: bool = False) -> float:
    """CPU us per append (or with ``valgrind``, the instructions of the whole run)
    of the code at ``tree`` ('' for the working tree)."""
    command = [sys.executable, "-c", _MEASURE, tree, url, str(appends), str(burst)]
    if valgrind:
        command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *command]
    out = subprocess.run(
        command, check=True, capture_output=True, text=True, cwd=tempfile.gettempdir()
    )
    if valgrind:
        found = re.search(r"Collected : (\d+)", out.stderr)
        if found is None:
            raise RuntimeError(f"no instruction count from callgrind: {out.stderr[-500:]}")
        return float(found.group(1))
    return float(out.stdout.strip())


def per_append_instructions(tree: str, url: str, appends: int, burst: int) -> float:
    once = measure(tree, url, appends, burst, valgrind=True)
    twice = measure(tree, url, 2 * appends, burst, valgrind=True)
    return (twice - once) / appends


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.redis_append_cost")
    parser.add_argument("--rev", required=True, help="the commit to compare with")
    parser.add_argument("--appends", type=int, default=20_000)
    parser.add_argument("--burst", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--instructions", action="store_true", help="count under callgrind")
    args = parser.parse_args(argv)
    figures = asyncio.run(_compare(args))
    print_figures(figures, "instructions/append" if args.instructions else "us/append")
    return 0


async def _compare(args: argparse.Namespace) -> dict[str, list[float]]:
    port = procs.free_port()
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "redis.log"
        argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", tmp]  # fmt: skip
        redis = await procs.spawn(argv, log)
        try:
            await procs.wait_for_port(port, redis, 10.0, log)
            url = f"redis://127.0.0.1:{port}/0"
            old = extract(args.rev, Path(tmp) / "old")
            figures: dict[str, list[float]] = {args.rev: [], "working tree": []}
            for _ in range(args.repeat):  # alternately, so that a drift spreads over both
                for name, tree in ((args.rev, old), ("working tree", "")):
                    if args.instructions:
                        value = per_append_instructions(tree, url, args.appends, args.burst)
                    else:
                        value = measure(tree, url, args.appends, args.burst)
                    figures[name].append(value)
        finally:
            await procs.stop(redis)
    return figures


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
