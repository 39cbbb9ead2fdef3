"""The embedded store: one SQLite file, group-committed, with in-process fan-out.

``SqliteStore`` owns the file's schema and its two connections. Every write goes
to one writer thread, which runs whatever is queued (up to ``batch_max``
requests) in a single transaction, commits and fsyncs once, then announces the
new entries and answers the callers on the event loop, in commit order. Reads
run on a reader thread beside it (WAL mode lets them). ``LocalFanout`` carries
the announcements to the hub of this process.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import hashlib
import logging
import queue
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar, cast

import orjson

from parley.protocol.errors import ErrorCode, ParleyError
from parley.server.core.buckets import Buckets
from parley.server.core.mentions import username_key
from parley.server.core.model import (
    MEMBER_KINDS,
    AppendResult,
    Author,
    Draft,
    Entry,
    EntryKind,
    Listing,
    ListingId,
    Mention,
    Money,
    Order,
    OrderId,
    RoomHead,
    User,
    UserId,
)
from parley.server.store.base import (
    WRITE_BOUNDS,
    Fanout,
    LocalPresence,
    ReadState,
    Store,
    StoreUnavailable,
)
from parley.server.store.lease import LocalLeases
from parley.server.store.sqlite_conversations import CONVERSATIONS_SCHEMA, SqliteConversations
from parley.server.store.sqlite_moderation import MODERATION_SCHEMA, SqliteModeration
from parley.server.store.sqlite_offers import OFFERS_SCHEMA, SqliteOffers
from parley.server.store.sqlite_rights import (
    RIGHTS_SCHEMA,
    SqliteRights,
)

T = TypeVar("T")

log = logging.getLogger("parley.store.sqlite")

SCHEMA_VERSION: Final = "4"
# The rooms table is the truth; the writer's copy of it only saves one read per
# append, so it is simply dropped when it grows past this many rooms.
SEQ_CACHE_MAX: Final = 100_000
BUSY_TIMEOUT_S: Final = 5.0

_SCHEMA: Final = """
BEGIN;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, locale TEXT NOT NULL, email TEXT,
    name_key TEXT);
