"""The floor under W4 and W5: what SQLite alone costs per post on this disk.

``python -m bench.commits [--commits 2000] [--rows 10] [--table plain|parley|clustered]``
commits batches of rows in WAL mode with ``synchronous=FULL`` (Parley's
settings), rows spread over 4,000 rooms as in W2/W4, and prints the latency
percentiles of a commit, the rows per second, and the cost per row of each
tenth of the run (does it grow with the table?). Tables:

- ``plain``: room, seq, text, ts, keyed by (room, seq) ``WITHOUT ROWID``;
- ``parley``: Parley's own schema (``server/store/sqlite.py``), with its
  ``client_msg_id`` lookup before each insert, as the writer does;
- ``clustered``: the same columns and indexes in the layout of schema 3 and
  before: a table keyed by (room, seq) ``WITHOUT ROWID`` (Parley's is now a
  rowid table with (room, seq) as a unique secondary index).

A post is acknowledged, and delivered, only after its batch's commit: a p99 of
the commit is a floor under W5's p99.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOMS = 4000


_PLAIN = (
    "CREATE TABLE entries (room TEXT NOT NULL, seq INTEGER NOT NULL, text TEXT NOT NULL,"
    " ts INTEGER NOT NULL, PRIMARY KEY (room, seq)) WITHOUT ROWID"
)
_CLUSTERED = """
CREATE TABLE entries (
    room TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL, text TEXT NOT NULL,
    ts INTEGER NOT NULL, author_id TEXT, author_name TEXT, client_msg_id TEXT,
    target INTEGER, data TEXT, edited_ts INTEGER, deleted INTEGER NOT NULL DEFAULT 0,
    mentions TEXT, masked TEXT, PRIMARY KEY (room, seq)) WITHOUT ROWID;
CREATE UNIQUE INDEX entries_client_msg_id
    ON entries (room, coalesce(author_id, ''), client_msg_id)
    WHERE client_msg_id IS NOT NULL;
"""


def _statements(conn: sqlite3.Connection, table: str) -> tuple[str, str | None]:
    """Create the table; return its INSERT and the lookup made before it (if any)."""
    if table == "plain":
        conn.execute(_PLAIN)
        return "INSERT INTO entries VALUES (?, ?, ?, ?)", None
    from parley.server.store import sqlite as store

    if table == "parley":
        conn.executescript(store._SCHEMA)
        conn.execute(store._ENTRIES_TABLE.format(name="entries"))
        for sql in store._ENTRIES_INDEXES:
            conn.execute(sql)
    else:
        conn.executescript(_CLUSTERED)
    insert = (
        f"INSERT INTO entries ({store._ENTRY_COLUMNS})"
        " VALUES (?, ?, 'comment', ?, ?, 'u1', 'marie', ?, NULL, NULL, NULL, 0, NULL, NULL)"
    )
    lookup = (
        f"SELECT {store._ENTRY_COLUMNS} FROM entries WHERE room = ?"
        " AND coalesce(author_id, '') = 'u1' AND client_msg_id = ?"
    )
    return insert, lookup


def run(directory: Path, commits: int, rows: int, table: str = "plain") -> dict[str, float]:
    conn = sqlite3.connect(directory / "commits.sqlite3", isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    insert, lookup = _statements(conn, table)
    seqs = [0] * ROOMS
    took: list[float] = []
    tenths: list[float] = []
    n = 0
    started = tenth_started = time.perf_counter()
    for i in range(commits):
        conn.execute("BEGIN IMMEDIATE")
        for _ in range(rows):
            room = n % ROOMS
            seqs[room] += 1
            name, text = f"order:bo{room}", "Is it still available? " * 2
            if lookup is None:
                conn.execute(insert, (name, seqs[room], text, n))
            else:
                conn.execute(lookup, (name, f"m{n}")).fetchone()
                conn.execute(insert, (name, seqs[room], text, n, f"m{n}"))
            n += 1
        before = time.perf_counter()
        conn.execute("COMMIT")
        took.append(time.perf_counter() - before)
        if (i + 1) % max(1, commits // 10) == 0:
            now = time.perf_counter()
            tenths.append((now - tenth_started) / (max(1, commits // 10) * rows) * 1e6)
            tenth_started = now
    elapsed = time.perf_counter() - started
    conn.close()
    took.sort()

    def pct(p: float) -> float:
        return took[min(len(took) - 1, int(p * len(took)))] * 1000

    return {
        "commit_p50_ms": pct(0.50),
        "commit_p99_ms": pct(0.99),
        "commit_p999_ms": pct(0.999),
        "commit_max_ms": took[-1] * 1000,
        "commit_mean_ms": statistics.fmean(took) * 1000,
        "rows_per_s": n / elapsed,
        **{f"us_per_row_{i + 1}0pct": v for i, v in enumerate(tenths)},
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.commits", description=__doc__)
    parser.add_argument("--commits", type=int, default=2000)
    parser.add_argument("--rows", type=int, default=10, help="rows per commit")
    parser.add_argument("--table", choices=("plain", "parley", "clustered"), default="plain")
    parser.add_argument("--dir", type=Path, default=None, help="default: a temporary directory")
    args = parser.parse_args(argv)
    if args.dir is not None:
        result = run(args.dir, args.commits, args.rows, args.table)
    else:
        with tempfile.TemporaryDirectory(dir=Path.cwd()) as directory:
            result = run(Path(directory), args.commits, args.rows, args.table)
    for name, value in result.items():
        print(f"{name:16} {value:12,.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
