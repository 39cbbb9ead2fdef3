"""Notifications: into a member's inbox, and to push gateways when they are away.

A notification is an entry of the member's own room ``user:<id>`` (kind
``notification``), so it has a gap-free ``seq``, reaches every device of the
member live on any hub, and is resumed with ``since`` like any room. Each one is
idempotent by a key of its own (a retry stores nothing new and pushes nothing).

When the member has no live session on any hub (or ``push_when: always``), the
notification is also handed to the push outbox with a title and body in the
member's language. A hub that dies between the two steps loses that push item,
never the notification itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from parley.server.config import Config
from parley.server.core.clock import Clock, to_ms
from parley.server.core.model import Draft, UserId
from parley.server.core.moderation import UNSILENCED_KINDS, is_silenced, notice_author
from parley.server.core.notices import render_notice
from parley.server.core.rooms import user_room
from parley.server.store.base import Store
from parley.server.store.outbox import PushItem, PushOutbox

log = logging.getLogger("parley.notify")


@dataclass(frozen=True, slots=True)
class Notice:
    """One notification to send: to whom, what, and the key that makes it idempotent."""

    user_id: UserId
    payload: dict[str, Any]
    key: str


class Notifier:
    def __init__(
        self, config: Config, store: Store, clock: Clock, outbox: PushOutbox | None
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.outbox = outbox

    async def send(self, notices: Iterable[Notice]) -> int:
        """Store each notice in its member's inbox (and push it); return how many were new."""
        results = await asyncio.gather(*(self._send_one(n) for n in notices))
        return sum(results)

    async def _send_one(self, notice: Notice) -> bool:
        if await self._silenced(notice):
            # Counted as sent: no count may tell an author they are blocked or muted.
            return True
        room = user_room(notice.user_id)
        draft = Draft(
            kind="notification",
            text="",
            ts=to_ms(self.clock.now()),
            client_msg_id=notice.key,
            data=notice.payload,
        )
        appended = await self.store.append(room, draft)
        if appended.duplicate:
            return False
        entry = appended.entry
        log.debug(
            "notified user=%s kind=%s seq=%d", notice.user_id, notice.payload["kind"], entry.seq
        )
        if self.outbox is not None and await self._wants_push(notice.user_id):
            await self._push(notice, entry.seq, entry.ts)
        return True

    async def _silenced(self, notice: Notice) -> bool:
        """Whether the recipient's blocks or mutes drop this notice (docs/moderation.md)."""
        payload = notice.payload
        if payload.get("kind") in UNSILENCED_KINDS:
            return False
        author = notice_author(payload)
        room = payload.get("room")
        blocked, muted = await self.store.silencing(
            notice.user_id,
            None if author is None else UserId(author),
            room if isinstance(room, str) else None,
        )
        return is_silenced(payload, author_blocked=blocked, room_muted=muted)

    async def _wants_push(self, user_id: UserId) -> bool:
        if self.config.push_when == "always":
            return True
        return not await self.store.presence.present(user_room(user_id), user_id)

    async def _push(self, notice: Notice, seq: int, ts: int) -> None:
        assert self.outbox is not None
        user = await self.store.get_user(notice.user_id)
        locale = "en" if user is None else user.locale
        text = render_notice(notice.payload, locale)
        item = PushItem(
            user_id=notice.user_id,
            seq=seq,
            kind=notice.payload["kind"],
            title=text.title,
            body=text.body,
            link=self.deep_link(notice.payload),
            locale=locale,
            ts=ts,
            data=notice.payload,
        )
        await self.outbox.enqueue([item])

    def deep_link(self, payload: dict[str, Any]) -> str:
        """Where the app opens: the room, at the message when there is one."""
        base = self.config.app_url.rstrip("/")
        room = payload.get("room")
        if not isinstance(room, str):
            return f"{base}/notifications"
        link = f"{base}/chat/{quote(room, safe=':')}"
        seq = payload.get("seq")
        return f"{link}?seq={seq}" if isinstance(seq, int) else link
