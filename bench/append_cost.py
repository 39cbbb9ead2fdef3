"""What the embedded store's writer spends per append, at two commits.

``python -m bench.append_cost --rev REV [--new REV2] [--appends 40000] [--repeat 4]``
runs ``SqliteStore._append_in_batch`` (the writer's step for one post:
idempotency lookup, seq, insert, indexes) for comments spread over 2,000 order
rooms and 4,000 authors, each with its ``client_msg_id`` as W4's posts, 200 per
transaction as under load, and prints the process CPU microseconds per append
of the working tree (or of ``REV2``) and of ``REV`` (extracted with ``git
archive``), run alternately so that a drift of the machine spreads over both.
The I/O of the commits is not CPU time: this isolates what a change to
the append path costs, which W4's figures drown in a loaded machine's noise.

``python -m bench.append_cost --rev REV --prefill 0,1000000 [--appends 20000]
[--rounds 3]`` asks how the cost grows with the log: for each size, and for each
of the two trees in turn, it fills a fresh file with that many entries (25 per
room, through SQL, then indexed as the tree's schema says), then times rounds of
appends by the writer's step with its real commits (WAL, ``synchronous=FULL``, one
commit per 200 appends) to 2,000 of those rooms spread over the file, and prints
wall-clock and CPU microseconds per append of each round. The file lives in
``--dir`` (default: the current directory), is about 300 bytes per entry, and is
removed after each run.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_MEASURE = """
import sys, tempfile, time
sys.path.insert(0, sys.argv[1]) if sys.argv[1] else None
import parley.server.store.sqlite as sq
from parley.server.core.model import Author, Draft, UserId

appends = int(sys.argv[2])
path = tempfile.mkdtemp() + "/parley.sqlite3"
conn = sq._connect(path)
sq._create_schema(conn)
store = sq.SqliteStore(path)
text = "Bonjour, est-ce encore disponible ? Merci " * 3
conn.execute("BEGIN")
started = time.process_time()
for i in range(appends):
    draft = Draft("comment", text, i, Author(UserId(f"u{i % 4000}"), "n"), f"m{i}")
    store._append_in_batch(conn, f"order:o{i % 2000}", draft, None)
    if i % 200 == 199:
        for room in store._undo:
            conn.execute(
                "UPDATE rooms SET last_seq = ? WHERE room = ?", (store._seq_cache[room][0], room)
            )
        store._undo = {}
        conn.execute("COMMIT")
        conn.execute("BEGIN")
conn.execute("COMMIT")
print((time.process_time() - started) / appends * 1e6)
"""


_GROWTH = """
import os, sqlite3, sys, time
sys.path.insert(0, sys.argv[1]) if sys.argv[1] else None
import parley.server.store.sqlite as sq
from parley.server.core.model import Author, Draft, UserId

appends, prefill, rounds, path = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
per_room, active = 25, 2000
rooms = max(active, prefill // per_room)
conn = sq._connect(path)
sq._create_schema(conn)
conn.close()
text = "Bonjour, est-ce encore disponible ? Merci " * 3
started = time.perf_counter()
if prefill:
    # In key order, the secondary indexes dropped and built again after: minutes,
    # not hours, for ten million entries, whatever the layout.
    fill = sqlite3.connect(path, isolation_level=None)
    fill.execute("PRAGMA journal_mode = DELETE")
    fill.execute("PRAGMA synchronous = OFF")
    fill.execute("PRAGMA cache_size = -262144")
    indexes = fill.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'entries'"
        " AND sql IS NOT NULL AND name NOT LIKE 'entries_room_seq'"
    ).fetchall()
    fill.execute("BEGIN")
    for name, _ in indexes:
        fill.execute(f"DROP INDEX {name}")
    fill.execute(
        f"INSERT INTO entries ({sq._ENTRY_COLUMNS})"
        " WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ? - 1)"
        " SELECT printf('order:o%07d', i / ?), i % ? + 1, 'comment', ?, i,"
        " 'u' || (2 * (i / ?) + i % 2), 'n', 'c' || i, NULL, NULL, NULL, 0, NULL, NULL FROM n",
        (prefill, per_room, per_room, text, per_room),
    )
    for _, sql in indexes:
        fill.execute(sql)
    fill.execute(
        "INSERT INTO rooms (room, last_seq, epoch)"
        " SELECT room, max(seq), 'e' FROM entries GROUP BY room"
    )
    fill.execute("COMMIT")
    fill.execute("PRAGMA journal_mode = WAL")
    fill.close()
