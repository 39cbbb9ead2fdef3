"""Schema 3 -> 4: the entries move from a table keyed by (room, seq) to a rowid table,
in the opening transaction; every entry keeps its seq, its room its epoch, and a
process killed during the move leaves the file as it was."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import orjson

from parley.server.core.model import Author, Draft, UserId
from parley.server.store.sqlite import _ENTRY_COLUMNS, SCHEMA_VERSION, SqliteStore

# The file as schema 3 made it (server/store/sqlite.py and sqlite_rights.py before 4).
SCHEMA_3 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE users (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, locale TEXT NOT NULL, email TEXT,
    name_key TEXT);
CREATE TABLE listings (
    id TEXT PRIMARY KEY, seller_id TEXT NOT NULL, title TEXT NOT NULL,
    amount INTEGER NOT NULL, currency TEXT NOT NULL, photo_url TEXT,
    offers_enabled INTEGER NOT NULL, status TEXT NOT NULL);
CREATE TABLE orders (
    id TEXT PRIMARY KEY, listing_id TEXT NOT NULL, buyer_id TEXT NOT NULL,
    seller_id TEXT NOT NULL, status TEXT NOT NULL, created_ts INTEGER NOT NULL);
CREATE TABLE rooms (
    room TEXT PRIMARY KEY, last_seq INTEGER NOT NULL, epoch TEXT NOT NULL,
    closed INTEGER NOT NULL DEFAULT 0, read_seq INTEGER NOT NULL DEFAULT 0);
CREATE TABLE entries (
    room TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL, text TEXT NOT NULL,
    ts INTEGER NOT NULL, author_id TEXT, author_name TEXT, client_msg_id TEXT,
    target INTEGER, data TEXT, edited_ts INTEGER, deleted INTEGER NOT NULL DEFAULT 0,
    mentions TEXT, masked TEXT, PRIMARY KEY (room, seq)) WITHOUT ROWID;
CREATE UNIQUE INDEX entries_client_msg_id
    ON entries (room, coalesce(author_id, ''), client_msg_id)
    WHERE client_msg_id IS NOT NULL;
CREATE INDEX entries_author ON entries (author_id, room, seq) WHERE author_id IS NOT NULL;
CREATE UNIQUE INDEX users_name_key ON users (name_key);
INSERT INTO meta VALUES ('schema_version', '3'), ('store_id', 'abcdef0123456789');
"""

# Stops a store's opening in the middle of the copy, and waits there to be killed.
# With a cache of ten pages, the copy has already spilled pages into the WAL.
KILLED_DURING_COPY = """
import asyncio, sqlite3, sys
from parley.server.store.sqlite import SqliteStore

connect = sqlite3.connect
def traced(*args, **kwargs):
    conn = connect(*args, **kwargs)
    conn.execute("PRAGMA cache_size = 10")
    running = [""]
    steps = [0]
    conn.set_trace_callback(lambda sql: running.__setitem__(0, sql))
    def progress():
        if running[0].startswith("INSERT INTO entries_v4"):
            steps[0] += 1
            if steps[0] == 200:
                print("copying", flush=True)
                sys.stdin.read()
        return 0
    conn.set_progress_handler(progress, 100)
    return conn
sqlite3.connect = traced
asyncio.run(SqliteStore(sys.argv[1]).open())
"""


def entry_rows(rooms: int, per_room: int) -> list[tuple[object, ...]]:
    """Entries of every shape: with and without author, key, data, mentions, masking;
    edited, deleted, removed, held."""
    rows: list[tuple[object, ...]] = []
    for r in range(rooms):
        room = f"order:o{r}"
        for seq in range(1, per_room + 1):
            n = r * per_room + seq
            author = None if seq % 7 == 0 else f"u{n % 5}"
            rows.append(
                (
                    room,
                    seq,
                    "system" if author is None else ("edit" if seq % 5 == 0 else "comment"),
                    f"message {n} \u00e9t\u00e9",
                    1_000 + n,
                    author,
                    None if author is None else f"name{n % 5}",
                    None if seq % 3 == 0 else f"c{n}",
                    seq - 1 if seq % 5 == 0 else None,
                    orjson.dumps({"n": n}).decode() if seq % 4 == 0 else None,
                    2_000 + n if seq % 6 == 0 else None,
                    seq % 4,
                    '[["u1", "name1", 0, 6]]' if seq % 8 == 0 else None,
                    "phone" if seq % 9 == 0 else None,
                )
            )
    return rows


