"""What the moderators do, made to happen: removals, restrictions, resolved reports.

``server.core.reports`` decides what may be removed and what the author is
told; this module stores it and tells it. A removal is an entry of the room's
log (kind ``remove``), so every watcher on every hub sees ``message_removed``
live and a client resuming with ``since`` replays it; the store erases the
message's words in the step that appends it, as it does for a member's delete.

A restriction is stored, then broadcast to every hub through the fan-out
(``RESTRICTIONS_ROOM``), which each hub applies to its memory at once: a
suspended member's connections close on every hub, a lifted restriction stops
applying everywhere. A hub that missed the broadcast reloads them all on resync.

Each step can be run again: the removal is idempotent by its key, and a call
that finds the message already removed only tells its author again (the notice
is idempotent by its own key). So a backend that retries after an error or a
crash drives a removal, and the report resolved with it, to the end.
"""

from __future__ import annotations

import logging
from typing import Any

from parley.protocol.errors import ErrorCode, ParleyError
from parley.protocol.messages import parse_room
from parley.server.config import Config
from parley.server.core.clock import Clock, to_ms
from parley.server.core.model import Draft, Entry, EntryKind, OrderId, UserId
from parley.server.core.reports import (
    Report,
    check_may_remove,
    removal_notice,
    statement_in,
)
from parley.server.core.restrictions import (
    RESTRICTIONS_ROOM,
    Restriction,
    restriction_notice,
    restriction_wire,
)
from parley.server.notify import Notice, Notifier, quoted_to
from parley.server.store.base import Store

log = logging.getLogger("parley.moderation")


class Moderation:
    def __init__(self, config: Config, store: Store, clock: Clock, notifier: Notifier) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.notifier = notifier

    async def remove_message(
        self, room: str, seq: int, reason: str, statement: dict[str, str]
    ) -> dict[str, Any]:
        """Make the message a tombstone for everyone and tell its author why."""
        room = parse_room(room)
        target = check_may_remove(await self.store.get_entry(room, seq))
        assert target.author is not None
        again = target.removed
        if not again:
            # As for a member's delete: the notifications quoting it are withdrawn first.
            kind, _, room_id = room.partition(":")
            order = await self.store.get_order(OrderId(room_id)) if kind == "order" else None
            await self.notifier.follow_message(
                target, quoted_to(target, order), text=None, mentioned=()
            )
            await self.store.append(
                room,
                Draft(
                    kind="remove",
                    text="",
                    ts=to_ms(self.clock.now()),
                    client_msg_id=f"remove:{seq}",
                    target=seq,
                    data={"reason": reason},
                ),
            )
            log.info("message removed room=%s seq=%d reason=%s", room, seq, reason)
        author = await self.store.get_user(target.author.id)
        locale = None if author is None else author.locale
        notice = removal_notice(target, reason, statement_in(statement, locale))
        await self.notifier.send([Notice(target.author.id, notice, f"moderation:{room}:{seq}")])
        return {"room": room, "seq": seq, "removed": True, "duplicate": again}

    async def restrict(
        self, user_id: str, kind: str, until: int | None, reason: str
    ) -> Restriction:
        """Restrict the member on every hub, and tell them why."""
        restriction = Restriction(user_id, kind, until, reason, to_ms(self.clock.now()))
        await self.store.put_restriction(restriction)
        await self._broadcast(user_id, restriction)
        log.info("member restricted user=%s kind=%s until=%s", user_id, kind, until)
        key = f"restriction:{user_id}:{kind}:{until}"
        await self.notifier.send([Notice(UserId(user_id), restriction_notice(restriction), key)])
        return restriction

    async def lift(self, user_id: str) -> bool:
        """End the member's restriction on every hub at once."""
        lifted = await self.store.delete_restriction(UserId(user_id))
        await self._broadcast(user_id, None)  # also when already gone: a retry finishes
        if lifted:
            log.info("restriction lifted user=%s", user_id)
        return lifted

    async def _broadcast(self, user_id: str, restriction: Restriction | None) -> None:
        await self.store.fanout.publish_ephemeral(
            RESTRICTIONS_ROOM,
            {
                "user_id": user_id,
                "restriction": None if restriction is None else restriction_wire(restriction),
            },
        )

    async def hold(self, target: Entry) -> None:
        """Hide a reported public comment pending review, once (``message_held``)."""
        held = await self.store.append(target.room, self._change("hold", target.seq))
        if not held.duplicate:
            log.info("message held room=%s seq=%d", target.room, target.seq)

    async def release(self, room: str, seq: int) -> None:
        """Show a held comment again (``message_released``), if it is still held."""
        target = await self.store.get_entry(room, seq)
        if target is not None and target.held:
            await self.store.append(room, self._change("release", seq))
            log.info("message released room=%s seq=%d", room, seq)

    def _change(self, kind: EntryKind, seq: int) -> Draft:
        return Draft(
            kind=kind,
            text="",
            ts=to_ms(self.clock.now()),
            client_msg_id=f"{kind}:{seq}",
            target=seq,
        )

    async def resolve(
        self,
        report: Report,
        action: str,
        statement: dict[str, str] | None,
        reason: str | None,
        restriction: tuple[str, int | None, str] | None = None,
    ) -> tuple[Report, bool]:
        """Apply ``action`` to an open item and mark it resolved; ``(item, changed)``.

        An item resolved already with the same action is a retry: answered as it
        is; with another action, ``conflict``.
        """
        if report.state == "resolved":
            done = (report.resolution or {}).get("action")
            if done != action:
                raise ParleyError(
                    ErrorCode.conflict,
                    f"this report was resolved already ({done})",
                    details={"action": done},
                )
            return report, False
        resolution: dict[str, Any] = {"action": action, "ts": to_ms(self.clock.now())}
        if statement is not None:
            resolution["statement"] = statement
        if action == "dismiss":
            await self.release(report.room, report.seq)
        if action == "remove_message":
            if statement is None:
                raise ParleyError(ErrorCode.bad_request, "remove_message needs a statement")
            grounds = reason or _main_reason(report)
            resolution["reason"] = grounds
            await self.remove_message(report.room, report.seq, grounds, statement)
        if action == "restrict_member":
            if restriction is None:
                raise ParleyError(ErrorCode.bad_request, "restrict_member needs a restriction")
            kind, until, why = restriction
            resolution["restriction"] = {"kind": kind, "until": until, "reason": why}
            await self.restrict(report.author_id, kind, until, why)
        resolved = await self.store.resolve_report(report.id, resolution)
        if resolved is None:
            raise ParleyError(ErrorCode.not_found, "no such report")
        log.info("report resolved id=%s action=%s", report.id, action)
        return resolved, True


def _main_reason(report: Report) -> str:
    """The reason most reporters gave (ties: by name), the grounds of a removal."""
    return min(report.reasons.items(), key=lambda item: (-item[1], item[0]))[0]
