"""Members' blocks and mutes in the embedded store's SQLite file (``SqliteModeration``).

Tables, created by ``open()`` beside the store's own (``MODERATION_SCHEMA``; a file
made before they existed gets them when it is opened, schema version unchanged)::

    blocks   (member, blocked member) -> when
    mutes    (member, room) -> when

A bounded addition counts and inserts in the writer's one transaction, so two
additions racing cannot pass the bound together.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Final, TypeVar

from parley.server.core.model import UserId
from parley.server.core.moderation import check_room_for_list
from parley.server.store.member_lists import LIST_NAMES, MemberLists

T = TypeVar("T")

MODERATION_SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS blocks (
        user_id TEXT NOT NULL, other TEXT NOT NULL, ts INTEGER NOT NULL,
        PRIMARY KEY (user_id, other)) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS blocks_other ON blocks (other, user_id)",
    """CREATE TABLE IF NOT EXISTS mutes (
        user_id TEXT NOT NULL, room TEXT NOT NULL, ts INTEGER NOT NULL,
        PRIMARY KEY (user_id, room)) WITHOUT ROWID""",
)

# Which table holds which list, and the name of its item column.
_LISTS: Final = {"blocks": "other", "mutes": "room"}


class SqliteModeration(MemberLists):
    """The blocks and mutes part of ``SqliteStore``, mixed into it."""

    if TYPE_CHECKING:  # provided by SqliteStore

        async def _write(self, run: Callable[[sqlite3.Connection], T]) -> T: ...

        async def _read(self, query: Callable[[sqlite3.Connection], T]) -> T: ...

    async def _add_to_list(self, part: str, user_id: str, item: str, ts: int, limit: int) -> bool:
        table, column = part, _LISTS[part]

        def run(conn: sqlite3.Connection) -> bool:
            there = conn.execute(
                f"SELECT 1 FROM {table} WHERE user_id = ? AND {column} = ?", (user_id, item)
            ).fetchone()
            if there is not None:
                return False
            (count,) = conn.execute(
                f"SELECT count(*) FROM {table} WHERE user_id = ?", (user_id,)
            ).fetchone()
            check_room_for_list(count, limit, LIST_NAMES[part])
            conn.execute(
                f"INSERT INTO {table} (user_id, {column}, ts) VALUES (?, ?, ?)",
                (user_id, item, ts),
            )
            return True

        return await self._write(run)

    async def _remove_from_list(self, part: str, user_id: str, item: str) -> bool:
        table, column = part, _LISTS[part]

        def run(conn: sqlite3.Connection) -> bool:
            return bool(
                conn.execute(
                    f"DELETE FROM {table} WHERE user_id = ? AND {column} = ?", (user_id, item)
                ).rowcount
            )

        return await self._write(run)

    async def _list(self, part: str, user_id: str, limit: int) -> list[tuple[str, int]]:
        table, column = part, _LISTS[part]
        rows = await self._read(
            lambda conn: conn.execute(
                f"SELECT {column}, ts FROM {table} WHERE user_id = ?"
                f" ORDER BY ts DESC, {column} DESC LIMIT ?",  # as ZREVRANGE
                (user_id, limit),
            ).fetchall()
        )
        return [(row[0], row[1]) for row in rows]

    async def blocked_between(self, user_id: UserId, others: Collection[UserId]) -> set[UserId]:
        wanted = list(others)
        if not wanted:
            return set()
        marks = ", ".join("?" * len(wanted))
        rows = await self._read(
            lambda conn: conn.execute(
                f"SELECT other FROM blocks WHERE user_id = ? AND other IN ({marks})"
                f" UNION SELECT user_id FROM blocks WHERE other = ? AND user_id IN ({marks})",
                (user_id, *wanted, user_id, *wanted),
            ).fetchall()
        )
        return {UserId(row[0]) for row in rows}

    async def silencing(
        self, user_id: UserId, author: UserId | None, room: str | None
    ) -> tuple[bool, bool]:
        row = await self._read(
            lambda conn: conn.execute(
                "SELECT EXISTS (SELECT 1 FROM blocks WHERE user_id = ? AND other = ?),"
                " EXISTS (SELECT 1 FROM mutes WHERE user_id = ? AND room = ?)",
                (user_id, author or "", user_id, room or ""),
            ).fetchone()
        )
        return bool(row[0]), bool(row[1])
