"""Ops on a member's inbox: list notifications, mark them read on every device.

The inbox is the log of ``user:<id>``, joined on connect. A read mark is an
entry of that log too, so every device of the member (on any hub, or resuming
with ``since``) receives ``notifications_read`` in order with the rest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from parley.protocol.messages import Notifications, NotificationsRead
from parley.server.core.clock import to_ms
from parley.server.core.model import Draft
from parley.server.core.rooms import user_room

if TYPE_CHECKING:
    from parley.server.hub import Conn, Hub
    from parley.server.ops import Handler


async def notifications(hub: Hub, conn: Conn, request: Notifications) -> dict[str, Any]:
    room = user_room(conn.principal.user_id)
    entries = await hub.store.history(room, request.before, request.limit)
    state = await hub.store.read_state(room)
    head = await hub.store.head(room)
    return {
        "room": room,
        "epoch": head.epoch,
        "seq": head.seq,
        "notifications": [
            {
                "seq": e.seq,
                "ts": e.ts,
                "read": e.seq <= state.up_to,
                "notification": e.data or {},
            }
            for e in entries
            if not e.deleted  # withdrawn: its message was deleted or no longer names the member
        ],
        "unread": state.unread,
        "read_up_to": state.up_to,
        "more": len(entries) == request.limit and entries[-1].seq > 1,
    }


async def notifications_read(hub: Hub, conn: Conn, request: NotificationsRead) -> dict[str, Any]:
    room = user_room(conn.principal.user_id)
    head = await hub.store.head(room)
    up_to = min(request.up_to, head.seq)  # nothing beyond what exists can be read
    state = await hub.store.read_state(room)
    if up_to <= state.up_to:
        return {"read_up_to": state.up_to, "unread": state.unread}
    draft = Draft(kind="read", text="", ts=to_ms(hub.clock.now()), target=up_to)
    data = (await hub.store.append(room, draft)).entry.data or {}
    return {"read_up_to": data.get("up_to", up_to), "unread": data.get("unread", 0)}


HANDLERS: Final[dict[type, Handler]] = {
    Notifications: notifications,
    NotificationsRead: notifications_read,
}
