"""Likes and negotiations in the embedded store's SQLite file (``SqliteOffers``).

Tables, created by ``open()`` beside the store's own (``OFFERS_SCHEMA``; a file
made before they existed gets them when it is opened, schema version unchanged)::

    likes          (listing, member) -> when they favourited it
    negotiations   one row per negotiation: the JSON document (``offers_wire``)
                   and the columns the reads filter and sort on
    negotiations_untold  (id, version) -> updated_ms and the body at that
                   version, while that change is not told (``mark_told``);
                   written in the change's own transaction

At most one open negotiation per (listing, buyer) is the partial unique index
``negotiations_open``; each change checks it first and refuses with a
``ParleyError``, since a constraint failing inside the writer's batch would
roll back every request of the batch. A replace is one ``UPDATE ... WHERE
version = ?`` in the writer: of two changes from one version, the second finds
none.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, TypeVar

from parley.protocol.errors import ErrorCode, ParleyError
from parley.server.core.model import Listing, ListingId, Money, UserId
from parley.server.core.offers import Negotiation, OfferState
from parley.server.store.base import Like
from parley.server.store.offers_wire import decode_negotiation, encode_negotiation, offer_exists

T = TypeVar("T")

OFFERS_SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS likes (
        listing_id TEXT NOT NULL, user_id TEXT NOT NULL, ts INTEGER NOT NULL,
        PRIMARY KEY (listing_id, user_id)) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS likes_recent ON likes (listing_id, ts DESC, user_id)",
    """CREATE TABLE IF NOT EXISTS negotiations (
        id TEXT PRIMARY KEY, listing_id TEXT NOT NULL, buyer_id TEXT NOT NULL,
        seller_id TEXT NOT NULL, state TEXT NOT NULL, expires_at_ms INTEGER,
        updated_ms INTEGER NOT NULL, version INTEGER NOT NULL, body TEXT NOT NULL)""",
    """CREATE UNIQUE INDEX IF NOT EXISTS negotiations_open
        ON negotiations (listing_id, buyer_id) WHERE state = 'open'""",
    """CREATE INDEX IF NOT EXISTS negotiations_due
        ON negotiations (expires_at_ms, id) WHERE state = 'open'""",
    "CREATE INDEX IF NOT EXISTS negotiations_buyer ON negotiations (buyer_id, updated_ms)",
    "CREATE INDEX IF NOT EXISTS negotiations_seller ON negotiations (seller_id, updated_ms)",
    """CREATE TABLE IF NOT EXISTS negotiations_untold (
        id TEXT NOT NULL, version INTEGER NOT NULL, updated_ms INTEGER NOT NULL,
        body TEXT NOT NULL, PRIMARY KEY (id, version)) WITHOUT ROWID""",
    """CREATE INDEX IF NOT EXISTS negotiations_untold_at
        ON negotiations_untold (updated_ms, id, version)""",
)

# Most recently changed first; ties by id, descending, as on Redis (ZREVRANGE).
_RECENT: Final = "ORDER BY updated_ms DESC, id DESC"


class SqliteOffers:
    """The likes and negotiations part of ``SqliteStore``, mixed into it."""

    if TYPE_CHECKING:  # provided by SqliteStore

        async def _write(self, run: Callable[[sqlite3.Connection], T]) -> T: ...

        async def _read(self, query: Callable[[sqlite3.Connection], T]) -> T: ...

    # Likes.

    async def put_like(self, listing_id: ListingId, user_id: UserId, ts: int) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            return bool(
                conn.execute(
                    "INSERT OR IGNORE INTO likes (listing_id, user_id, ts) VALUES (?, ?, ?)",
                    (listing_id, user_id, ts),
                ).rowcount
            )

        return await self._write(run)

    async def delete_like(self, listing_id: ListingId, user_id: UserId) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            return bool(
                conn.execute(
                    "DELETE FROM likes WHERE listing_id = ? AND user_id = ?", (listing_id, user_id)
                ).rowcount
            )

        return await self._write(run)

    async def likers(self, listing_id: ListingId, before: int | None, limit: int) -> list[Like]:
        if limit <= 0:  # SQLite reads a negative LIMIT as "no limit"
            return []
        sql = "SELECT user_id, ts FROM likes WHERE listing_id = ?"
        args: list[object] = [listing_id]
        if before is not None:
            sql += " AND ts < ?"
            args.append(before)
        sql += " ORDER BY ts DESC, user_id LIMIT ?"
        args.append(limit)
        rows = await self._read(lambda conn: conn.execute(sql, args).fetchall())
        return [Like(UserId(user_id), ts) for user_id, ts in rows]

    async def set_offers_enabled(self, listing_id: ListingId, enabled: bool) -> Listing | None:
        def run(conn: sqlite3.Connection) -> Listing | None:
            conn.execute(
                "UPDATE listings SET offers_enabled = ? WHERE id = ?", (enabled, listing_id)
            )
            row = conn.execute(
                "SELECT seller_id, title, amount, currency, photo_url, offers_enabled, status"
                " FROM listings WHERE id = ?",
                (listing_id,),
            ).fetchone()
            if row is None:
                return None
            seller_id, title, amount, currency, photo_url, offers, status = row
            money = Money(amount, currency)
            return Listing(
                listing_id, UserId(seller_id), title, money, photo_url, bool(offers), status
            )

        return await self._write(run)

    # Negotiations.

    async def create_negotiation(self, negotiation: Negotiation) -> Negotiation:
        if negotiation.state is not OfferState.open:
            raise ValueError("a new negotiation is open")
        neg = negotiation
        body = encode_negotiation(neg).decode()

        def run(conn: sqlite3.Connection) -> Negotiation:
            holder = _open_one(conn, neg)
            if holder is not None:
                raise offer_exists(holder)
            if conn.execute("SELECT 1 FROM negotiations WHERE id = ?", (neg.id,)).fetchone():
                raise ParleyError(ErrorCode.conflict, f"negotiation {neg.id} exists already")
            conn.execute(
                "INSERT INTO negotiations (id, listing_id, buyer_id, seller_id, state,"
                " expires_at_ms, updated_ms, version, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    neg.id,
                    neg.listing_id,
                    neg.buyer_id,
                    neg.seller_id,
                    neg.state.value,
                    neg.expires_at_ms,
                    neg.updated_ms,
                    neg.version,
                    body,
                ),
            )
            _mark_untold(conn, neg, body)
            return neg

        return await self._write(run)

    async def replace_negotiation(self, negotiation: Negotiation) -> bool:
        neg = negotiation
        body = encode_negotiation(neg).decode()

        def run(conn: sqlite3.Connection) -> bool:
            # Listing and parties never change: a negotiation that names others is
            # not a change of the stored one, and matches nothing.
            where = (neg.id, neg.version - 1, neg.listing_id, neg.buyer_id, neg.seller_id)
            current = conn.execute(
                "SELECT 1 FROM negotiations WHERE id = ? AND version = ?"
                " AND listing_id = ? AND buyer_id = ? AND seller_id = ?",
                where,
            ).fetchone()
            if current is None:
                return False
            if neg.state is OfferState.open:
                holder = _open_one(conn, neg)
                if holder is not None and holder != neg.id:
                    raise offer_exists(holder)
            conn.execute(
                "UPDATE negotiations SET state = ?, expires_at_ms = ?, updated_ms = ?,"
                " version = ?, body = ? WHERE id = ?",
                (neg.state.value, neg.expires_at_ms, neg.updated_ms, neg.version, body, neg.id),
            )
            _mark_untold(conn, neg, body)
            return True

        return await self._write(run)

    async def get_negotiation(self, offer_id: str) -> Negotiation | None:
        found = await self._negotiations("SELECT body FROM negotiations WHERE id = ?", offer_id)
        return found[0] if found else None

    async def negotiations_of(
        self,
        user_id: UserId,
        *,
        listing_id: ListingId | None = None,
        open_only: bool = False,
        limit: int = 100,
    ) -> list[Negotiation]:
        if limit <= 0:
            return []
        sql = "SELECT body FROM negotiations WHERE (buyer_id = ? OR seller_id = ?)"
        args: list[object] = [user_id, user_id]
        if listing_id is not None:
            sql += " AND listing_id = ?"
            args.append(listing_id)
        if open_only:
            sql += " AND state = 'open'"
        return await self._negotiations(f"{sql} {_RECENT} LIMIT ?", *args, limit)

    async def open_negotiations(self, listing_id: ListingId) -> list[Negotiation]:
        return await self._negotiations(
            f"SELECT body FROM negotiations WHERE listing_id = ? AND state = 'open' {_RECENT}",
            listing_id,
        )

    async def due_negotiations(self, now_ms: int, limit: int) -> list[Negotiation]:
        if limit <= 0:
            return []
        return await self._negotiations(
            "SELECT body FROM negotiations WHERE state = 'open' AND expires_at_ms <= ?"
            " ORDER BY expires_at_ms, id LIMIT ?",
            now_ms,
            limit,
        )

    async def next_deadline(self) -> int | None:
        row = await self._read(
            lambda conn: conn.execute(
                "SELECT min(expires_at_ms) FROM negotiations WHERE state = 'open'"
            ).fetchone()
        )
        return None if row[0] is None else int(row[0])

    async def untold_negotiations(self, before_ms: int, limit: int) -> list[Negotiation]:
        if limit <= 0:
            return []
        return await self._negotiations(
            "SELECT body FROM negotiations_untold WHERE updated_ms < ?"
            " ORDER BY updated_ms, id, version LIMIT ?",
            before_ms,
            limit,
        )

    async def mark_told(self, offer_id: str, version: int) -> None:
        await self._write(
            lambda conn: conn.execute(
                "DELETE FROM negotiations_untold WHERE id = ? AND version = ?", (offer_id, version)
            )
        )

    async def _negotiations(self, sql: str, *args: object) -> list[Negotiation]:
        rows: list[Any] = await self._read(lambda conn: conn.execute(sql, args).fetchall())
        return [decode_negotiation(body) for (body,) in rows]


def _mark_untold(conn: sqlite3.Connection, neg: Negotiation, body: str) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO negotiations_untold (id, version, updated_ms, body)"
        " VALUES (?, ?, ?, ?)",
        (neg.id, neg.version, neg.updated_ms, body),
    )


def _open_one(conn: sqlite3.Connection, neg: Negotiation) -> str | None:
    """The id of the open negotiation between ``neg``'s buyer and listing, if any."""
    row = conn.execute(
        "SELECT id FROM negotiations WHERE listing_id = ? AND buyer_id = ? AND state = 'open'",
        (neg.listing_id, neg.buyer_id),
    ).fetchone()
    return None if row is None else str(row[0])