CREATE TABLE IF NOT EXISTS listings (
    id TEXT PRIMARY KEY, seller_id TEXT NOT NULL, title TEXT NOT NULL,
    amount INTEGER NOT NULL, currency TEXT NOT NULL, photo_url TEXT,
    offers_enabled INTEGER NOT NULL, status TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS orders (
    id TEXT PRIMARY KEY, listing_id TEXT NOT NULL, buyer_id TEXT NOT NULL,
    seller_id TEXT NOT NULL, status TEXT NOT NULL, created_ts INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS rooms (
    room TEXT PRIMARY KEY, last_seq INTEGER NOT NULL, epoch TEXT NOT NULL,
    closed INTEGER NOT NULL DEFAULT 0, read_seq INTEGER NOT NULL DEFAULT 0);
COMMIT;
"""
# The rooms' logs, created (or, from an older schema, rebuilt) in the opening
# transaction. A plain rowid table: an entry lands at its end, and only the small
# (room, seq) index takes it where its room is. Keyed by (room, seq) itself, as up
# to schema 3, each insert wrote a page of whole rows wherever its room's end lay:
# the cost of an append grew with the log (docs/performance.md).
_ENTRIES_TABLE: Final = """CREATE TABLE {name} (
    room TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL, text TEXT NOT NULL,
    ts INTEGER NOT NULL, author_id TEXT, author_name TEXT, client_msg_id TEXT,
    target INTEGER, data TEXT, edited_ts INTEGER, deleted INTEGER NOT NULL DEFAULT 0,
    mentions TEXT, masked TEXT)"""
_ENTRIES_INDEXES: Final = (
    "CREATE UNIQUE INDEX IF NOT EXISTS entries_room_seq ON entries (room, seq)",
    """CREATE UNIQUE INDEX IF NOT EXISTS entries_client_msg_id
        ON entries (room, coalesce(author_id, ''), client_msg_id)
        WHERE client_msg_id IS NOT NULL""",
)

_ENTRY_COLUMNS: Final = (
    "room, seq, kind, text, ts, author_id, author_name, client_msg_id,"
    " target, data, edited_ts, deleted, mentions, masked"
)
_USER_COLUMNS: Final = "id, name, locale, email"
# An entry whose client_msg_id is already in its room, from its author, is not
# inserted (and the append answers with the first copy); any other conflict is an error.
_INSERT_ENTRY: Final = (
    f"INSERT INTO entries ({_ENTRY_COLUMNS})"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, 0, ?, ?)"
    " ON CONFLICT (room, coalesce(author_id, ''), client_msg_id)"
    " WHERE client_msg_id IS NOT NULL DO NOTHING"
)
# Kinds whose append changes the room before its entry is inserted.
_CHANGES_BEFORE_INSERT: Final = frozenset({"read", "close", "reopen"})

# Schema 1 -> 2: unique usernames, closed rooms, inbox read marks, mentions, masking.
_MIGRATE_1: Final = (
    "ALTER TABLE users ADD COLUMN name_key TEXT",
    "ALTER TABLE rooms ADD COLUMN closed INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE rooms ADD COLUMN read_seq INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE entries ADD COLUMN mentions TEXT",
    "ALTER TABLE entries ADD COLUMN masked TEXT",
)
_INDEXES: Final = ("CREATE UNIQUE INDEX IF NOT EXISTS users_name_key ON users (name_key)",)


class LocalFanout(Fanout):
    """Announcements within this process: the store calls ``listener`` directly."""

    def __init__(self) -> None:
        super().__init__()
        self.rooms: set[str] = set()

    async def follow(self, room: str) -> None:
        self.rooms.add(room)

    async def unfollow(self, room: str) -> None:
        self.rooms.discard(room)

    async def publish_ephemeral(self, room: str, event: dict[str, Any]) -> None:
        listener = self.ephemeral_listener
        if listener is not None and room in self.rooms:
            # Scheduled like an entry's announcement, so the two keep their order.
            asyncio.get_running_loop().call_soon(listener, room, event)


@dataclass(slots=True)
class _Write:
    run: Callable[[sqlite3.Connection], object]  # runs in the writer, inside the batch
    future: asyncio.Future[Any]


# What the writer hands back to the loop per request: its future, result, error.
_Outcome = tuple[asyncio.Future[Any], object, ParleyError | None]


class SqliteStore(
    SqliteOffers, SqliteConversations, SqliteModeration, SqliteRights, LocalLeases, Store
):
    _loop: asyncio.AbstractEventLoop
    _entry_columns = _ENTRY_COLUMNS

    def __init__(self, path: str, *, batch_max: int = 256) -> None:
        if batch_max < 1:
            raise ValueError("batch_max must be at least 1")
        self.path = path
        self.batch_max = batch_max
        self.fanout: LocalFanout = LocalFanout()
        self.presence = LocalPresence()
        self.commits = 0  # transactions committed by the writer (one per batch)
        self.write_seconds = Buckets(WRITE_BOUNDS)  # observed by the writer thread only
        self._accepting = False
        # The loop gathers the writes of one iteration and hands them over as
        # one list: one lock and one wake-up of the writer per batch, not per write.
        self._queue: queue.Queue[list[_Write] | None] = queue.Queue()
        self._outbox: list[_Write] = []
        self._stopped: concurrent.futures.Future[None] = concurrent.futures.Future()
        # Read on every write: a plain flag, where Future.done() would take a lock.
        self._writer_gone = False
        self._store_id = ""
        self._reader = concurrent.futures.ThreadPoolExecutor(1, "parley-sqlite-reader")
        self._reader_conn: sqlite3.Connection | None = None  # reader thread only
        # Writer thread only: room -> (last_seq, epoch, closed), and the batch's undo log.
        self._seq_cache: dict[str, tuple[int, str, bool]] = {}
        self._undo: dict[str, tuple[int, str, bool] | None] = {}
        self._inflight: list[_Write] = []

    # Life cycle.

    async def open(self) -> None:
        if self._accepting or self._stopped.done():
            return
        self._loop = asyncio.get_running_loop()
        started: concurrent.futures.Future[str] = concurrent.futures.Future()
        threading.Thread(
            target=self._writer_main, args=(started,), name="parley-sqlite-writer", daemon=True
        ).start()
        try:
            self._store_id = await asyncio.wrap_future(started)
        except (sqlite3.Error, OSError) as exc:
            raise StoreUnavailable(f"cannot open {self.path}: {exc}") from exc
        self._accepting = True
        await self.check()

    async def close(self) -> None:
        if not self._accepting:
            return
        self._accepting = False
        self._flush()
        self._queue.put(None)  # after every write already queued
        await asyncio.wrap_future(self._stopped)
        try:
            await self._loop.run_in_executor(self._reader, self._close_reader)
        finally:
            self._reader.shutdown(wait=False)

    async def check(self) -> None:
        if self._stopped.done():
            raise StoreUnavailable()
        await self._read(lambda conn: conn.execute("SELECT value FROM meta").fetchone())

    # Members, listings, orders.

    async def put_user(self, user: User) -> None:
        key = username_key(user.name)

        def run(conn: sqlite3.Connection) -> None:
            _check_name_free(conn, key, user.id)
            conn.execute(
                "INSERT OR REPLACE INTO users (id, name, locale, email, name_key)"
                " VALUES (?, ?, ?, ?, ?)",
                (user.id, user.name, user.locale, user.email, key),
            )

        await self._write(run)

    async def claim_user(self, user_id: UserId, name: str, locale: str) -> User:
        key = username_key(name)

        def run(conn: sqlite3.Connection) -> User:
            row = conn.execute(
                f"SELECT {_USER_COLUMNS} FROM users WHERE id = ?", (user_id,)
            ).fetchone()
            if row is not None:
                return _user_from_row(row)
            _check_name_free(conn, key, user_id)
            conn.execute(
                "INSERT INTO users (id, name, locale, name_key) VALUES (?, ?, ?, ?)",
                (user_id, name, locale, key),
            )
            return User(user_id, name, locale)

        user = await self.get_user(user_id)  # the common case: no write at all
        return user if user is not None else await self._write(run)

    async def get_user(self, user_id: UserId) -> User | None:
        row = await self._read_one(f"SELECT {_USER_COLUMNS} FROM users WHERE id = ?", user_id)
        return None if row is None else _user_from_row(row)

    async def users_by_name(self, keys: Collection[str]) -> dict[str, User]:
        wanted = list(keys)
        if not wanted:
            return {}
        marks = ", ".join("?" * len(wanted))
        rows = await self._read(
            lambda conn: conn.execute(
                f"SELECT {_USER_COLUMNS}, name_key FROM users WHERE name_key IN ({marks})",
                wanted,
            ).fetchall()
        )
        return {row[4]: _user_from_row(row) for row in rows}

    async def put_listing(self, listing: Listing) -> None:
        def run(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR REPLACE INTO listings (id, seller_id, title, amount, currency,"
                " photo_url, offers_enabled, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    listing.id,
                    listing.seller_id,
                    listing.title,
                    listing.price.amount,
                    listing.price.currency,
                    listing.photo_url,
                    listing.offers_enabled,
                    listing.status,
                ),
            )

        await self._write(run)

    async def get_listing(self, listing_id: ListingId) -> Listing | None:
        row = await self._read_one(
            "SELECT id, seller_id, title, amount, currency, photo_url, offers_enabled, status"
            " FROM listings WHERE id = ?",
            listing_id,
        )
        if row is None:
            return None
        money = Money(row[3], row[4])
        return Listing(
            ListingId(row[0]), UserId(row[1]), row[2], money, row[5], bool(row[6]), row[7]
        )

    async def put_order(self, order: Order) -> tuple[Order, bool]:
        def run(conn: sqlite3.Connection) -> tuple[Order, bool]:
            stored = _select_order(conn, order.id)
            if stored is None:
                conn.execute(
                    "INSERT INTO orders (id, listing_id, buyer_id, seller_id, status, created_ts)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        order.id,
                        order.listing_id,
                        order.buyer_id,
                        order.seller_id,
                        order.status,
                        order.created_ts,
                    ),
                )
                return order, True
            parties = (stored.listing_id, stored.buyer_id, stored.seller_id)
            if parties != (order.listing_id, order.buyer_id, order.seller_id):
                raise ParleyError(
                    ErrorCode.conflict,
                    f"order {order.id} was reported with another listing, buyer or seller",
                )
            return stored, False

        return await self._write(run)

    async def set_order_status(self, order_id: OrderId, status: str) -> Order | None:
        def run(conn: sqlite3.Connection) -> Order | None:
            conn.execute("UPDATE orders SET status = ? WHERE id = ?", (status, order_id))
            return _select_order(conn, order_id)

        return await self._write(run)

    async def get_order(self, order_id: OrderId) -> Order | None:
        return await self._read(lambda conn: _select_order(conn, order_id))

    # Room logs.

    async def append(self, room: str, draft: Draft) -> AppendResult:
        # Encoded here so that a caller's unserializable data fails its own call only.
        data = None if draft.data is None else orjson.dumps(draft.data).decode()
        return await self._write(lambda conn: self._append_in_batch(conn, room, draft, data))

    async def get_entry(self, room: str, seq: int) -> Entry | None:
        row = await self._read_one(
            f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE room = ? AND seq = ?", room, seq
        )
        return None if row is None else _entry_from_row(row)

    async def entry_by_key(self, room: str, client_msg_id: str) -> Entry | None:
        entries = await self._read_entries(
            f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE room = ?"
            " AND coalesce(author_id, '') = '' AND client_msg_id = ?",
            room,
            client_msg_id,
        )
        return entries[0] if entries else None

    async def history(self, room: str, before: int | None, limit: int) -> list[Entry]:
        if limit <= 0:  # SQLite reads a negative LIMIT as "no limit"
            return []
        return await self._read_entries(
            f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE room = ? AND seq < ?"
            " AND kind IN ('comment', 'system', 'notification') ORDER BY seq DESC LIMIT ?",
            room,
            (1 << 62) if before is None else before,
            limit,
        )

    async def entries_after(self, room: str, after: int, limit: int) -> list[Entry]:
        if limit <= 0:
            return []
        entries = await self._read_entries(
            f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE room = ? AND seq > ? ORDER BY seq LIMIT ?",
            room,
            after,
            limit,
        )
        return await self._hide_held_edits(room, entries)

    async def _hide_held_edits(self, room: str, entries: list[Entry]) -> list[Entry]:
        """A held message's edits replay without their words, as the message reads
        (one more read, only when the page holds edits)."""
        targets = list({e.target for e in entries if e.kind == "edit" and e.target is not None})
        if not targets:
            return entries
        marks = ", ".join("?" * len(targets))
        rows = await self._read(
            lambda conn: conn.execute(
                f"SELECT seq FROM entries WHERE room = ? AND deleted = 3 AND seq IN ({marks})",
                (room, *targets),
            ).fetchall()
        )
        held = {row[0] for row in rows}
        return [
            dataclasses.replace(e, text="", mentions=(), masked_kinds=())
            if e.kind == "edit" and e.target in held
            else e
            for e in entries
        ]

    async def read_state(self, room: str) -> ReadState:
        up_to, unread = await self._read(lambda conn: _read_state(conn, room))
        return ReadState(up_to, unread)

    async def room_closed(self, room: str) -> bool:
        row = await self._read_one("SELECT closed FROM rooms WHERE room = ?", room)
        return row is not None and bool(row[0])

    async def head(self, room: str) -> RoomHead:
        row = await self._read_one("SELECT last_seq, epoch FROM rooms WHERE room = ?", room)
        return RoomHead(0, self._epoch_for(room)) if row is None else RoomHead(row[0], row[1])

    def _epoch_for(self, room: str) -> str:
        # A room that was never written has no row, yet its epoch must not change
        # when its first entry lands; so it is derived from the file's own random
        # id, and stored as is with the room's row. A fresh file gives new epochs.
        key = self._store_id.encode()
        return hashlib.blake2b(room.encode(), key=key, digest_size=8).hexdigest()

    # The writer thread.

    async def _write(self, run: Callable[[sqlite3.Connection], T]) -> T:
        if not self._accepting or self._writer_gone:
            raise StoreUnavailable()
        future: asyncio.Future[T] = self._loop.create_future()
        if not self._outbox:
            self._loop.call_soon(self._flush)
        self._outbox.append(_Write(run, future))
        return await future

    def _flush(self) -> None:
        if self._outbox:
            writes, self._outbox = self._outbox, []
            if self._writer_gone:
                _fail_unanswered(writes)
            else:
                self._queue.put(writes)

    def _writer_main(self, started: concurrent.futures.Future[str]) -> None:
        try:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = _connect(self.path)
            store_id = _create_schema(conn)
        except (sqlite3.Error, OSError) as exc:
            started.set_exception(exc)
            self._writer_gone = True
            self._stopped.set_result(None)
            return
        started.set_result(store_id)
        try:
            stop = False
            while not stop:
                first = self._queue.get()
                batch = [first] if first is not None else []
                stop = first is None
                while not stop and sum(map(len, batch)) < self.batch_max:
                    try:
                        more = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    # close() queues None last, so nothing follows it.
                    if more is None:
                        stop = True
                    else:
                        batch.append(more)
                writes = [w for chunk in batch for w in chunk]
                if writes:
                    self._commit_batch(conn, writes)
        finally:
            self._writer_gone = True
            conn.close()
            # Normally a no-op; after a bug killed this thread, nobody waits forever.
            leftover = self._inflight + [
                w for chunk in _drain(self._queue) if chunk is not None for w in chunk
            ]
            self._loop.call_soon_threadsafe(_fail_unanswered, leftover)
            self._stopped.set_result(None)

    def _commit_batch(self, conn: sqlite3.Connection, batch: list[_Write]) -> None:
        self._inflight = batch
        self._undo = {}
        outcomes: list[_Outcome] = []
        announced: list[tuple[Entry, str]] = []
        started = time.perf_counter()
        try:
            conn.execute("BEGIN IMMEDIATE")
            for write in batch:
                try:
                    outcomes.append((write.future, write.run(conn), None))
                except ParleyError as exc:
                    # A request refused before it wrote (an order conflict) fails
                    # alone; the rest of the batch still commits.
                    outcomes.append((write.future, None, exc))
            for room in self._undo:
                conn.execute(
                    "UPDATE rooms SET last_seq = ? WHERE room = ?", (self._seq_cache[room][0], room)
                )
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            log.error("write batch of %d requests rolled back: %s", len(batch), exc)
            _rollback(conn)
            for room, before in self._undo.items():
                if before is None:
                    self._seq_cache.pop(room, None)
                else:
                    self._seq_cache[room] = before
            outcomes = [(w.future, None, StoreUnavailable()) for w in batch]
        else:
            self.commits += 1
            took = time.perf_counter() - started
            self.write_seconds.observe(took)
            if self.slow_commit_s and took >= self.slow_commit_s:
                log.warning("slow commit writes=%d took_ms=%.1f", len(batch), took * 1000)
            for _, result, _ in outcomes:
                if isinstance(result, AppendResult) and not result.duplicate:
                    entry = result.entry
                    announced.append((entry, self._seq_cache[entry.room][1]))
            self.appended += len(announced)  # the writer thread is its only writer
        if len(self._seq_cache) > SEQ_CACHE_MAX:
            self._seq_cache.clear()
        self._loop.call_soon_threadsafe(self._deliver, outcomes, announced)
        self._inflight = []

    def _append_in_batch(
        self, conn: sqlite3.Connection, room: str, draft: Draft, data: str | None
    ) -> AppendResult:
        author = draft.author
        author_id = None if author is None else author.id
        key = draft.client_msg_id
        last_seq, epoch, closed = self._room_state(conn, room)
        kind = draft.kind
        if key is not None and (closed or kind in _CHANGES_BEFORE_INSERT):
            # A retry is answered before anything is refused or changed. Otherwise the
            # INSERT itself finds a first copy (also one earlier in this same batch).
            first = _first_copy(conn, room, author_id, key)
            if first is not None:
                return first
        if closed and kind in MEMBER_KINDS and author is not None:
            raise ParleyError(ErrorCode.not_found, f"{room} is closed")
        if kind == "read":
            draft = self._move_read_mark(conn, room, draft)
            data = orjson.dumps(draft.data).decode()
        seq = last_seq + 1
        mentions = _mentions_json(draft.mentions)
        masked = ",".join(draft.masked_kinds) or None
        inserted = conn.execute(
            _INSERT_ENTRY,
            (
                room,
                seq,
                kind,
                draft.text,
                draft.ts,
                author_id,
                None if author is None else author.name,
                key,
                draft.target,
                data,
                mentions,
                masked,
            ),
        ).rowcount
        if not inserted:  # only a client_msg_id already stored is skipped
            return cast(AppendResult, _first_copy(conn, room, author_id, cast(str, key)))
        if room not in self._undo:
            self._undo[room] = self._seq_cache.get(room)  # restored if the batch rolls back
        if kind in ("close", "reopen"):
            closed = kind == "close"
            conn.execute("UPDATE rooms SET closed = ? WHERE room = ?", (closed, room))
        self._seq_cache[room] = (seq, epoch, closed)
        if kind == "edit":
            conn.execute(
                "UPDATE entries SET text = ?, edited_ts = ?, mentions = ?, masked = ?,"
                " data = coalesce(?, data) WHERE room = ? AND seq = ?",
                (draft.text, draft.ts, mentions, masked, data, room, draft.target),
            )
        elif kind in ("delete", "remove"):
            # deleted: 1 by its author or the seller, 2 removed by the moderators. A
            # notification's data holds an excerpt of the message: it goes too.
            conn.execute(
                "UPDATE entries SET text = '', data = NULL, deleted = ? WHERE room = ? AND seq = ?",
                (2 if kind == "remove" else 1, room, draft.target),
            )
            # Its earlier edits carried its words too: they go with it.
            conn.execute(
                "UPDATE entries SET text = '', data = NULL, mentions = NULL, masked = NULL"
                " WHERE room = ? AND kind = 'edit' AND target = ?",
                (room, draft.target),
            )
        elif kind in ("hold", "release"):
            # deleted 3: held, its words kept; only a message still shown is held.
            before, after = (0, 3) if kind == "hold" else (3, 0)
            conn.execute(
                "UPDATE entries SET deleted = ? WHERE room = ? AND seq = ? AND deleted = ?",
                (after, room, draft.target, before),
            )
        return AppendResult(Entry.from_draft(room, seq, draft))

    def _room_state(self, conn: sqlite3.Connection, room: str) -> tuple[int, str, bool]:
        """The room's last seq, epoch and closed flag, from the writer's cache."""
        cached = self._seq_cache.get(room)
        if cached is not None:
            return cached
        row = conn.execute(
            "SELECT last_seq, epoch, closed FROM rooms WHERE room = ?", (room,)
        ).fetchone()
        if row is None:
            epoch = self._epoch_for(room)
            conn.execute(
                "INSERT INTO rooms (room, last_seq, epoch) VALUES (?, 0, ?)", (room, epoch)
            )
            return 0, epoch, False
        return row[0], row[1], bool(row[2])

    @staticmethod
    def _move_read_mark(conn: sqlite3.Connection, room: str, draft: Draft) -> Draft:
        conn.execute(
            "UPDATE rooms SET read_seq = max(read_seq, ?) WHERE room = ?", (draft.target, room)
        )
        up_to, unread = _read_state(conn, room)
        return dataclasses.replace(draft, data={"up_to": up_to, "unread": unread})

    def _deliver(self, outcomes: list[_Outcome], announced: list[tuple[Entry, str]]) -> None:
        """On the loop: announce the batch's entries, then answer its callers."""
        listener = self.fanout.listener
        if listener is not None:
            for entry, epoch in announced:
                if entry.room in self.fanout.rooms:
                    # Scheduled ahead of the callers' wake-ups, so watchers hear of
                    # an entry no later than its poster; and a listener that raises
                    # is reported by the loop without costing anyone an answer.
                    self._loop.call_soon(listener, entry, epoch)
        for future, result, error in outcomes:
            if future.done():  # the caller was cancelled; its write stands
                continue
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)

    # The reader thread.

    async def _read(self, query: Callable[[sqlite3.Connection], T]) -> T:
        if not self._accepting:
            raise StoreUnavailable()
        try:
            return await self._loop.run_in_executor(self._reader, self._in_reader, query)
        except sqlite3.Error as exc:
            log.error("read failed: %s", exc)
            raise StoreUnavailable() from exc

    async def _read_one(self, sql: str, *args: object) -> Any:
        return await self._read(lambda conn: conn.execute(sql, args).fetchone())

    async def _read_entries(self, sql: str, *args: object) -> list[Entry]:
        rows = await self._read(lambda conn: conn.execute(sql, args).fetchall())
        return [_entry_from_row(row) for row in rows]

    def _in_reader(self, query: Callable[[sqlite3.Connection], T]) -> T:
        if self._reader_conn is None:
            self._reader_conn = _connect(self.path)
            self._reader_conn.execute("PRAGMA query_only = ON")
        return query(self._reader_conn)

    def _close_reader(self) -> None:
        if self._reader_conn is not None:
            self._reader_conn.close()
            self._reader_conn = None


def _connect(path: str) -> sqlite3.Connection:
    # isolation_level=None: transactions are the writer's explicit BEGIN/COMMIT,
    # and every read sees the latest commit.
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")  # fsync the WAL on every commit
    # Erased words are overwritten with zeros, not only unlinked (docs/moderation.md).
    conn.execute("PRAGMA secure_delete = ON")
    return conn


def _create_schema(conn: sqlite3.Connection) -> str:
    """Create what is missing; return the file's random id."""
    conn.executescript(_SCHEMA)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute(
        "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (SCHEMA_VERSION,)
    )
    conn.execute(
        "INSERT OR IGNORE INTO meta (key, value) VALUES ('store_id', ?)", (secrets.token_hex(8),)
    )
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    if meta["schema_version"] == "1":
        _migrate_from_1(conn)
        meta["schema_version"] = "2"
    if meta["schema_version"] == "2":
        _index_usernames(conn)
        meta["schema_version"] = "3"
    rebuilt = meta["schema_version"] == "3"
    if rebuilt:
        _rebuild_entries(conn)
        meta["schema_version"] = SCHEMA_VERSION
    if meta["schema_version"] != SCHEMA_VERSION:
        conn.execute("ROLLBACK")
        raise sqlite3.DatabaseError(f"schema version {meta['schema_version']} is not supported")
    if not _has_table(conn, "entries"):
        conn.execute(_ENTRIES_TABLE.format(name="entries"))
    for sql in (
        *_ENTRIES_INDEXES,
        *_INDEXES,
        *OFFERS_SCHEMA,
        *CONVERSATIONS_SCHEMA,
        *MODERATION_SCHEMA,
        *RIGHTS_SCHEMA,
    ):
        conn.execute(sql)
    conn.execute("COMMIT")
    if rebuilt:  # the move went through the WAL: hand its space back now
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return cast(str, meta["store_id"])


def _migrate_from_1(conn: sqlite3.Connection) -> None:
    """Add what schema 2 needs; the usernames are indexed by the next step."""
    for sql in _MIGRATE_1:
        conn.execute(sql)
    log.info("store schema migrated from 1 to 2")


def _index_usernames(conn: sqlite3.Connection) -> None:
    """Schema 3: the username index holds ``username_key`` as it is now (look-alikes
    compare by their confusable skeleton). Members keep their names; when two names now
    look alike, the first holder (by id) keeps it for mentions and the other is left out
    of the index (still a member, not mentionable by that name)."""
    conn.execute("UPDATE users SET name_key = NULL")
    taken: set[str] = set()
    for user_id, name in conn.execute("SELECT id, name FROM users ORDER BY id").fetchall():
        key = username_key(name)
        if key not in taken:
            taken.add(key)
            conn.execute("UPDATE users SET name_key = ? WHERE id = ?", (key, user_id))
        else:
            log.warning("username of user %s looks like another's: left out of the index", user_id)
    conn.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    log.info("store schema migrated to 3: usernames indexed by skeleton")


def _rebuild_entries(conn: sqlite3.Connection) -> None:
    """Schema 4: the entries move, as they are, from the table keyed by (room, seq)
    to a rowid table (``_ENTRIES_TABLE``), in the opening transaction: a process
    killed before its commit leaves the file at schema 3, and the next open starts
    again. The indexes are built after the copy, by the caller, from sorted keys;
    dropping the old table lets ``secure_delete`` zero its pages."""
    log.info("store schema 4: copying the entries into a rowid table")
    conn.execute(_ENTRIES_TABLE.format(name="entries_v4"))
    conn.execute(
        f"INSERT INTO entries_v4 ({_ENTRY_COLUMNS})"
        f" SELECT {_ENTRY_COLUMNS} FROM entries ORDER BY room, seq"
    )
    conn.execute("DROP TABLE entries")  # and its indexes, built again by the caller
    conn.execute("ALTER TABLE entries_v4 RENAME TO entries")
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (SCHEMA_VERSION,))
    log.info("store schema migrated to %s: entries in a rowid table", SCHEMA_VERSION)


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).fetchone()
    return row is not None


