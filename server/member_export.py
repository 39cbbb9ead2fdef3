"""A member's export: everything Parley holds about one member, as one JSON document
produced piece by piece.

``export_chunks`` pages through the store and yields the document's bytes in
order, so that a member with a hundred thousand messages costs a page of them
in memory, never the whole list. The document (``docs/api.md``)::

    {"format": "parley.export/1", "exported_at": ms, "user": {...},
     "messages": [...], "edits": [...], "notifications": [...], "inbox": {...},
     "orders": [...], "negotiations": [...], "likes": [...], <sections>...}

Features that keep more about a member add a section with ``ExportSection``: a
name and the member's records, page by page; ``export_chunks`` writes them after
its own. ``member_sections`` gives the moderation's: ``blocks``, ``mutes`` (each
list bounded by its setting), ``restriction`` (the one in force, if any) and
``reports`` (those the member filed: their reason and note, the message's room
and seq; nothing of the other reporters).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from parley.server.core.model import Entry, Order, User, UserId
from parley.server.core.offers import to_wire as offer_wire
from parley.server.core.restrictions import restriction_wire
from parley.server.core.rooms import order_room, user_room
from parley.server.store.base import OrderRole, Store

FORMAT: Final = "parley.export/1"
PAGE: Final = 200  # entries or orders read from the store at once
ROLES: Final[tuple[OrderRole, ...]] = ("buyer", "seller")
EDIT_FIELDS: Final = ("room", "seq", "target", "ts", "text")

Records = AsyncIterator[list[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class ExportSection:
    """A feature's part of the export: ``records(member)`` yields pages of objects."""

    name: str
    records: Callable[[UserId], Records]


def _message(entry: Entry) -> dict[str, Any]:
    """The message as history shows it, without what the export says once: its author."""
    out = entry.to_wire()
    del out["kind"], out["author"]
    return out


def _edit(entry: Entry) -> dict[str, Any]:
    return {name: getattr(entry, name) for name in EDIT_FIELDS}


async def _written(store: Store, user_id: UserId, kind: str) -> Records:
    """The member's entries of ``kind`` (comment or edit), by room and seq."""
    shape = _message if kind == "comment" else _edit
    after: tuple[str, int] | None = None
    while True:
        page = await store.member_entries(user_id, after, PAGE)
        records = [shape(e) for e in page if e.kind == kind]
        if records:
            yield records
        if len(page) < PAGE:
            return
        after = (page[-1].room, page[-1].seq)


async def _notifications(store: Store, user_id: UserId) -> Records:
    room, after = user_room(user_id), 0
    while True:
        page = await store.entries_after(room, after, PAGE)
        records = [
            {"seq": e.seq, "ts": e.ts, "notification": e.data or {}}
            for e in page
            if e.kind == "notification"
        ]
        if records:
            yield records
        if len(page) < PAGE:
            return
        after = page[-1].seq


async def orders_of(store: Store, user_id: UserId, role: OrderRole) -> AsyncIterator[Order]:
    """Every order of the member as ``role``, newest first, each once."""
    before: int | None = None
    seen_at_edge: set[str] = set()  # ids of the last page's oldest millisecond
    while True:
        # ``before`` is exclusive: the last millisecond is read again, its orders skipped.
        page = await store.orders_of(user_id, role, None if before is None else before + 1, PAGE)
        fresh = [o for o in page if o.id not in seen_at_edge]
        for order in fresh:
            yield order
        if len(page) < PAGE or not fresh:
            return
        before = page[-1].created_ts
        seen_at_edge = {o.id for o in page if o.created_ts == before}


async def _orders(store: Store, user_id: UserId) -> Records:
    for role in ROLES:
        async for order in orders_of(store, user_id, role):
            room = order_room(order.id)
            marks = await store.read_marks(room)
            yield [
                {
                    "id": order.id,
                    "role": role,
                    "listing_id": order.listing_id,
                    "status": order.status,
                    "created_ts": order.created_ts,
                    "room": room,
                    "read_up_to": marks.get(user_id, 0),
                }
            ]


async def _negotiations(store: Store, user_id: UserId, now_ms: int) -> Records:
    async for page in store.member_negotiations(user_id):
        yield [offer_wire(neg, None, now_ms=now_ms) for neg in page]


async def _likes(store: Store, user_id: UserId) -> Records:
    async for page in store.member_likes(user_id):
        yield [{"listing_id": listing_id, "ts": ts} for listing_id, ts in page]


def member_sections(
    store: Store, now_ms: Callable[[], int], max_blocks: int, max_mutes: int
) -> list[ExportSection]:
    """The member's own lists and their restriction in force, as export sections."""

    async def blocks(user_id: UserId) -> Records:
        yield [
            {"user": other, "since": ts} for other, ts in await store.blocks(user_id, max_blocks)
        ]

    async def mutes(user_id: UserId) -> Records:
        yield [{"room": room, "since": ts} for room, ts in await store.mutes(user_id, max_mutes)]

    async def restriction(user_id: UserId) -> Records:
        found = await store.get_restriction(user_id)
        if found is not None and found.active_at(now_ms()):
            wire = restriction_wire(found)
            del wire["user_id"]
            yield [wire]

    return [
        ExportSection("blocks", blocks),
        ExportSection("mutes", mutes),
        ExportSection("restriction", restriction),
        ExportSection("reports", store.member_reports),
    ]


async def export_chunks(
    store: Store, user: User, now_ms: int, sections: Sequence[ExportSection] = ()
) -> AsyncIterator[bytes]:
    """The export of ``user`` as JSON, in pieces; read from the store as it goes."""
    uid = user.id
    profile = {"id": uid, "name": user.name, "locale": user.locale, "email": user.email}
    head = {"format": FORMAT, "exported_at": now_ms, "user": profile}
    yield orjson.dumps(head)[:-1]  # the object stays open for the lists
    inbox = await store.read_state(user_room(uid))
    lists: list[tuple[str, Records]] = [
        ("messages", _written(store, uid, "comment")),
        ("edits", _written(store, uid, "edit")),
        ("notifications", _notifications(store, uid)),
        ("orders", _orders(store, uid)),
        ("negotiations", _negotiations(store, uid, now_ms)),
        ("likes", _likes(store, uid)),
        *((s.name, s.records(uid)) for s in sections),
    ]
    inbox_wire = {"read_up_to": inbox.up_to, "unread": inbox.unread}
    yield b',"inbox":' + orjson.dumps(inbox_wire)
    for name, pages in lists:
        yield b"," + orjson.dumps(name) + b":["
        first = True
        async for records in pages:
            for record in records:
                yield (b"" if first else b",") + orjson.dumps(record)
                first = False
        yield b"]"
    yield b"}"
