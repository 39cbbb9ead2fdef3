"""Ops on listing and order rooms: subscribe and resume, history, post, edit, delete.

Who may do what is decided in ``server.core.rooms``; the store keeps the log
and refuses members' writes into a room the backend closed, so a check done
here can never outlive a change of the room's state.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import TYPE_CHECKING, Any, Final

from parley.protocol.errors import ErrorCode, ParleyError
from parley.protocol.messages import Delete, Edit, History, Ping, Post, Subscribe, Unsubscribe
from parley.server.core.clock import to_ms
from parley.server.core.contact_policy import Guarded, contact_notice, guard_text
from parley.server.core.mention_rules import (
    Resolved,
    lookup_keys,
    newly_mentioned,
    resolve_mentions,
)
from parley.server.core.mentions import find_mentions
from parley.server.core.model import (
    AppendResult,
    Author,
    Draft,
    Entry,
    EntryKind,
    Listing,
    Mention,
    Order,
    UserId,
)
from parley.server.core.notices import excerpt
from parley.server.core.rooms import (
    RoomCheck,
    RoomRef,
    check_may_delete,
    check_may_edit,
    check_may_post,
    check_may_read,
    room_ref,
)
from parley.server.mail.reminders import queue_unread_reminder
from parley.server.notify import Notice, quoted_to
from parley.server.ops.presence import presence_of
from parley.server.stoppoints import STOP_AT, stop_point

if TYPE_CHECKING:
    from parley.server.hub import Conn, Hub
    from parley.server.ops import Handler

log = logging.getLogger("parley.ops")


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
    again = request.room in conn.rooms
    me = conn.principal.user_id
    _, _, order = await room_access(hub, me, request.room)
    reads: dict[str, Any] = {}
    if order is not None:
        # R10: how far each party has read ("seen"), and the badge. Read before
        # joining: once joined, no await may let an event precede the reply.
        marks = await hub.store.read_marks(request.room)
        parties = (order.buyer_id, order.seller_id)
        reads["read"] = {party: marks.get(party, 0) for party in parties}
        reads["unread"] = await hub.store.unread_count(request.room, me)
    others = await presence_of(hub, me, request.room, order)  # before joining, as reads
    # Entering may wait for other hubs: before joining, so that no event of the
    # room reaches the connection ahead of this reply and what it says was missed.
    counted = not again and await hub.enter(conn, request.room)
    try:
        result = await join_from(hub, conn, request.room, request.since, request.epoch)
    except BaseException:
        if counted:
            hub.left(conn, request.room)
        raise
    if conn not in hub.conns:
        hub.unwatch(conn, request.room)  # closed while joining: its cleanup has run
    result |= reads
    result |= others
    return result


async def join_from(
    hub: Hub, conn: Conn, name: str, since: int | None, known_epoch: str | None
) -> dict[str, Any]:
    """Join ``name``, with what was missed after ``since`` (or ``reload``).

    The log is read once, up to the last entry the room's feed had delivered
    when the read began; meanwhile the connection is held: the room's events
    are kept for it instead of written (``Hub.hold``). The reply then carries
    the entries read and the events held, in order, and every later event
    comes live after it. However fast the room moves and however slow the
    store answers, the resume is exact: nothing missed, nothing twice.
    """
    room = await hub.open_room(name)
    feed = room.feed
    result: dict[str, Any] = {"room": name, "epoch": feed.epoch}
    if since is None:
        hub.join(conn, name, room)
        result["seq"] = feed.last_seq
        return result
    epoch, start = feed.epoch, feed.last_seq
    why = _cannot_replay(hub, known_epoch, epoch, since, start)
    missed: list[dict[str, Any]] = []
    if why is None and since < start:
        hub.hold(conn, room)
        try:
            entries = await hub.store.entries_after(name, since, start - since)
        except BaseException:
            hub.unhold(conn, room)
            raise
        held = hub.unhold(conn, room)
        if feed.epoch != epoch or len(entries) != start - since:
            why = "reset"  # the log changed under the read
        else:
            missed = [e.to_event() for e in entries]
            for event in held:
                if "seq" not in event:
                    why = "reset"  # a reload was told to the room meanwhile
                    break
                missed.append(event)
    hub.join(conn, name, room)  # no await from here to the reply
    if why is None and since + len(missed) == feed.last_seq:
        result["seq"] = feed.last_seq
        result["missed"] = missed
        return result
    hub.count_reload(name, why or "reset", 1)
    result["epoch"] = feed.epoch
    result["seq"] = feed.last_seq
    result["reload"] = True
    return result


def _cannot_replay(
    hub: Hub, known_epoch: str | None, epoch: str, since: int, last: int
) -> str | None:
    """Why a resume from ``since`` cannot be exact, or ``None``."""
    if known_epoch not in (None, epoch):
        return "epoch"  # another log than the one the client knows
    if since > last:
        return "ahead"  # the client knows more than the log: restored from an older copy
    if last - since > hub.config.resume_max_missed:
        return "too_many"  # too much to replay
    return None


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
    order: Order | None = None
    if request.room not in conn.rooms:
        # A watcher was checked on subscribe; who may post where never narrows
        # while a room is open, and the store refuses posts into a closed one.
        _, _, order = await room_access(hub, me.user_id, request.room, check_may_post)
    guarded, resolved = await _prepare(hub, me.user_id, request.room, request.text, order)
    draft = Draft(
        kind="comment",
        text=guarded.text,
        ts=to_ms(hub.clock.now()),
        author=Author(me.user_id, me.name),
        client_msg_id=request.client_msg_id,
        mentions=() if resolved is None else resolved.mentions,
        masked_kinds=guarded.kinds,
    )
    appended = await _append(hub, request.room, draft)
    entry = appended.entry
    result: dict[str, Any] = {
        "room": request.room,
        "seq": entry.seq,
        "ts": entry.ts,
        "duplicate": appended.duplicate,
    }
    if STOP_AT is not None:
        stop_point("post.stored")
    # A post is acknowledged once its notifications are stored too: if the
    # store fails while telling them, the post answers the error, and its
    # retry (same client_msg_id, answered duplicate) tells them again. Each
    # notice is idempotent by its key, so telling again stores nothing twice.
    if appended.duplicate:
        # A retry: the first attempt may have stopped before notifying.
        if resolved is not None and resolved.members:
            await _notify_mentions(
                hub, conn, entry, resolved, list(resolved.members), charge=False, whole=True
            )
        if request.room.startswith("order:"):
            await _notify_counterpart(hub, entry, order)
        return result
    result |= _masked_reply(guarded, me.locale)
    if resolved is not None:
        result |= await _notify_mentions(
            hub, conn, entry, resolved, list(resolved.members), whole=True
        )
    if request.room.startswith("order:"):
        await _notify_counterpart(hub, entry, order)
    return result


async def edit(hub: Hub, conn: Conn, request: Edit) -> dict[str, Any]:
    me = conn.principal
    _, _, order = await room_access(hub, me.user_id, request.room)
    target = check_may_edit(me.user_id, await hub.store.get_entry(request.room, request.seq))
    guarded, resolved = await _prepare(hub, me.user_id, request.room, request.text, order)
    mentions = () if resolved is None else resolved.mentions
    mentioned = {m.user_id for m in mentions}
    # What the notifications of the message quote follows it, before the edit is stored.
    readers = [*quoted_to(target, order), *mentioned]
    await hub.notifier.follow_message(target, readers, text=guarded.text, mentioned=mentioned)
    result = await _change(
        hub, conn, request.room, "edit", guarded.text, request.seq, mentions, guarded.kinds
    )
    result |= _masked_reply(guarded, me.locale)
    if resolved is not None:
        fresh = newly_mentioned(target.mentions, resolved)
        result |= await _notify_mentions(hub, conn, target, resolved, fresh, text=guarded.text)
    await _settle(hub, target, guarded.text, readers, order)
    return result


async def delete(hub: Hub, conn: Conn, request: Delete) -> dict[str, Any]:
    me = conn.principal
    _, listing, order = await room_access(hub, me.user_id, request.room)
    target = check_may_delete(
        me.user_id, await hub.store.get_entry(request.room, request.seq), listing
    )
    # The notifications quoting it are withdrawn first: they never outlive it.
    await hub.notifier.follow_message(target, quoted_to(target, order), text=None, mentioned=())
    return await _change(hub, conn, request.room, "delete", "", request.seq)


async def _settle(
    hub: Hub, target: Entry, text: str, readers: list[UserId], order: Order | None
) -> None:
    """After an edit: if the message changed meanwhile (another edit or a deletion from
    another connection or hub), its notifications follow what it is now."""
    try:
        now = await hub.store.get_entry(target.room, target.seq)
        if now is None or (not now.deleted and now.text == text):
            return
        members = [*readers, *quoted_to(now, order)]
        mentioned = {m.user_id for m in now.mentions}
        await hub.notifier.follow_message(
            now, members, text=None if now.deleted else now.text, mentioned=mentioned
        )
    except ParleyError as exc:  # the edit is stored: its author must not retry it
        log.warning(
            "notifications not settled room=%s seq=%d: %s", target.room, target.seq, exc.message
        )


async def _prepare(
    hub: Hub, author_id: str, room: str, text: str, order: Order | None
) -> tuple[Guarded, Resolved | None]:
    """A member's text as it will be stored: its contact details handled by the
    room's policy (R8), its mentions resolved (R4; a member's @name is never
    taken for a handle). A text with no '@' looks nobody up."""
    spans = find_mentions(text)
    if not spans:
        return _guard(hub, room, text, ()), None
    found = await hub.store.users_by_name(lookup_keys(spans))
    may_read = None
    if room.startswith("order:"):
        if order is None:
            order = await hub.order(room.partition(":")[2])
        may_read = order.is_party if order is not None else (lambda _: False)
    # Masking keeps the text's length and never covers a member's @name, so
    # the spans found in the original hold in the stored text.
    guarded = _guard(hub, room, text, found.keys())
    return guarded, resolve_mentions(spans, found, author_id, may_read)


def _guard(hub: Hub, room: str, text: str, members: Collection[str]) -> Guarded:
    config = hub.config
    policy = (
        config.contact_policy_order
        if room.startswith("order:")
        else (config.contact_policy_listing)
    )
    return guard_text(text, policy, region=config.phone_region, members=members)


def _masked_reply(guarded: Guarded, locale: str) -> dict[str, Any]:
    """What the author is told of the details masked in their text, and why."""
    if not guarded.masked:
        return {}
    return {
        "masked": [{"kind": f.kind, "start": f.start, "end": f.end} for f in guarded.masked],
        "notice": contact_notice(guarded.kinds, locale),
    }


async def _notify_mentions(
    hub: Hub,
    conn: Conn,
    message: Entry,
    resolved: Resolved,
    members: list[UserId],
    *,
    text: str | None = None,
    charge: bool = True,
    whole: bool = False,
) -> dict[str, Any]:
    """Notify ``members`` of a mention in ``message``; say in the reply who was not.

    ``charge=False``: a retry telling again what its first attempt was charged for.
    ``whole``: a store failure is raised (the post answers it, and its retry
    tells again) rather than reported as ``reason: unavailable`` (an edit).
    """
    me = conn.principal
    outcome: dict[str, Any] = {"mentions": [m.to_wire() for m in resolved.mentions]}
    not_notified = resolved.over_limit
    reason = "too_many_mentions" if not_notified else None
    if members and charge and not hub.take_mentions(me.user_id, len(members)):
        not_notified += len(members)
        members = []
        reason = "mentions_rate_limited"
    payload = {
        "kind": "mention",
        "room": message.room,
        "seq": message.seq,
        "author": {"id": me.user_id, "name": me.name},
        "excerpt": excerpt(message.text if text is None else text),
    }
    notices = [
        Notice(member, payload, f"mention:{message.room}:{message.seq}") for member in members
    ]
    try:
        outcome["notified"] = await hub.notifier.send(notices) if notices else 0
    except ParleyError as exc:
        if whole:
            raise
        # An edit is stored: its author must not repeat it for a notice.
        log.warning("mention notifications failed room=%s: %s", message.room, exc.message)
        outcome["notified"] = 0
        not_notified += len(notices)
        reason = "unavailable"
    if reason is not None:
        outcome["not_notified"] = not_notified
        outcome["reason"] = reason
    return outcome


async def _notify_counterpart(hub: Hub, message: Entry, order: Order | None) -> None:
    """``order_message`` for the other party, unless they watch the room somewhere."""
    if message.author is None or hub.watched_by_other(message.room, message.author.id):
        return  # the usual case, settled without the store: only parties watch the room
    if order is None:
        order = await hub.order(message.room.partition(":")[2])
    if order is None:
        return
    other = order.seller_id if message.author.id == order.buyer_id else order.buyer_id
    if await hub.store.presence.present(message.room, other):
        return
    payload = {
        "kind": "order_message",
        "order_id": order.id,
        "room": message.room,
        "seq": message.seq,
        "author": {"id": message.author.id, "name": message.author.name},
        "excerpt": excerpt(message.text),
    }
    await hub.notifier.send([Notice(other, payload, f"order_message:{message.room}:{message.seq}")])
    if hub.config.unread_reminder_minutes > 0:  # an e-mail if it stays unread (the mail sender)
        await queue_unread_reminder(hub.store, order.id, other, message.seq, message.ts)


async def _change(
    hub: Hub,
    conn: Conn,
    room: str,
    kind: EntryKind,
    text: str,
    target: int,
    mentions: tuple[Mention, ...] = (),
    masked_kinds: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Append an edit or a deletion of ``target``: an entry of the log like any other."""
    me = conn.principal
    draft = Draft(
        kind=kind,
        text=text,
        ts=to_ms(hub.clock.now()),
        author=Author(me.user_id, me.name),
        target=target,
        mentions=mentions,
        masked_kinds=masked_kinds,
    )
    entry = (await _append(hub, room, draft)).entry
    return {"room": room, "seq": entry.seq, "target": target}


async def _append(hub: Hub, room: str, draft: Draft) -> AppendResult:
    """A member's entry; an ended order's room that is read-only says so."""
    try:
        return await hub.store.append(room, draft)
    except ParleyError as exc:
        if exc.code is ErrorCode.not_found and room.startswith("order:"):
            raise ParleyError(
                ErrorCode.read_only, "this order has ended: its conversation is read-only"
            ) from None
        raise


HANDLERS: Final[dict[type, Handler]] = {
    Ping: ping,
    Subscribe: subscribe,
    Unsubscribe: unsubscribe,
    History: history,
    Post: post,
    Edit: edit,
    Delete: delete,
}
