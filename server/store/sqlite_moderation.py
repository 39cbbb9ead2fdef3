"""Members' blocks and mutes in the embedded store's SQLite file (``SqliteModeration``).

Tables, created by ``open()`` beside the store's own (``MODERATION_SCHEMA``; a file
made before they existed gets them when it is opened, schema version unchanged)::

    blocks        (member, blocked member) -> when
    mutes         (member, room) -> when
    reports       one row per reported message: the review queue's item
    report_flags  (item, reporter) -> reason, note, when: one report per member
    restrictions  member -> kind, until, reason, when

A bounded addition counts and inserts in the writer's one transaction, so two
additions racing cannot pass the bound together.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import AsyncIterator, Callable, Collection
from typing import TYPE_CHECKING, Any, Final, TypeVar

import orjson

from parley.server.core import reports as core_reports
from parley.server.core.model import AppendResult, Draft, UserId
from parley.server.core.moderation import check_room_for_list
from parley.server.core.reports import EVENTS_ROOM, MAX_NOTES, Filed, Flag, Report
from parley.server.core.restrictions import Restriction
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
    """CREATE TABLE IF NOT EXISTS reports (
        id TEXT PRIMARY KEY, n INTEGER NOT NULL UNIQUE, room TEXT NOT NULL,
        seq INTEGER NOT NULL, author_id TEXT NOT NULL, snapshot TEXT NOT NULL,
        state TEXT NOT NULL, created_ts INTEGER NOT NULL, updated_ts INTEGER NOT NULL,
        reporters INTEGER NOT NULL, reasons TEXT NOT NULL, notes TEXT NOT NULL,
        resolution TEXT, UNIQUE (room, seq))""",
    "CREATE INDEX IF NOT EXISTS reports_queue ON reports (state, n)",
    """CREATE TABLE IF NOT EXISTS report_flags (
        report_id TEXT NOT NULL, reporter TEXT NOT NULL, reason TEXT NOT NULL,
        note TEXT, ts INTEGER NOT NULL, PRIMARY KEY (report_id, reporter)) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS report_flags_reporter ON report_flags (reporter, report_id)",
    """CREATE TABLE IF NOT EXISTS restrictions (
        user_id TEXT PRIMARY KEY, kind TEXT NOT NULL, until INTEGER, reason TEXT NOT NULL,
        ts INTEGER NOT NULL)""",
)
_REPORT_COLUMNS: Final = (
    "id, n, room, seq, author_id, snapshot, state, created_ts, updated_ts, reporters,"
    " reasons, notes, resolution"
)

PAGE: Final = 200  # a member's reports read at once

# Which table holds which list, and the name of its item column.
_LISTS: Final = {"blocks": "other", "mutes": "room"}


