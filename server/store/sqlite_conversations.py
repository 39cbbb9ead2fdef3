"""Read marks and members' orders in the embedded store's SQLite file
(``SqliteConversations``, mixed into ``SqliteStore``).

Created by ``open()`` beside the store's own tables (``CONVERSATIONS_SCHEMA``; a
file made before they existed gets them when it is opened, schema version
unchanged)::

    read_marks                    (room, member) -> the seq read up to
    orders_buyer, orders_seller   indexes of ``orders``: a member's, newest first

A mark moves in the writer thread, so reading the room's last message and
moving the mark are one step even while the room is being written: entries
appended earlier in the same batch are already visible to it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, TypeVar

from parley.server.core.model import ListingId, Order, OrderId, UserId
from parley.server.store.base import UNREAD_CAP, OrderRole

T = TypeVar("T")

CONVERSATIONS_SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS read_marks (
        room TEXT NOT NULL, user_id TEXT NOT NULL, seq INTEGER NOT NULL,
        PRIMARY KEY (room, user_id)) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS orders_buyer ON orders (buyer_id, created_ts, id)",
    "CREATE INDEX IF NOT EXISTS orders_seller ON orders (seller_id, created_ts, id)",
)

# The room's last message, as history shows them: a mark never passes it.
_LAST_MESSAGE: Final = (
    "SELECT seq FROM entries WHERE room = ? AND kind IN ('comment', 'system', 'notification')"
    " ORDER BY seq DESC LIMIT 1"
)
_MARK: Final = "SELECT seq FROM read_marks WHERE room = ? AND user_id = ?"
# Counted in one statement, so the mark and the messages are of one moment.
_UNREAD: Final = f"""
SELECT count(*) FROM (
    SELECT 1 FROM entries
    WHERE room = ? AND seq > coalesce(({_MARK}), 0)
      AND kind IN ('comment', 'system') AND coalesce(author_id, '') != ?
    LIMIT ?)
"""
_ORDER_COLUMNS: Final = "id, listing_id, buyer_id, seller_id, status, created_ts"
_PARTY_COLUMN: Final[dict[OrderRole, str]] = {"buyer": "buyer_id", "seller": "seller_id"}


class SqliteConversations:
    """The read marks and "My orders" part of ``SqliteStore``, mixed into it."""

    if TYPE_CHECKING:  # provided by SqliteStore

        async def _write(self, run: Callable[[sqlite3.Connection], T]) -> T: ...

        async def _read(self, query: Callable[[sqlite3.Connection], T]) -> T: ...

    async def set_read_mark(self, room: str, user_id: UserId, seq: int) -> tuple[int, bool]:
        def run(conn: sqlite3.Connection) -> tuple[int, bool]:
            last = conn.execute(_LAST_MESSAGE, (room,)).fetchone()
            mark_row = conn.execute(_MARK, (room, user_id)).fetchone()
            mark = 0 if mark_row is None else int(mark_row[0])
            wanted = min(seq, 0 if last is None else int(last[0]))
            if wanted <= mark:
                return mark, False
            conn.execute(
                "INSERT INTO read_marks (room, user_id, seq) VALUES (?, ?, ?)"
                " ON CONFLICT (room, user_id) DO UPDATE SET seq = excluded.seq",
                (room, user_id, wanted),
            )
            return wanted, True

        return await self._write(run)

    async def read_marks(self, room: str) -> dict[UserId, int]:
        rows = await self._read(
            lambda conn: conn.execute(
                "SELECT user_id, seq FROM read_marks WHERE room = ?", (room,)
            ).fetchall()
        )
        return {UserId(user_id): seq for user_id, seq in rows}

    async def unread_count(self, room: str, user_id: UserId) -> int:
        row = await self._read(
            lambda conn: conn.execute(
                _UNREAD, (room, room, user_id, user_id, UNREAD_CAP)
            ).fetchone()
        )
        return int(row[0])

    async def orders_of(
        self, user_id: UserId, role: OrderRole, before: int | None, limit: int
    ) -> list[Order]:
        if limit <= 0:  # SQLite reads a negative LIMIT as "no limit"
            return []
        sql = (
            f"SELECT {_ORDER_COLUMNS} FROM orders WHERE {_PARTY_COLUMN[role]} = ?"
            " AND created_ts < ? ORDER BY created_ts DESC, id DESC LIMIT ?"
        )
        args = (user_id, (1 << 62) if before is None else before, limit)
        rows = await self._read(lambda conn: conn.execute(sql, args).fetchall())
        return [_order_from_row(row) for row in rows]


def _order_from_row(row: tuple[Any, ...]) -> Order:
    order_id, listing_id, buyer_id, seller_id, status, created_ts = row
    return Order(
        OrderId(order_id),
        ListingId(listing_id),
        UserId(buyer_id),
        UserId(seller_id),
        status,
        created_ts,
    )