def _rollback(conn: sqlite3.Connection) -> None:
    try:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
    except sqlite3.Error as exc:  # SQLite may already have rolled back on its own
        log.warning("rollback failed: %s", exc)


def _drain(q: queue.Queue[list[_Write] | None]) -> list[list[_Write] | None]:
    items: list[list[_Write] | None] = []
    while True:
        try:
            items.append(q.get_nowait())
        except queue.Empty:
            return items


def _fail_unanswered(writes: list[_Write]) -> None:
    for write in writes:
        if not write.future.done():
            write.future.set_exception(StoreUnavailable())


def _check_name_free(conn: sqlite3.Connection, key: str, user_id: str) -> None:
    row = conn.execute(
        "SELECT id FROM users WHERE name_key = ? AND id != ?", (key, user_id)
    ).fetchone()
    if row is not None:
        raise ParleyError(ErrorCode.conflict, "another member has this username, or one like it")


def _read_state(conn: sqlite3.Connection, room: str) -> tuple[int, int]:
    row = conn.execute("SELECT read_seq FROM rooms WHERE room = ?", (room,)).fetchone()
    up_to = 0 if row is None else row[0]
    (unread,) = conn.execute(
        "SELECT count(*) FROM entries WHERE room = ? AND seq > ? AND kind = 'notification'"
        " AND deleted = 0",
        (room, up_to),
    ).fetchone()
    return up_to, unread