class SqliteModeration(MemberLists):
    """The blocks and mutes part of ``SqliteStore``, mixed into it."""

    if TYPE_CHECKING:  # provided by SqliteStore

        async def _write(self, run: Callable[[sqlite3.Connection], T]) -> T: ...

        async def _read(self, query: Callable[[sqlite3.Connection], T]) -> T: ...

        async def _page(self, sql: str, args: tuple[object, ...]) -> list[Any]: ...

        def _append_in_batch(
            self, conn: sqlite3.Connection, room: str, draft: Draft, data: str | None
        ) -> AppendResult: ...

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

    async def _clear_lists(self, user_id: str) -> None:
        def run(conn: sqlite3.Connection) -> None:
            for table in _LISTS:
                conn.execute(f"DELETE FROM {table} WHERE user_id = ?", (user_id,))

        await self._write(run)

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

    # Reports.

    async def file_report(
        self,
        report_id: str,
        snapshot: dict[str, Any],
        flag: Flag,
        event: Draft,
    ) -> Filed:
        event_data = orjson.dumps(event.data).decode()
        room, seq = snapshot["room"], snapshot["seq"]

        def run(conn: sqlite3.Connection) -> Filed:
            row = conn.execute(
                "SELECT id, reporters, reasons, notes FROM reports WHERE room = ? AND seq = ?",
                (room, seq),
            ).fetchone()
            if row is None:
                (last,) = conn.execute("SELECT coalesce(max(n), 0) FROM reports").fetchone()
                notes = [_note(flag)] if flag.note else []
                conn.execute(
                    f"INSERT INTO reports ({_REPORT_COLUMNS})"
                    " VALUES (?, ?, ?, ?, ?, ?, 'open', ?, ?, 1, ?, ?, NULL)",
                    (
                        report_id, last + 1, room, seq, snapshot["author"]["id"],
                        orjson.dumps(snapshot).decode(), flag.ts, flag.ts,
                        orjson.dumps({flag.reason: 1}).decode(), orjson.dumps(notes).decode(),
                    ),
                )  # fmt: skip
                _insert_flag(conn, report_id, flag)
                self._append_in_batch(conn, EVENTS_ROOM, event, event_data)
                return Filed(
                    report_id, duplicate=False, created=True, reporters=1, reason=flag.reason
                )
            found_id, reporters, reasons_json, notes_json = row
            first = conn.execute(
                "SELECT reason FROM report_flags WHERE report_id = ? AND reporter = ?",
                (found_id, flag.reporter),
            ).fetchone()
            if first is not None:
                return Filed(found_id, duplicate=True, created=False, reporters=reporters,
                             reason=first[0])  # fmt: skip
            reasons = orjson.loads(reasons_json)
            reasons[flag.reason] = reasons.get(flag.reason, 0) + 1
            notes = orjson.loads(notes_json)
            if flag.note and len(notes) < MAX_NOTES:
                notes.append(_note(flag))
            conn.execute(
                "UPDATE reports SET reporters = reporters + 1, reasons = ?, notes = ?,"
                " updated_ts = ?, state = 'open' WHERE id = ?",
                (orjson.dumps(reasons).decode(), orjson.dumps(notes).decode(), flag.ts, found_id),
            )
            _insert_flag(conn, found_id, flag)
            return Filed(found_id, duplicate=False, created=False, reporters=reporters + 1,
                         reason=flag.reason)  # fmt: skip

        return await self._write(run)

    async def get_report(self, report_id: str) -> Report | None:
        row = await self._read(
            lambda conn: conn.execute(
                f"SELECT {_REPORT_COLUMNS} FROM reports WHERE id = ?", (report_id,)
            ).fetchone()
        )
        return None if row is None else _report_from_row(row)

    async def reports(self, state: str, after: int, limit: int) -> list[Report]:
        if limit <= 0:
            return []
        rows = await self._read(
            lambda conn: conn.execute(
                f"SELECT {_REPORT_COLUMNS} FROM reports WHERE state = ? AND n > ?"
                " ORDER BY n LIMIT ?",
                (state, after, limit),
            ).fetchall()
        )
        return [_report_from_row(row) for row in rows]

    async def resolve_report(self, report_id: str, resolution: dict[str, Any]) -> Report | None:
        def run(conn: sqlite3.Connection) -> Report | None:
            conn.execute(
                "UPDATE reports SET state = 'resolved', resolution = ?, updated_ts = ?"
                " WHERE id = ? AND state = 'open'",
                (orjson.dumps(resolution).decode(), resolution["ts"], report_id),
            )
            row = conn.execute(
                f"SELECT {_REPORT_COLUMNS} FROM reports WHERE id = ?", (report_id,)
            ).fetchone()
            return None if row is None else _report_from_row(row)

        return await self._write(run)

    async def member_reports(self, user_id: UserId) -> AsyncIterator[list[dict[str, Any]]]:
        after = ""
        while True:
            rows = await self._page(
                "SELECT f.report_id, r.room, r.seq, f.reason, f.note, f.ts"
                " FROM report_flags f JOIN reports r ON r.id = f.report_id"
                " WHERE f.reporter = ? AND f.report_id > ? ORDER BY f.report_id LIMIT ?",
                (user_id, after, PAGE),
            )
            if rows:
                yield [
                    core_reports.own_report(
                        i, room, seq, {"reason": reason, "note": note, "ts": ts}
                    )
                    for i, room, seq, reason, note, ts in rows
                ]
            if len(rows) < PAGE:
                return
            after = rows[-1][0]

    async def forget_reporter(self, user_id: UserId, limit: int) -> int:
        def run(conn: sqlite3.Connection) -> int:
            rows = conn.execute(
                "SELECT f.report_id, f.reason, f.note, f.ts, r.notes FROM report_flags f"
                " JOIN reports r ON r.id = f.report_id WHERE f.reporter = ? LIMIT ?",
                (user_id, limit),
            ).fetchall()
            for report_id, reason, note, ts, notes_json in rows:
                flag = {"reason": reason, "note": note, "ts": ts}
                notes = core_reports.without_note(orjson.loads(notes_json), flag) if note else None
                conn.execute(
                    "UPDATE report_flags SET reporter = ?, note = NULL"
                    " WHERE report_id = ? AND reporter = ?",
                    (core_reports.erased_reporter(secrets.token_hex(8)), report_id, user_id),
                )
                if notes is not None:
                    conn.execute(
                        "UPDATE reports SET notes = ? WHERE id = ?",
                        (orjson.dumps(notes).decode(), report_id),
                    )
            return len(rows)

        return await self._write(run)

    # Restrictions.

    async def put_restriction(self, restriction: Restriction) -> None:
        r = restriction

        def run(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR REPLACE INTO restrictions (user_id, kind, until, reason, ts)"
                " VALUES (?, ?, ?, ?, ?)",
                (r.user_id, r.kind, r.until, r.reason, r.ts),
            )

        await self._write(run)

    async def delete_restriction(self, user_id: UserId) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            deleted = conn.execute("DELETE FROM restrictions WHERE user_id = ?", (user_id,))
            return bool(deleted.rowcount)

        return await self._write(run)

    async def get_restriction(self, user_id: UserId) -> Restriction | None:
        row = await self._read(
            lambda conn: conn.execute(
                "SELECT user_id, kind, until, reason, ts FROM restrictions WHERE user_id = ?",
                (user_id,),
            ).fetchone()
        )
        return None if row is None else Restriction(*row)

    async def restrictions(self, now_ms: int) -> list[Restriction]:
        rows = await self._read(
            lambda conn: conn.execute(
                "SELECT user_id, kind, until, reason, ts FROM restrictions"
                " WHERE until IS NULL OR until > ? ORDER BY user_id",
                (now_ms,),
            ).fetchall()
        )
        return [Restriction(*row) for row in rows]


def _note(flag: Flag) -> dict[str, Any]:
    return {"reason": flag.reason, "note": flag.note, "ts": flag.ts}


def _insert_flag(conn: sqlite3.Connection, report_id: str, flag: Flag) -> None:
    conn.execute(
        "INSERT INTO report_flags (report_id, reporter, reason, note, ts) VALUES (?, ?, ?, ?, ?)",
        (report_id, flag.reporter, flag.reason, flag.note, flag.ts),
    )


def _report_from_row(row: tuple[Any, ...]) -> Report:
    return Report(
        id=row[0],
        number=row[1],
        room=row[2],
        seq=row[3],
        author_id=UserId(row[4]),
        snapshot=orjson.loads(row[5]),
        state=row[6],
        created_ts=row[7],
        updated_ts=row[8],
        reporters=row[9],
        reasons=orjson.loads(row[10]),
        notes=orjson.loads(row[11]),
        resolution=None if row[12] is None else orjson.loads(row[12]),
    )
