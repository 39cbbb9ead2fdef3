"""Typing and presence: ephemeral events, told to every hub and never stored.

``typing`` tells the other party of an order that a member is writing;
``presence`` that a party's first connection (on a hub) entered the order's
room, or that their last one (on every hub) left it. Both travel as the
fan-out's ephemeral events: no ``seq``, no log, no resume. A client that
reconnects learns presence again from its ``subscribe`` (``online``) and has
simply missed any typing. Public listing rooms say how many members watch
(``watchers``), never who.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Final

from parley.protocol.errors import ParleyError
from parley.protocol.messages import Typing
from parley.server.core.model import Order, UserId
from parley.server.core.ratelimit import TokenBucket
from parley.server.core.rooms import check_may_post, room_ref
from parley.server.store.base import COUNTED_ROOMS

if TYPE_CHECKING:
    from parley.server.hub import Conn, Hub
    from parley.server.ops import Handler

log = logging.getLogger("parley.ops")


async def typing(hub: Hub, conn: Conn, request: Typing) -> dict[str, Any]:
    """Tell the room that the member is typing; past the rate, quietly don't.

    Over ``typing_rate`` the reply says ``sent: false`` rather than an error:
    a typing notice is advice, a client sends it on keystrokes, and one
    skipped is worth neither an error nor a retry.
    """
    me = conn.principal
    room = request.room
    if room not in conn.rooms:
        # A watcher was checked on subscribe, as for post. The hub's cached
        # order spares the store a read per keystroke burst of a non-watcher.
        ref = room_ref(room)
        check_may_post(me.user_id, ref, None, await hub.order(ref.id))
    now = hub.clock.now()
    bucket = conn.typing_bucket
    if bucket is None:  # most connections never type: no bucket until one does
        bucket = conn.typing_bucket = TokenBucket(
            hub.config.typing_rate, hub.config.typing_burst, now
        )
    if not bucket.take(now):
        return {"room": room, "sent": False}
    event = {"event": "typing", "room": room, "user_id": me.user_id, "name": me.name}
    await hub.store.fanout.publish_ephemeral(room, event)
    return {"room": room, "sent": True}


async def presence_of(hub: Hub, user_id: str, room: str, order: Order | None) -> dict[str, Any]:
    """What a ``subscribe`` result says of who else is here; asked before joining.

    An order room: whether the other party watches it on any hub (``online``).
    A listing room: how many members watch it (``watchers``), never who, the
    subscriber included. Left out when the store cannot answer now.
    """
    presence = hub.store.presence
    try:
        if order is not None:
            other = order.seller_id if user_id == order.buyer_id else order.buyer_id
            return {"online": {other: await presence.present(room, other)}}
        if room.startswith(COUNTED_ROOMS):
            arriving = not presence.here(room, user_id)  # counted once joined
            return {"watchers": await presence.watchers(room) + (1 if arriving else 0)}
    except ParleyError as exc:
        log.warning("presence unknown room=%s: %s", room, exc.message)
    return {}


async def announce(hub: Hub, room: str, user_id: UserId, *, online: bool) -> None:
    """Tell every hub's watchers of an order room that the member came or went.

    Going is said only when no hub has a connection of the member in the room
    any more, asked once this hub's leaving is written: of two hubs letting
    the member go at once, the later asker sees both gone. Lost if the store
    cannot take it now: presence is advice, and ``subscribe`` says the truth.
    """
    presence = hub.store.presence
    try:
        if not online:
            await presence.wait_written()
            if await presence.present(room, user_id):
                return  # back on this hub meanwhile, or still on another one
        event = {"event": "presence", "room": room, "user_id": user_id, "online": online}
        await hub.store.fanout.publish_ephemeral(room, event)
    except ParleyError as exc:
        log.warning("presence not announced room=%s user=%s: %s", room, user_id, exc.message)


def contradicts(hub: Hub, room: str, event: dict[str, Any]) -> bool:
    """Whether ``event`` says a member left whom this hub still has in the room.

    Two hubs can cross: one sees the member gone everywhere just before the
    other lets them in again, and its ``online: false`` lands last. The hub
    that has the member answers with ``online: true``, so the last word holds.
    """
    return (
        event.get("event") == "presence"
        and event.get("online") is False
        and hub.store.presence.here(room, event.get("user_id", ""))
    )


HANDLERS: Final[dict[type, Handler]] = {
    Typing: typing,
}
