"""Members' data rights in the embedded store's SQLite file (``SqliteRights``, mixed
into ``SqliteStore``): the index of what each member wrote.

Created by ``open()`` beside the store's own tables (``RIGHTS_SCHEMA``; a file
made before they existed gets them when it is opened, schema version unchanged)::

    entries_author   an index of ``entries`` by author, room and seq: every entry a
                     member wrote (comments, edits, deletions, read receipts)
    likes_member     an index of ``likes`` by member, for the export
    erasures         member -> where their erasure stands (erasing, erased) and since when

``entries_author`` is an index SQLite keeps itself: each entry's insert updates
it in the same statement, so the append path runs no statement more. Created
by the opening transaction of a file written before it existed, it is built
from the entries already there: that is the migration, and a crash before
its commit leaves it to the next open.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Collection
from typing import TYPE_CHECKING, Any, Final, TypeVar

from parley.server.core.model import Entry, ListingId, UserId
from parley.server.core.offers import Negotiation
from parley.server.store.base import Erasure, ErasureState, StoreUnavailable
from parley.server.store.offers_wire import decode_negotiation

T = TypeVar("T")

RIGHTS_SCHEMA: Final = (
    # Built from the existing entries when first created: the migration of a file
    # written before it existed; then kept by SQLite in each INSERT of an entry.
    """CREATE INDEX IF NOT EXISTS entries_author ON entries (author_id, room, seq)
        WHERE author_id IS NOT NULL""",
    "CREATE INDEX IF NOT EXISTS likes_member ON likes (user_id, listing_id)",
    """CREATE TABLE IF NOT EXISTS erasures (
        user_id TEXT PRIMARY KEY, state TEXT NOT NULL, ts INTEGER NOT NULL) WITHOUT ROWID""",
)
PAGE: Final = 200  # likes or negotiations read at once by the export
INDEX_ENTRY: Final = "INSERT OR IGNORE INTO member_entries (user_id, room, seq) VALUES (?, ?, ?)"
_INDEXED_FLAG: Final = "member_entries_indexed"


class SqliteRights:
    """The members' data rights part of ``SqliteStore``, mixed into it."""

    if TYPE_CHECKING:  # provided by SqliteStore

        async def _read(self, query: Callable[[sqlite3.Connection], T]) -> T: ...

        async def _write(self, run: Callable[[sqlite3.Connection], T]) -> T: ...

        path: str

        async def _read_entries(self, sql: str, *args: object) -> list[Entry]: ...

    _entry_columns: str  # the entries table's columns, as ``_read_entries`` reads them

    async def member_entries(
        self, user_id: UserId, after: tuple[str, int] | None, limit: int
    ) -> list[Entry]:
        if limit <= 0:  # SQLite reads a negative LIMIT as "no limit"
            return []
        room, seq = after if after is not None else ("", 0)
        return await self._read_entries(
            f"SELECT {self._entry_columns} FROM entries INDEXED BY entries_author"
            " WHERE author_id = ? AND (room, seq) > (?, ?) ORDER BY room, seq LIMIT ?",
            user_id,
            room,
            seq,
            limit,
        )

    async def member_likes(self, user_id: UserId) -> AsyncIterator[list[tuple[ListingId, int]]]:
        after = ""
        while True:
            rows = await self._page(
                "SELECT listing_id, ts FROM likes WHERE user_id = ? AND listing_id > ?"
                " ORDER BY listing_id LIMIT ?",
                (user_id, after, PAGE),
            )
            if rows:
                yield [(ListingId(listing_id), ts) for listing_id, ts in rows]
            if len(rows) < PAGE:
                return
            after = rows[-1][0]

    async def member_negotiations(self, user_id: UserId) -> AsyncIterator[list[Negotiation]]:
        after = ""
        while True:
            rows = await self._page(
                "SELECT id, body FROM negotiations WHERE id > ?"
                " AND (buyer_id = ? OR seller_id = ?) ORDER BY id LIMIT ?",
                (after, user_id, user_id, PAGE),
            )
            if rows:
                yield [decode_negotiation(body) for _, body in rows]
            if len(rows) < PAGE:
                return
            after = rows[-1][0]

    async def _page(self, sql: str, args: tuple[object, ...]) -> list[Any]:
        return await self._read(lambda conn: conn.execute(sql, args).fetchall())

    # Erasure.

    async def erasure(self, user_id: UserId) -> Erasure | None:
        row = await self._read(
            lambda conn: conn.execute(
                "SELECT state, ts FROM erasures WHERE user_id = ?", (user_id,)
            ).fetchone()
        )
        return None if row is None else Erasure(row[0], row[1])

    async def set_erasure(self, user_id: UserId, state: ErasureState, ts: int) -> Erasure:
        def run(conn: sqlite3.Connection) -> Erasure:
            conn.execute(
                "INSERT INTO erasures (user_id, state, ts) VALUES (?, ?, ?)"
                " ON CONFLICT (user_id) DO UPDATE SET state = excluded.state, ts = excluded.ts"
                " WHERE erasures.state != 'erased' AND erasures.state != excluded.state",
                (user_id, state, ts),
            )
            row = conn.execute(
                "SELECT state, ts FROM erasures WHERE user_id = ?", (user_id,)
            ).fetchone()
            return Erasure(row[0], row[1])

        return await self._write(run)

    async def erase_profile(self, user_id: UserId, placeholder: str) -> None:
        def run(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO users (id, name, locale, email, name_key)"
                " VALUES (?, ?, 'en', NULL, NULL) ON CONFLICT (id)"
                " DO UPDATE SET name = excluded.name, email = NULL, name_key = NULL",
                (user_id, placeholder),
            )

        await self._write(run)

    async def rename_author(
        self, room: str, user_id: UserId, seqs: Collection[int], name: str
    ) -> None:
        rows = [(name, room, seq, user_id) for seq in seqs]

        def run(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "UPDATE entries SET author_name = ? WHERE room = ? AND seq = ? AND author_id = ?",
                rows,
            )

        await self._write(run)

    async def drop_room_entries(self, room: str) -> None:
        def run(conn: sqlite3.Connection) -> None:
            # The rooms row stays: its last_seq goes on, and the writer's cache of it
            # stays true.
            conn.execute("DELETE FROM entries WHERE room = ?", (room,))
            conn.execute("UPDATE rooms SET read_seq = 0 WHERE room = ?", (room,))

        await self._write(run)

    async def drop_read_marks(self, user_id: UserId, rooms: Collection[str]) -> None:
        def run(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM read_marks WHERE user_id = ?", (user_id,))

        await self._write(run)

    async def forget_freed(self) -> None:
        # Erased words are zeroed in the database's pages (secure_delete), but the
        # write-ahead log keeps the pages as they were until it is checkpointed;
        # TRUNCATE empties it. On a connection of its own, so that neither the
        # writer's batches nor the reader wait for it.
        try:
            await asyncio.to_thread(_truncate_wal, self.path)
        except sqlite3.Error as exc:
            raise StoreUnavailable() from exc


def _truncate_wal(path: str) -> None:
    conn = sqlite3.connect(path, timeout=5.0, isolation_level=None)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
