"""Members' data rights in the embedded store's SQLite file (``SqliteRights``, mixed
into ``SqliteStore``): the index of what each member wrote.

Created by ``open()`` beside the store's own tables (``RIGHTS_SCHEMA``; a file
made before they existed gets them when it is opened, schema version unchanged)::

    member_entries   (member, room, seq) of every entry a member wrote: comments,
                     edits, deletions, read receipts
    likes_member     an index of ``likes`` by member, for the export

The append path adds a row in the same transaction as the entry
(``INDEX_ENTRY``). ``backfill_member_entries`` fills the index once for a file
written before it existed, in the transaction that opens the file; the meta flag
``member_entries_indexed`` says it was done, so reopening does nothing more.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Final, TypeVar

from parley.server.core.model import Entry, ListingId, UserId
from parley.server.core.offers import Negotiation
from parley.server.store.offers_wire import decode_negotiation

T = TypeVar("T")

log = logging.getLogger("parley.store.sqlite")

RIGHTS_SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS member_entries (
        user_id TEXT NOT NULL, room TEXT NOT NULL, seq INTEGER NOT NULL,
        PRIMARY KEY (user_id, room, seq)) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS likes_member ON likes (user_id, listing_id)",
)
PAGE: Final = 200  # likes or negotiations read at once by the export
INDEX_ENTRY: Final = "INSERT OR IGNORE INTO member_entries (user_id, room, seq) VALUES (?, ?, ?)"
_INDEXED_FLAG: Final = "member_entries_indexed"


def backfill_member_entries(conn: sqlite3.Connection) -> None:
    """Index the entries written before the index existed; once per file.

    Runs inside the caller's transaction: the rows and the flag commit together,
    so a crash leaves either both or neither, and the next open does it again.
    """
    done = conn.execute("SELECT 1 FROM meta WHERE key = ?", (_INDEXED_FLAG,)).fetchone()
    if done is not None:
        return
    added = conn.execute(
        "INSERT OR IGNORE INTO member_entries (user_id, room, seq)"
        " SELECT author_id, room, seq FROM entries WHERE author_id IS NOT NULL"
    ).rowcount
    conn.execute("INSERT INTO meta (key, value) VALUES (?, '1')", (_INDEXED_FLAG,))
    if added:
        log.info("indexed %d entries by their author", added)


class SqliteRights:
    """The members' data rights part of ``SqliteStore``, mixed into it."""

    if TYPE_CHECKING:  # provided by SqliteStore

        async def _read(self, query: Callable[[sqlite3.Connection], T]) -> T: ...

        async def _read_entries(self, sql: str, *args: object) -> list[Entry]: ...

    _entry_columns: str  # the entries table's columns, as ``_read_entries`` reads them

    async def member_entries(
        self, user_id: UserId, after: tuple[str, int] | None, limit: int
    ) -> list[Entry]:
        if limit <= 0:  # SQLite reads a negative LIMIT as "no limit"
            return []
        room, seq = after if after is not None else ("", 0)
        return await self._read_entries(
            f"SELECT {self._entry_columns} FROM entries WHERE (room, seq) IN"
            " (SELECT room, seq FROM member_entries WHERE user_id = ? AND (room, seq) > (?, ?)"
            " ORDER BY room, seq LIMIT ?) ORDER BY room, seq",
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