def _first_copy(
    conn: sqlite3.Connection, room: str, author_id: str | None, key: str
) -> AppendResult | None:
    row = conn.execute(
        f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE room = ?"
        " AND coalesce(author_id, '') = ? AND client_msg_id = ?",
        (room, author_id or "", key),
    ).fetchone()
    return None if row is None else AppendResult(_entry_from_row(row), duplicate=True)


def _mentions_json(mentions: tuple[Mention, ...]) -> str | None:
    if not mentions:
        return None
    return orjson.dumps([m.to_row() for m in mentions]).decode()


def _user_from_row(row: tuple[Any, ...]) -> User:
    return User(UserId(row[0]), row[1], row[2], row[3])


def _select_order(conn: sqlite3.Connection, order_id: str) -> Order | None:
    row = conn.execute(
        "SELECT id, listing_id, buyer_id, seller_id, status, created_ts FROM orders WHERE id = ?",
        (order_id,),
    ).fetchone()
    if row is None:
        return None
    return Order(OrderId(row[0]), ListingId(row[1]), UserId(row[2]), UserId(row[3]), row[4], row[5])


def _entry_from_row(row: tuple[Any, ...]) -> Entry:
    room, seq, kind, text, ts, author_id, author_name, client_msg_id = row[:8]
    target, data, edited_ts, deleted, mentions, masked = row[8:]
    return Entry(
        room=room,
        seq=seq,
        kind=cast(EntryKind, kind),
        text="" if deleted == 3 else text,
        ts=ts,
        author=None if author_id is None else Author(UserId(author_id), author_name),
        client_msg_id=client_msg_id,
        target=target,
        data=None if data is None else orjson.loads(data),
        edited_ts=edited_ts,
        deleted=deleted in (1, 2),
        removed=deleted == 2,
        held=deleted == 3,
        mentions=()
        if mentions is None
        else tuple(Mention.from_row(m) for m in orjson.loads(mentions)),
        masked_kinds=() if masked is None else tuple(masked.split(",")),
    )