def schema_3_file(path: Path, rooms: int, per_room: int) -> None:
    rows = entry_rows(rooms, per_room)
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.executescript(SCHEMA_3)
        conn.executemany(
            f"INSERT INTO entries ({_ENTRY_COLUMNS}) VALUES ({', '.join('?' * 14)})", rows
        )
        conn.execute(
            "INSERT INTO rooms (room, last_seq, epoch)"
            " SELECT room, max(seq), 'epoch-' || room FROM entries GROUP BY room"
        )
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA journal_mode = WAL")  # as the store leaves its file


def contents(path: Path) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    with closing(sqlite3.connect(path)) as conn:
        entries = conn.execute(f"SELECT {_ENTRY_COLUMNS} FROM entries ORDER BY room, seq")
        rooms = conn.execute("SELECT * FROM rooms ORDER BY room")
        return entries.fetchall(), rooms.fetchall()


def layout(path: Path) -> tuple[str, str, set[str]]:
    with closing(sqlite3.connect(path)) as conn:
        [(version,)] = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'")
        [(table,)] = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'entries'")
        names = conn.execute("SELECT name FROM sqlite_master WHERE tbl_name = 'entries'")
        return version, table, {name for (name,) in names}


async def test_a_schema_3_file_keeps_every_entry_in_the_rowid_table(tmp_path: Path) -> None:
    path = tmp_path / "parley.sqlite3"
    schema_3_file(path, rooms=12, per_room=40)
    before = contents(path)
    store = SqliteStore(str(path))
    await store.open()
    try:
        assert (await store.head("order:o3")).seq == 40
        assert (await store.head("order:o3")).epoch == "epoch-order:o3"
        replayed = await store.entries_after("order:o3", 0, 100)
        assert [e.seq for e in replayed] == list(range(1, 41))
        # The key of an entry written before still finds it: no second copy.
        author = Author(UserId("u2"), "name2")
        again = await store.append("order:o0", Draft("comment", "x", 9, author, "c2"))
        assert again.duplicate and again.entry.seq == 2
        fresh = await store.append("order:o0", Draft("comment", "y", 9, author, "new"))
        assert not fresh.duplicate and fresh.entry.seq == 41
        mine = await store.member_entries(UserId("u2"), None, 1000)
        assert len(mine) == sum(1 for row in before[0] if row[5] == "u2") + 1
    finally:
        await store.close()
    entries, rooms = contents(path)
    appended = [row for row in entries if row[:2] == ("order:o0", 41)]
    assert [row for row in entries if row not in appended] == before[0] and len(appended) == 1
    assert [r for r in rooms if r[0] != "order:o0"] == [r for r in before[1] if r[0] != "order:o0"]
    version, table, names = layout(path)
    assert version == SCHEMA_VERSION == "4"
    assert "WITHOUT ROWID" not in table
    assert names == {"entries", "entries_room_seq", "entries_client_msg_id", "entries_author"}


async def test_a_process_killed_during_the_move_leaves_schema_3_whole(tmp_path: Path) -> None:
    path = tmp_path / "parley.sqlite3"
    schema_3_file(path, rooms=40, per_room=100)
    before = contents(path)
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_DURING_COPY, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    wal = Path(f"{path}-wal")
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "copying\n"
        assert wal.stat().st_size > 0  # the copy had begun writing
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL
    assert layout(path)[0] == "3"
    assert contents(path) == before
    store = SqliteStore(str(path))
    await store.open()  # the move starts again, and this time ends
    try:
        assert wal.stat().st_size == 0  # its pages went into the file, the WAL was emptied
    finally:
        await store.close()
    assert contents(path) == before
    assert layout(path)[0] == "4"