filled = time.perf_counter() - started
conn = sq._connect(path)
store = sq.SqliteStore(path)
store._store_id = sq._create_schema(conn)
names = [f"order:o{k * (rooms // active):07d}" for k in range(active)]
n = 0


def io() -> dict[str, int]:
    with open("/proc/self/io") as f:
        return {k: int(v) for k, v in (line.split(": ") for line in f)}


for r in range(rounds):
    before = io()
    wall, cpu = time.perf_counter(), time.process_time()
    conn.execute("BEGIN IMMEDIATE")
    for i in range(appends):
        k = n % active
        author = Author(UserId(f"u{2 * k * (rooms // active) + n % 2}"), "n")
        draft = Draft("comment", text, n, author, client_msg_id=f"m{n}")
        store._append_in_batch(conn, names[k], draft, None)
        n += 1
        if i % 200 == 199 or i == appends - 1:
            for room in store._undo:
                last_seq = store._seq_cache[room][0]
                conn.execute("UPDATE rooms SET last_seq = ? WHERE room = ?", (last_seq, room))
            store._undo = {}
            conn.execute("COMMIT")
            conn.execute("BEGIN IMMEDIATE")
    conn.execute("COMMIT")
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    after = io()
    kb = {k: (after[k] - before[k]) / appends / 1024 for k in ("rchar", "wchar")}
    print(
        f"{filled:.1f} {wall / appends * 1e6:.2f} {cpu / appends * 1e6:.2f}"
        f" {kb['rchar']:.1f} {kb['wchar']:.1f}",
        flush=True,
    )
conn.close()
"""


def growth(tree: str, appends: int, prefill: int, rounds: int, directory: Path) -> list[str]:
    """Rows ``filled_s wall_us cpu_us read_kb written_kb`` of each round at ``tree``."""
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        path = str(Path(tmp) / "parley.sqlite3")
        out = subprocess.run(
            [sys.executable, "-c", _GROWTH, tree, str(appends), str(prefill), str(rounds), path],
            check=True,
            capture_output=True,
            text=True,
            cwd=tempfile.gettempdir(),
        )
    return out.stdout.split("\n")[:-1]


def measure(tree: str, appends: int) -> float:
    """CPU us per append of the code at ``tree`` ('' for the working tree)."""
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, tree, str(appends)],
        check=True,
        capture_output=True,
        text=True,
        cwd=tempfile.gettempdir(),
    )
    return float(out.stdout.strip())


def extract(rev: str, into: Path) -> str:
    """The tree of ``rev`` under ``into``/parley; returns the path to import it from."""
    (into / "parley").mkdir(parents=True)
    archive = subprocess.run(["git", "archive", rev], cwd=ROOT, check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(into / "parley")], input=archive.stdout, check=True)
    return str(into)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.append_cost")
    parser.add_argument("--rev", required=True, help="the commit to compare with")
    parser.add_argument("--new", default=None, help="a commit to measure, not the working tree")
    parser.add_argument("--appends", type=int, default=40_000)
    parser.add_argument("--repeat", type=int, default=4)
    parser.add_argument("--prefill", default=None, help="log sizes, comma-separated")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of appends per size")
    parser.add_argument("--dir", type=Path, default=Path.cwd(), help="where the files go")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        trees = {args.rev: extract(args.rev, Path(tmp) / "old")}
        if args.new is None:
            trees["working tree"] = ""
        else:
            trees[args.new] = extract(args.new, Path(tmp) / "new")
        if args.prefill is not None:
            for size in (int(n) for n in args.prefill.split(",")):
                for name, tree in trees.items():
                    for row in growth(tree, args.appends, size, args.rounds, args.dir):
                        filled, wall, cpu, read, written = row.split()
                        print(
                            f"{size:>10,} entries {name:>14}: {wall:>7} us/append wall,"
                            f" {cpu:>7} CPU, {read:>5} KB read, {written:>5} KB written"
                            f" (filled in {filled} s)",
                            flush=True,
                        )
            return 0
        figures: dict[str, list[float]] = {name: [] for name in trees}
        for _ in range(args.repeat):
            for name, tree in trees.items():
                figures[name].append(measure(tree, args.appends))
    print_figures(figures, "us/append")
    return 0


def print_figures(figures: dict[str, list[float]], unit: str) -> None:
    """Each tree's median and runs, then the ratio of the second to the first."""
    for name, values in figures.items():
        runs = " ".join(f"{v:.1f}" for v in values)
        print(f"{name:>14}: median {statistics.median(values):.1f} {unit} ({runs})")
    before, after = (statistics.median(v) for v in figures.values())
    print(f"ratio {after / before:.3f}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
