"""What the embedded store's writer spends per append, on the CPU, at two commits.

``python -m bench.append_cost --rev REV [--appends 40000] [--repeat 4]`` runs
``SqliteStore._append_in_batch`` (the writer's step for one post: idempotency
lookup, seq, insert, indexes) for comments spread over 2,000 order rooms and
4,000 authors, 200 per transaction as under load, and prints the process CPU
microseconds per append of the working tree and of ``REV`` (extracted with
``git archive``), run alternately so that a drift of the machine spreads over
both. The I/O of the commits is not CPU time: this isolates what a change to
the append path costs, which W4's figures drown in a loaded machine's noise.
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
    draft = Draft("comment", text, i, Author(UserId(f"u{i % 4000}"), "n"))
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


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.append_cost")
    parser.add_argument("--rev", required=True, help="the commit to compare with")
    parser.add_argument("--appends", type=int, default=40_000)
    parser.add_argument("--repeat", type=int, default=4)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        extract(args.rev, tmp)
        figures: dict[str, list[float]] = {args.rev: [], "working tree": []}
        for _ in range(args.repeat):
            figures[args.rev].append(measure(tmp, args.appends))
            figures["working tree"].append(measure("", args.appends))
    print_figures(figures, "us/append")
    return 0


def extract(rev: str, tmp: str) -> None:
    """The code of ``rev`` as ``tmp``/parley, importable with ``tmp`` on sys.path."""
    old = Path(tmp) / "parley"
    old.mkdir()
    archive = subprocess.run(
        ["git", "archive", rev], cwd=ROOT, check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)


def print_figures(figures: dict[str, list[float]], unit: str) -> None:
    """Each tree's median and runs, then the ratio of the second to the first."""
    for name, values in figures.items():
        runs = " ".join(f"{v:.1f}" for v in values)
        print(f"{name:>14}: median {statistics.median(values):.1f} {unit} ({runs})")
    before, after = (statistics.median(v) for v in figures.values())
    print(f"ratio {after / before:.3f}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
