"""Notifications: into a member's inbox, and to push gateways when they are away.

A notification is an entry of the member's own room ``user:<id>`` (kind
``notification``), so it has a gap-free ``seq``, reaches every device of the
member live on any hub, and is resumed with ``since`` like any room. Each one is
idempotent by a key of its own (a retry stores nothing new and pushes nothing).

When the member has no live session on any hub (or ``push_when: always``), the
notification is also handed to the push outbox with a title and body in the
member's language. The two are one change in two places: the push item is
prepared in the outbox first, the notification appended, then the item
committed with the notification's ``seq`` (``PushOutbox.prepare``/``commit``).
A hub that dies between the steps leaves a preparation that ``complete``
finishes on any hub: both are stored, each once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote

from parley.server.config import Config
from parley.server.core.clock import Clock, to_ms
from parley.server.core.model import AppendResult, Draft, UserId
from parley.server.core.notices import render_notice
from parley.server.core.rooms import user_room
from parley.server.stoppoints import stop_point
from parley.server.store.base import Store
from parley.server.store.outbox import PushItem, PushOutbox

log = logging.getLogger("parley.notify")

COMPLETE_BATCH: Final = 100  # preparations completed per look; the next look takes the rest


def push_key(user_id: UserId, key: str) -> str:
    """The outbox's key of a notification: its idempotency key is per member."""
    return f"{user_id}\0{key}"


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
        ts = to_ms(self.clock.now())
        pushing = False
        if self.outbox is not None and await self._wants_push(notice.user_id):
            item = await self._push_item(notice, ts)
            pushing = await self.outbox.prepare(push_key(notice.user_id, notice.key), item)
            stop_point("notify.prepared")
        appended = await self._append(notice.user_id, notice.key, notice.payload, ts)
        entry = appended.entry
        if pushing:
            stop_point("notify.appended")
            assert self.outbox is not None
            await self.outbox.commit(push_key(notice.user_id, notice.key), entry.seq)
        if appended.duplicate:
            return False
        log.debug(
            "notified user=%s kind=%s seq=%d", notice.user_id, notice.payload["kind"], entry.seq
        )
        return True

    async def _append(
        self, user_id: UserId, key: str, payload: dict[str, Any], ts: int
    ) -> AppendResult:
        draft = Draft(kind="notification", text="", ts=ts, client_msg_id=key, data=payload)
        return await self.store.append(user_room(user_id), draft)

    async def complete(self, before_ms: int) -> int:
        """Finish the notifications whose push was prepared before ``before_ms`` by a
        hub that stopped before committing it; return how many were finished."""
        if self.outbox is None:
            return 0
        done = 0
        for key, item in await self.outbox.prepared(before_ms, COMPLETE_BATCH):
            notice_key = key.partition("\0")[2]
            appended = await self._append(item.user_id, notice_key, item.data, item.ts)
            done += await self.outbox.commit(key, appended.entry.seq)
        if done:
            log.info("notifications completed count=%d", done)
        return done

    async def _wants_push(self, user_id: UserId) -> bool:
        if self.config.push_when == "always":
            return True
        return not await self.store.presence.present(user_room(user_id), user_id)

    async def _push_item(self, notice: Notice, ts: int) -> PushItem:
        user = await self.store.get_user(notice.user_id)
        locale = "en" if user is None else user.locale
        text = render_notice(notice.payload, locale)
        return PushItem(
            user_id=notice.user_id,
            seq=0,  # the notification's, set by the outbox's commit
            kind=notice.payload["kind"],
            title=text.title,
            body=text.body,
            link=self.deep_link(notice.payload),
            locale=locale,
            ts=ts,
            data=notice.payload,
        )

    def deep_link(self, payload: dict[str, Any]) -> str:
        """Where the app opens: the room, at the message when there is one."""
        base = self.config.app_url.rstrip("/")
        room = payload.get("room")
        if not isinstance(room, str):
            return f"{base}/notifications"
        link = f"{base}/chat/{quote(room, safe=':')}"
        seq = payload.get("seq")
        return f"{link}?seq={seq}" if isinstance(seq, int) else link
