"""The push outbox in the embedded store's SQLite file.

Tables, created by ``open()`` beside the store's own::

    push_items    id (never reused) -> member, seq, the item as JSON
    push_groups   the consumer groups, created by their first fetch
    push_pending  one row per group per item it has not acked: who holds it,
                  until when (ms, injected clock), how many times it went out
    push_meta     the number of items retained, so trimming needs no count(*)
    push_prepared notification key -> member, item without seq, when prepared (ms)
    push_pushed   notification key -> when its item was enqueued (ms), kept
                  ``PUSHED_KEEP_MS``

Every change runs in the store's writer thread, inside its group-commit
transaction (``SqliteStore._write``): one fetch or ack is atomic with respect
to every other, and durable when it returns. Long-polls wake on this process's
enqueues and acks (the embedded store serves one process), and when the next
visibility deadline is due.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from typing import Any, Final

from parley.server.core.model import UserId
from parley.server.store.outbox import SCAN_MAX, PushItem, PushOutbox, Taken, with_seq
from parley.server.store.sqlite import SqliteStore

# Re-check at least this often while waiting (seconds): covers a clock that jumps.
RECHECK_MAX: Final = 1.0

_SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS push_items (
        id INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL, seq INTEGER NOT NULL,
        body TEXT NOT NULL)""",
    "CREATE TABLE IF NOT EXISTS push_groups (name TEXT PRIMARY KEY) WITHOUT ROWID",
    """CREATE TABLE IF NOT EXISTS push_pending (
        grp TEXT NOT NULL, item INTEGER NOT NULL, user_id TEXT NOT NULL, seq INTEGER NOT NULL,
        consumer TEXT, deadline_ms INTEGER, deliveries INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (grp, item)) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS push_pending_member ON push_pending (grp, user_id, seq)",
    """CREATE INDEX IF NOT EXISTS push_pending_due ON push_pending (grp, deadline_ms)
        WHERE deadline_ms IS NOT NULL""",
    "CREATE INDEX IF NOT EXISTS push_pending_item ON push_pending (item)",
    """CREATE TABLE IF NOT EXISTS push_meta (
        key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID""",
    "INSERT OR IGNORE INTO push_meta (key, value) VALUES ('length', 0)",
    """CREATE TABLE IF NOT EXISTS push_prepared (
        key TEXT PRIMARY KEY, user_id TEXT NOT NULL, body BLOB NOT NULL,
        prepared_ms INTEGER NOT NULL) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS push_prepared_at ON push_prepared (prepared_ms)",
    """CREATE TABLE IF NOT EXISTS push_pushed (
        key TEXT PRIMARY KEY, pushed_ms INTEGER NOT NULL) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS push_pushed_at ON push_pushed (pushed_ms)",
)

# Not held: never handed out, or its visibility timeout has passed.
_FREE: Final = "(deadline_ms IS NULL OR deadline_ms <= ?)"


class SqliteOutbox(PushOutbox):
    def __init__(self, store: SqliteStore, **options: Any) -> None:
        super().__init__(**options)
        self._store = store

    async def open(self) -> None:
        def run(conn: sqlite3.Connection) -> None:
            for statement in _SCHEMA:
                conn.execute(statement)

        await self._store._write(run)

    async def _put(self, items: list[tuple[PushItem, bytes]]) -> None:
        rows: list[tuple[str, int, str]] = [
            (item.user_id, item.seq, raw.decode()) for item, raw in items
        ]
        await self._store._write(lambda conn: self._put_in_batch(conn, rows))

    def _put_in_batch(self, conn: sqlite3.Connection, rows: list[tuple[str, int, str]]) -> None:
        # AUTOINCREMENT: new ids are above every id ever used, even deleted ones.
        (last,) = conn.execute("SELECT coalesce(max(id), 0) FROM push_items").fetchone()
        conn.executemany("INSERT INTO push_items (user_id, seq, body) VALUES (?, ?, ?)", rows)
        conn.execute(
            "INSERT INTO push_pending (grp, item, user_id, seq)"
            " SELECT g.name, i.id, i.user_id, i.seq FROM push_items i, push_groups g"
            " WHERE i.id > ?",
            (last,),
        )
        length = _add_length(conn, len(rows))
        if length > self.max_items:
            (newest_trimmed,) = conn.execute(
                "SELECT id FROM push_items ORDER BY id LIMIT 1 OFFSET ?",
                (length - self.max_items - 1,),
            ).fetchone()
            conn.execute("DELETE FROM push_pending WHERE item <= ?", (newest_trimmed,))
            trimmed = conn.execute("DELETE FROM push_items WHERE id <= ?", (newest_trimmed,))
            _add_length(conn, -trimmed.rowcount)

    async def _prepare(self, key: str, user_id: UserId, raw: bytes, now_ms: int) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            if conn.execute("SELECT 1 FROM push_pushed WHERE key = ?", (key,)).fetchone():
                return False
            conn.execute(
                "INSERT OR IGNORE INTO push_prepared (key, user_id, body, prepared_ms)"
                " VALUES (?, ?, ?, ?)",
                (key, user_id, raw, now_ms),
            )
            return True

        return await self._store._write(run)

    async def _commit(self, key: str, seq: int, now_ms: int, forget_before_ms: int) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            rows = conn.execute(
                "DELETE FROM push_prepared WHERE key = ? RETURNING user_id, body", (key,)
            ).fetchall()
            if not rows:
                return False
            [(user_id, raw)] = rows
            self._put_in_batch(conn, [(user_id, seq, with_seq(raw, seq).decode())])
            conn.execute("DELETE FROM push_pushed WHERE pushed_ms < ?", (forget_before_ms,))
            conn.execute(
                "INSERT OR REPLACE INTO push_pushed (key, pushed_ms) VALUES (?, ?)", (key, now_ms)
            )
            return True

        return await self._store._write(run)

    async def _prepared(self, before_ms: int, limit: int) -> list[tuple[str, bytes]]:
        rows = await self._store._read(
            lambda conn: conn.execute(
                "SELECT key, body FROM push_prepared WHERE prepared_ms < ?"
                " ORDER BY prepared_ms, key LIMIT ?",
                (before_ms, limit),
            ).fetchall()
        )
        return [(key, bytes(body)) for key, body in rows]

    async def _take(
        self, group: str, consumer: str, count: int, now_ms: int, deadline_ms: int
    ) -> Taken:
        def run(conn: sqlite3.Connection) -> tuple[list[tuple[int, str, int]], int | None]:
            return _take_in_batch(conn, group, consumer, count, now_ms, deadline_ms)

        taken, next_due_ms = await self._store._write(run)
        recheck = RECHECK_MAX
        if next_due_ms is not None:
            recheck = min(recheck, max((next_due_ms - now_ms) / 1000, 0.001))
        return [(str(item), body, deliveries) for item, body, deliveries in taken], recheck

    async def _ack(self, group: str, ids: list[str]) -> int:
        items = [int(i) for i in ids if i.isascii() and i.isdigit() and len(i) <= 18]
        if not items:
            return 0

        def run(conn: sqlite3.Connection) -> int:
            acked = [
                item
                for item in items
                if conn.execute(
                    "DELETE FROM push_pending WHERE grp = ? AND item = ? AND deliveries > 0",
                    (group, item),
                ).rowcount
            ]
            # Acked by every group there is: nobody will fetch it again.
            dropped = sum(
                conn.execute(
                    "DELETE FROM push_items WHERE id = ?"
                    " AND NOT EXISTS (SELECT 1 FROM push_pending WHERE item = ?)",
                    (item, item),
                ).rowcount
                for item in acked
            )
            if dropped:
                _add_length(conn, -dropped)
            return len(acked)

        return await self._store._write(run)

    async def _drop_member(self, user_id: UserId) -> int:
        def run(conn: sqlite3.Connection) -> int:
            conn.execute("DELETE FROM push_pending WHERE user_id = ?", (user_id,))
            conn.execute("DELETE FROM push_prepared WHERE user_id = ?", (user_id,))
            dropped = conn.execute("DELETE FROM push_items WHERE user_id = ?", (user_id,))
            if dropped.rowcount:
                _add_length(conn, -dropped.rowcount)
            return dropped.rowcount

        return await self._store._write(run)

    async def _stats(self, group: str, now_ms: int) -> dict[str, int]:
        def query(conn: sqlite3.Connection) -> dict[str, int]:
            (length,) = conn.execute("SELECT value FROM push_meta WHERE key = 'length'").fetchone()
            pending, held = conn.execute(
                "SELECT count(*), coalesce(sum(deadline_ms > ?), 0) FROM push_pending"
                " WHERE grp = ? AND deliveries > 0",
                (now_ms, group),
            ).fetchone()
            return {"length": length, "pending": pending, "held": held}

        return await self._store._read(query)


def _add_length(conn: sqlite3.Connection, delta: int) -> int:
    conn.execute("UPDATE push_meta SET value = value + ? WHERE key = 'length'", (delta,))
    (length,) = conn.execute("SELECT value FROM push_meta WHERE key = 'length'").fetchone()
    return int(length)


def _take_in_batch(
    conn: sqlite3.Connection, group: str, consumer: str, count: int, now_ms: int, deadline_ms: int
) -> tuple[list[tuple[int, str, int]], int | None]:
    """Pick, mark held and return up to ``count`` items; or the next deadline due."""
    if conn.execute("INSERT OR IGNORE INTO push_groups (name) VALUES (?)", (group,)).rowcount:
        # A new group starts at the oldest item retained.
        conn.execute(
            "INSERT INTO push_pending (grp, item, user_id, seq)"
            " SELECT ?, id, user_id, seq FROM push_items",
            (group,),
        )
    # Members with an item held (even by this consumer: it may have restarted
    # and lost it) wait until that item is acked or its timeout passes.
    blocked = {
        user
        for (user,) in conn.execute(
            "SELECT DISTINCT user_id FROM push_pending WHERE grp = ? AND deadline_ms > ?",
            (group, now_ms),
        )
    }
    # One slot per free item, in enqueue order, for members nobody holds...
    slots: list[str] = []
    cursor = conn.execute(
        f"SELECT user_id FROM push_pending WHERE grp = ? AND {_FREE} ORDER BY item LIMIT ?",
        (group, now_ms, SCAN_MAX),
    )
    for (user,) in cursor:
        if user not in blocked:
            slots.append(user)
            if len(slots) == count:
                break
    cursor.close()
    # ...then each member's slots take its free items with the lowest seqs, so
    # a member's items go out in seq order even if they were enqueued out of it.
    lowest: dict[str, list[tuple[int, int]]] = {
        user: conn.execute(
            f"SELECT item, deliveries FROM push_pending WHERE grp = ? AND user_id = ? AND {_FREE}"
            " ORDER BY seq, item LIMIT ?",
            (group, user, now_ms, k),
        ).fetchall()[::-1]
        for user, k in Counter(slots).items()
    }
    # Within this transaction each member has at least as many free items as slots.
    picked = [lowest[user].pop() for user in slots if lowest[user]]
    if not picked:
        (next_due,) = conn.execute(
            "SELECT min(deadline_ms) FROM push_pending WHERE grp = ? AND deadline_ms > ?",
            (group, now_ms),
        ).fetchone()
        return [], next_due
    conn.executemany(
        "UPDATE push_pending SET consumer = ?, deadline_ms = ?, deliveries = deliveries + 1"
        " WHERE grp = ? AND item = ?",
        [(consumer, deadline_ms, group, item) for item, _ in picked],
    )
    marks = ",".join("?" * len(picked))
    bodies = dict(
        conn.execute(
            f"SELECT id, body FROM push_items WHERE id IN ({marks})", [i for i, _ in picked]
        ).fetchall()
    )
    taken = [(item, bodies[item], n + 1) for item, n in picked if item in bodies]
    return taken, None
