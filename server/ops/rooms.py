"""Ops on listing and order rooms: subscribe and resume, history, post, edit, delete.

Who may do what is decided in ``server.core.rooms``; the store keeps the log
and refuses members' writes into a room the backend closed, so a check done
here can never outlive a change of the room's state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from protocol.errors import ErrorCode, ParleyError
from protocol.messages import Delete, Edit, History, Ping, Post, Subscribe, Unsubscribe
from server.core.clock import to_ms
from server.core.model import Author, Draft, Entry, EntryKind, Listing, Order
from server.core.rooms import (
    RoomCheck,
    RoomRef,
    check_may_delete,
    check_may_edit,
    check_may_post,
    check_may_read,
    room_ref,
)

if TYPE_CHECKING:
    from server.hub import Conn, Hub
    from server.ops import Handler

SUBSCRIBE_CATCHUP_ROUNDS: Final = 4  # re-reads of the log while a room moves under a subscribe


async def room_access(
    hub: Hub, user_id: str, room: str, check: RoomCheck = check_may_read
) -> tuple[RoomRef, Listing | None, Order | None]:
    """Check that ``user_id`` may use ``room``; return its listing or order."""
    ref = room_ref(room)
    listing: Listing | None = None
    order: Order | None = None
    if ref.kind == "listing":
        listing = await hub.store.get_listing(ref.id)  # type: ignore[arg-type]
    elif ref.kind == "order":
        order = await hub.store.get_order(ref.id)  # type: ignore[arg-type]
    check(user_id, ref, listing, order)
    return ref, listing, order


async def ping(hub: Hub, conn: Conn, request: Ping) -> dict[str, Any]:
    return {"ts": to_ms(hub.clock.now())}


async def subscribe(hub: Hub, conn: Conn, request: Subscribe) -> dict[str, Any]:
    await room_access(hub, conn.principal.user_id, request.room)
    room = await hub.open_room(request.room)
    feed = room.feed
    result: dict[str, Any] = {"room": request.room, "epoch": feed.epoch}
    since = request.since
    if since is None:
        hub.join(conn, request.room, room)
        result["seq"] = feed.last_seq
        return result
    epoch = feed.epoch
    missed: list[Entry] = []
    for _ in range(SUBSCRIBE_CATCHUP_ROUNDS):
        if request.epoch not in (None, epoch) or feed.epoch != epoch:
            break  # another log than the one the client knows
        if since > feed.last_seq or feed.last_seq - since > hub.config.resume_max_missed:
            break  # restored from an older copy, or too much to replay
        have = since + len(missed)
        if have < feed.last_seq:
            missed += await hub.store.entries_after(request.room, have, feed.last_seq - have)
        # Keep only what the feed has delivered: the rest comes live.
        while missed and missed[-1].seq > feed.last_seq:
            missed.pop()
        # No await between this check and the join: every entry after
        # feed.last_seq reaches the connection live, and none twice.
        if feed.epoch == epoch and since + len(missed) == feed.last_seq:
            hub.join(conn, request.room, room)
            result["seq"] = feed.last_seq
            result["missed"] = [e.to_event() for e in missed]
            return result
    hub.join(conn, request.room, room)
    result["epoch"] = feed.epoch
    result["seq"] = feed.last_seq
    result["reload"] = True
    return result


async def unsubscribe(hub: Hub, conn: Conn, request: Unsubscribe) -> dict[str, Any]:
    if request.room not in conn.rooms:
        raise ParleyError(ErrorCode.not_subscribed, f"not subscribed to {request.room}")
    hub.unwatch(conn, request.room)
    return {"room": request.room}


async def history(hub: Hub, conn: Conn, request: History) -> dict[str, Any]:
    await room_access(hub, conn.principal.user_id, request.room)
    entries = await hub.store.history(request.room, request.before, request.limit)
    head = await hub.store.head(request.room)
    return {
        "room": request.room,
        "epoch": head.epoch,
        "messages": [e.to_wire() for e in entries],
        "more": len(entries) == request.limit and entries[-1].seq > 1,
    }


async def post(hub: Hub, conn: Conn, request: Post) -> dict[str, Any]:
    me = conn.principal
    if request.room not in conn.rooms:
        # A watcher was checked on subscribe; who may post where never narrows
        # while a room is open, and the store refuses posts into a closed one.
        await room_access(hub, me.user_id, request.room, check_may_post)
    draft = Draft(
        kind="comment",
        text=request.text,
        ts=to_ms(hub.clock.now()),
        author=Author(me.user_id, me.name),
        client_msg_id=request.client_msg_id,
    )
    appended = await hub.store.append(request.room, draft)
    entry = appended.entry
    return {
        "room": request.room,
        "seq": entry.seq,
        "ts": entry.ts,
        "duplicate": appended.duplicate,
    }


async def edit(hub: Hub, conn: Conn, request: Edit) -> dict[str, Any]:
    me = conn.principal
    await room_access(hub, me.user_id, request.room)
    check_may_edit(me.user_id, await hub.store.get_entry(request.room, request.seq))
    return await _change(hub, conn, request.room, "edit", request.text, request.seq)


async def delete(hub: Hub, conn: Conn, request: Delete) -> dict[str, Any]:
    me = conn.principal
    _, listing, _ = await room_access(hub, me.user_id, request.room)
    target = await hub.store.get_entry(request.room, request.seq)
    check_may_delete(me.user_id, target, listing)
    return await _change(hub, conn, request.room, "delete", "", request.seq)


async def _change(
    hub: Hub, conn: Conn, room: str, kind: EntryKind, text: str, target: int
) -> dict[str, Any]:
    """Append an edit or a deletion of ``target``: an entry of the log like any other."""
    me = conn.principal
    draft = Draft(
        kind=kind,
        text=text,
        ts=to_ms(hub.clock.now()),
        author=Author(me.user_id, me.name),
        target=target,
    )
    entry = (await hub.store.append(room, draft)).entry
    return {"room": room, "seq": entry.seq, "target": target}


HANDLERS: Final[dict[type, Handler]] = {
    Ping: ping,
    Subscribe: subscribe,
    Unsubscribe: unsubscribe,
    History: history,
    Post: post,
    Edit: edit,
    Delete: delete,
}
