"""Ops on a member's own choices (whom they block, which rooms they mute) and
their reports of other members' messages.

The rules are ``server.core.moderation`` and ``server.core.reports``; what a
block or a mute silences is applied where notifications are sent
(``server.notify``) and where offers are made (``server.ops.offers``).
"""

from __future__ import annotations

import logging
import secrets
from typing import TYPE_CHECKING, Any, Final

from parley.protocol.errors import ErrorCode, ParleyError
from parley.protocol.messages import Block, Blocks, Mute, Mutes, Report, Unblock, Unmute
from parley.server.core.clock import to_ms
from parley.server.core.model import Draft, UserId
from parley.server.core.moderation import check_may_block
from parley.server.core.reports import (
    Flag,
    check_may_report,
    report_event,
    should_hold,
    snapshot_of,
)
from parley.server.ops.rooms import room_access

if TYPE_CHECKING:
    from parley.server.hub import Conn, Hub
    from parley.server.ops import Handler

log = logging.getLogger("parley.moderation")


async def block(hub: Hub, conn: Conn, request: Block) -> dict[str, Any]:
    me = conn.principal.user_id
    check_may_block(me, request.user)
    ts = to_ms(hub.clock.now())
    added = await hub.store.block(me, UserId(request.user), ts, hub.config.max_blocks)
    return {"user": request.user, "blocked": True, "changed": added}


async def unblock(hub: Hub, conn: Conn, request: Unblock) -> dict[str, Any]:
    removed = await hub.store.unblock(conn.principal.user_id, UserId(request.user))
    return {"user": request.user, "blocked": False, "changed": removed}


async def blocks(hub: Hub, conn: Conn, request: Blocks) -> dict[str, Any]:
    found = await hub.store.blocks(conn.principal.user_id, hub.config.max_blocks)
    return {"blocks": [{"user": user, "since": ts} for user, ts in found]}


async def mute(hub: Hub, conn: Conn, request: Mute) -> dict[str, Any]:
    me = conn.principal.user_id
    await room_access(hub, me, request.room)  # only a room the member may read
    ts = to_ms(hub.clock.now())
    added = await hub.store.mute(me, request.room, ts, hub.config.max_mutes)
    return {"room": request.room, "muted": True, "changed": added}


async def unmute(hub: Hub, conn: Conn, request: Unmute) -> dict[str, Any]:
    removed = await hub.store.unmute(conn.principal.user_id, request.room)
    return {"room": request.room, "muted": False, "changed": removed}


async def mutes(hub: Hub, conn: Conn, request: Mutes) -> dict[str, Any]:
    found = await hub.store.mutes(conn.principal.user_id, hub.config.max_mutes)
    return {"mutes": [{"room": room, "since": ts} for room, ts in found]}


async def report(hub: Hub, conn: Conn, request: Report) -> dict[str, Any]:
    """File a report of a message the member may read; the repeat answers the first."""
    me = conn.principal.user_id
    await room_access(hub, me, request.room)  # the same rules as history
    target = check_may_report(me, await hub.store.get_entry(request.room, request.seq))
    now = hub.clock.now()
    if not hub.report_allowance.take(me, now):
        raise ParleyError(ErrorCode.rate_limited, "too many reports from this member; retry later")
    ts = to_ms(now)
    report_id = secrets.token_hex(8)
    flag = Flag(UserId(me), request.reason, request.note, ts)
    event = Draft(
        kind="event",
        text="",
        ts=ts,
        client_msg_id=f"report.created:{report_id}",
        data=report_event(report_id, target, flag),
    )
    filed = await hub.store.file_report(report_id, snapshot_of(target), flag, event)
    if not filed.duplicate:
        log.info("report filed id=%s room=%s seq=%d", filed.report_id, request.room, request.seq)
    # Also on a repeat: a hold a crash left undone is done by the reporter's retry.
    if should_hold(target, filed.reporters, hub.config.hold_after_reports):
        await hub.moderation.hold(target)
    # What the reporter learns: their own report, never who else reported.
    return {"report": filed.report_id, "reason": filed.reason, "duplicate": filed.duplicate}


HANDLERS: Final[dict[type, Handler]] = {
    Block: block,
    Unblock: unblock,
    Blocks: blocks,
    Mute: mute,
    Unmute: unmute,
    Mutes: mutes,
    Report: report,
}
