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

A notification that quotes a message (``QUOTING``: a mention, an order message)
follows it (``follow_message``): when the message is deleted, or edited so that it
no longer concerns the member, the notification is withdrawn (a ``delete`` entry in
the inbox blanks its excerpt in the store and on every device); when the text
changes, its excerpt is rewritten (an ``edit`` entry). The push item keeps no
excerpt: it is rendered from the notification as it reads when a gateway takes it
(``current_push``), and a withdrawn one is never handed out. A push already handed
to a gateway cannot be recalled.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote

from parley.server.config import Config
from parley.server.core.clock import Clock, to_ms
from parley.server.core.model import AppendResult, Draft, Entry, Order, UserId
from parley.server.core.moderation import UNSILENCED_KINDS, is_silenced, notice_author
from parley.server.core.notices import excerpt, render_notice
from parley.server.core.rooms import user_room
from parley.server.stoppoints import stop_point
from parley.server.store.base import Store
from parley.server.store.outbox import PushItem, PushOutbox

log = logging.getLogger("parley.notify")

COMPLETE_BATCH: Final = 100  # preparations completed per look; the next look takes the rest


def push_key(user_id: UserId, key: str) -> str:
    """The outbox's key of a notification: its idempotency key is per member."""
    return f"{user_id}\0{key}"


# Notifications that quote a message, by the kind that names their idempotency key:
# "<kind>:<room>:<seq>" of the message.
QUOTING: Final = ("mention", "order_message")


def quoted_to(message: Entry, order: Order | None) -> list[UserId]:
    """Who may hold a notification quoting ``message``: its mentioned members, and in an
    order room the other party."""
    members = [m.user_id for m in message.mentions]
    if order is not None and message.author is not None:
        members += [p for p in (order.buyer_id, order.seller_id) if p != message.author.id]
    return members


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
            payload = await self._quoting_now(item.data)
            appended = await self._append(item.user_id, notice_key, payload, item.ts)
            done += await self.outbox.commit(key, appended.entry.seq)
        if done:
            log.info("notifications completed count=%d", done)
        return done

    async def _quoting_now(self, payload: dict[str, Any]) -> dict[str, Any]:
        """A prepared push keeps no excerpt: a notification completed from it quotes
        its message as the message reads now, and nothing once it is deleted."""
        room, seq = payload.get("room"), payload.get("seq")
        if payload.get("kind") not in QUOTING or not isinstance(room, str):
            return payload
        message = await self.store.get_entry(room, seq) if isinstance(seq, int) else None
        if message is None or message.deleted:
            return payload
        return {**payload, "excerpt": excerpt(message.text)}

    async def _wants_push(self, user_id: UserId) -> bool:
        if self.config.push_when == "always":
            return True
        return not await self.store.presence.present(user_room(user_id), user_id)

    async def _push_item(self, notice: Notice, ts: int) -> PushItem:
        user = await self.store.get_user(notice.user_id)
        locale = "en" if user is None else user.locale
        # Stored without the member's words: current_push reads them when it goes out.
        payload = {k: v for k, v in notice.payload.items() if k != "excerpt"}
        text = render_notice(payload, locale)
        return PushItem(
            user_id=notice.user_id,
            seq=0,  # the notification's, set by the outbox's commit
            kind=notice.payload["kind"],
            title=text.title,
            body=text.body,
            link=self.deep_link(notice.payload),
            locale=locale,
            ts=ts,
            data=payload,
        )

    async def current_push(self, item: PushItem) -> PushItem | None:
        """``item`` rendered from its notification as it reads now; None when withdrawn."""
        entry = await self.store.get_entry(user_room(item.user_id), item.seq)
        if entry is not None and entry.deleted:
            return None
        if entry is None or entry.data is None:
            return item  # the log was lost or reset: the stored item quotes nobody
        text = render_notice(entry.data, item.locale)
        return dataclasses.replace(item, title=text.title, body=text.body, data=entry.data)

    async def follow_message(
        self,
        message: Entry,
        members: Iterable[UserId],
        *,
        text: str | None,
        mentioned: Collection[UserId],
    ) -> None:
        """Make ``members``' notifications quoting ``message`` follow it: withdrawn when
        ``text`` is None (deleted), a mention withdrawn when the member is not in
        ``mentioned``; otherwise quoting ``text``.

        Each step reads the notification as it is now, so running it again (a retry, a
        second hub) changes nothing more; the caller runs it before storing the change
        (a hub that dies in between leaves the notification behind the message, never
        ahead of it) and again when the message changed meanwhile.
        """
        quoted = None if text is None else excerpt(text)
        await asyncio.gather(
            *(
                self._follow(member, kind, message, quoted, member in mentioned)
                for member in dict.fromkeys(members)
                for kind in QUOTING
            )
        )

    async def _follow(
        self, member: UserId, kind: str, message: Entry, quoted: str | None, mentioned: bool
    ) -> None:
        room = user_room(member)
        notification = await self.store.entry_by_key(room, f"{kind}:{message.room}:{message.seq}")
        if notification is None or notification.deleted:
            return
        now = to_ms(self.clock.now())
        payload = notification.data or {}
        if quoted is None or (kind == "mention" and not mentioned):
            draft = Draft(kind="delete", text="", ts=now, target=notification.seq)
            log.debug("notification withdrawn user=%s seq=%d", member, notification.seq)
        elif payload.get("excerpt") != quoted:
            changed = {**payload, "excerpt": quoted}
            draft = Draft(kind="edit", text="", ts=now, target=notification.seq, data=changed)
        else:
            return
        await self.store.append(room, draft)

    def deep_link(self, payload: dict[str, Any]) -> str:
        """Where the app opens: the room, at the message when there is one."""
        base = self.config.app_url.rstrip("/")
        room = payload.get("room")
        if not isinstance(room, str):
            return f"{base}/notifications"
        link = f"{base}/chat/{quote(room, safe=':')}"
        seq = payload.get("seq")
        return f"{link}?seq={seq}" if isinstance(seq, int) else link
