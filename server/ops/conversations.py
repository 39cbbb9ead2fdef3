"""Ops on a member's order conversations (R9, R10): read receipts and "My orders".

A party's read mark in an order room is kept by the store, so unread counts
are exact on every device and after a restart. When ``read`` moves a mark, a
``receipt`` entry is appended to the room: every watcher, on every hub, gets a
``read`` event in order with the messages (the counterpart shows "seen", the
reader's other devices clear their badge). Marks only move forward and never
past the room's last message, so a receipt never calls for another.

"My orders" (``conversations``) needs no writes of its own: a widget keeps it
current from ``message`` events (rooms it watches), ``order_message``
notifications (the others: the counterpart of a message gets one when not
watching) and ``read`` events.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Final

from parley.protocol.messages import Conversations, Read
from parley.server.core.clock import to_ms
from parley.server.core.model import Author, Draft, Order, UserId
from parley.server.core.notices import excerpt
from parley.server.core.rooms import order_room
from parley.server.ops.rooms import room_access
from parley.server.store.base import OrderRole

if TYPE_CHECKING:
    from parley.server.hub import Conn, Hub
    from parley.server.ops import Handler

ROLES: Final[dict[str, OrderRole]] = {"sales": "seller", "purchases": "buyer"}
SUMMARIES_AT_ONCE: Final = 8  # conversations of one page looked up concurrently


async def read(hub: Hub, conn: Conn, request: Read) -> dict[str, Any]:
    me = conn.principal
    await room_access(hub, me.user_id, request.room)
    up_to, moved = await hub.store.set_read_mark(request.room, me.user_id, request.seq)
    if moved:
        # Two devices reading at once may append their receipts in either order:
        # a watcher keeps the highest ``up_to`` it has seen of each member.
        draft = Draft(
            kind="receipt",
            text="",
            ts=to_ms(hub.clock.now()),
            author=Author(me.user_id, me.name),
            data={"user_id": me.user_id, "up_to": up_to},
        )
        await hub.store.append(request.room, draft)
    unread = await hub.store.unread_count(request.room, me.user_id)
    return {"room": request.room, "up_to": up_to, "unread": unread}


async def conversations(hub: Hub, conn: Conn, request: Conversations) -> dict[str, Any]:
    me = conn.principal.user_id
    # One more than asked: whether there is more, and where this page may end.
    found = await hub.store.orders_of(me, ROLES[request.role], request.before, request.limit + 1)
    page = _page(found, request.limit)
    gate = asyncio.Semaphore(SUMMARIES_AT_ONCE)
    items = await asyncio.gather(*(_summary(hub, gate, me, order) for order in page))
    return {"conversations": items, "more": len(found) > request.limit}


def _page(found: list[Order], limit: int) -> list[Order]:
    """At most ``limit`` orders, newest first, ending where the next page starts.

    ``before`` is a ``created_ts``: orders of the same millisecond as the first
    one left out stay together on the next page. (More than a page of one
    member's orders in one millisecond cannot be paged through; the rest of
    that millisecond is skipped.)
    """
    if len(found) <= limit:
        return found
    boundary = found[limit].created_ts
    whole = [order for order in found[:limit] if order.created_ts != boundary]
    return whole or found[:limit]


async def _summary(hub: Hub, gate: asyncio.Semaphore, me: UserId, order: Order) -> dict[str, Any]:
    """One line of "My orders": the item, the other party, the last message, unread."""
    room = order_room(order.id)
    other = order.seller_id if me == order.buyer_id else order.buyer_id
    async with gate:
        listing = await hub.store.get_listing(order.listing_id)
        counterpart = await hub.store.get_user(other)
        last = await hub.store.history(room, None, 1)
        marks = await hub.store.read_marks(room)
        unread = await hub.store.unread_count(room, me)
    last_message: dict[str, Any] | None = None
    if last:
        message = last[0]
        author = message.author
        last_message = {
            "seq": message.seq,
            "ts": message.ts,
            "kind": message.kind,
            "author": None if author is None else {"id": author.id, "name": author.name},
            "excerpt": excerpt(message.text),
        }
        if message.deleted:
            last_message["deleted"] = True
    return {
        "order_id": order.id,
        "room": room,
        "status": order.status,
        "created_at": order.created_ts,
        "listing": None
        if listing is None
        else {"id": listing.id, "title": listing.title, "photo_url": listing.photo_url},
        "counterpart": {"id": other, "name": None if counterpart is None else counterpart.name},
        "last_message": last_message,
        "unread": unread,
        "read_up_to": marks.get(me, 0),
    }


HANDLERS: Final[dict[type, Handler]] = {
    Read: read,
    Conversations: conversations,
}
