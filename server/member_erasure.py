"""A member's erasure, driven to the end: the steps of ``server.core.erasure`` on the
store, each one idempotent, so that running it again (after a crash, or on two
hubs at once) finishes it and changes nothing already done.

The state is the store's (``Store.erasure``): ``erasing`` from the first step,
``erased`` after the last. Each step touches one room, one member record or
one index at a time, so on a Redis Cluster each is one slot. ``MemberErasures``
runs at most one erasure per member in this hub, in the background, and says
how far it got.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Iterable
from typing import Final

from parley.server.core.clock import Clock, to_ms
from parley.server.core.erasure import (
    ERASED_NAME,
    erase_draft,
    mentioned,
    notice_keys,
    words_ever,
    words_to_erase,
)
from parley.server.core.model import Draft, Entry, OrderId, UserId
from parley.server.core.rooms import order_room, user_room
from parley.server.member_export import ROLES, orders_of
from parley.server.store.base import Store
from parley.server.store.outbox import PushOutbox

log = logging.getLogger("parley.erasure")

PAGE: Final = 200  # entries erased per step: their deletes share a commit or a pipeline


class MemberErasures:
    """The erasures running in this hub, one task per member."""

    def __init__(self, store: Store, clock: Clock, outbox: PushOutbox | None = None) -> None:
        self.store = store
        self.clock = clock
        self.outbox = outbox
        self.done: dict[UserId, int] = {}  # entries handled so far, per running erasure
        self._tasks: dict[UserId, asyncio.Task[None]] = {}

    def start(self, user_id: UserId) -> asyncio.Task[None]:
        """The member's erasure in this hub, started unless it runs already."""
        task = self._tasks.get(user_id)
        if task is None or task.done():
            task = asyncio.ensure_future(self._run(user_id))
            self._tasks[user_id] = task
            task.add_done_callback(lambda _: self._forget(user_id, task))
        return task

    def _forget(self, user_id: UserId, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            # Left erasing: the next DELETE of the member runs it again.
            log.warning("erasure user=%s stopped: %s", user_id, task.exception())
        if self._tasks.get(user_id) is task:
            del self._tasks[user_id]
            self.done.pop(user_id, None)

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _now(self) -> int:
        return to_ms(self.clock.now())

    async def _run(self, user_id: UserId) -> None:
        store = self.store
        log.info("erasure user=%s started", user_id)
        await store.set_erasure(user_id, "erasing", self._now())
        await store.erase_profile(user_id, ERASED_NAME)
        self.done[user_id] = 0
        after: tuple[str, int] | None = None
        while True:
            page = await store.member_entries(user_id, after, PAGE)
            await self._erase_page(user_id, page)
            self.done[user_id] += len(page)
            if len(page) < PAGE:
                break
            after = (page[-1].room, page[-1].seq)
        for role in ROLES:
            async for order in orders_of(store, user_id, role):
                await store.drop_read_marks(user_id, [order_room(order.id)])
        async for likes in store.member_likes(user_id):
            for listing_id, _ in likes:
                await store.delete_like(listing_id, user_id)
        while await store.forget_reporter(user_id, PAGE):
            pass
        await store.drop_member_lists(user_id)
        if self.outbox is not None:
            await self.outbox.drop_member(user_id)
        await store.drop_room_entries(user_room(user_id))
        await store.forget_freed()
        await store.set_erasure(user_id, "erased", self._now())
        log.info("erasure user=%s done entries=%d", user_id, self.done[user_id])

    async def _erase_page(self, user_id: UserId, page: list[Entry]) -> None:
        by_room: dict[str, list[Entry]] = defaultdict(list)
        for entry in page:
            by_room[entry.room].append(entry)
        for room, entries in by_room.items():
            await erase_words(self.store, room, entries, self._now())
            await self.store.rename_author(room, user_id, [e.seq for e in entries], ERASED_NAME)
        # Read receipts are among the member's entries: where they read, a mark may be.
        await self.store.drop_read_marks(user_id, list(by_room))


async def withdraw_notifications(
    store: Store, inbox: str, keys: Iterable[str], now_ms: int
) -> None:
    """Withdraw the notifications stored under ``keys`` in ``inbox``, as a member's
    delete withdraws those quoting the message (R2): a ``delete`` entry erases a
    notification's excerpt and the rewrites of it, in the store's bytes, and tells
    every device. One already withdrawn is left alone."""
    for key in keys:
        notification = await store.entry_by_key(inbox, key)
        if notification is not None and not notification.deleted:
            draft = Draft(kind="delete", text="", ts=now_ms, target=notification.seq)
            await store.append(inbox, draft)


async def erase_words(store: Store, room: str, entries: list[Entry], now_ms: int) -> int:
    """Erase the words of the messages among ``entries`` (all of ``room``) that still
    have theirs; return how many. First the copies in the notifications they caused
    (read from ``entries`` before a delete blanks the edits' mentions), then the
    messages, each with a ``delete`` of its own key: stored once, however often this
    runs."""
    recipients = mentioned(entries)
    kind, _, order_id = room.partition(":")
    order = await store.get_order(OrderId(order_id)) if kind == "order" else None
    authors = {e.seq: e.author.id for e in entries if e.author is not None}
    if order is not None:
        for seq in words_ever(entries):
            author = authors.get(seq)
            other = order.seller_id if author == order.buyer_id else order.buyer_id
            recipients.setdefault(seq, set()).add(other)
    for seq, members in recipients.items():
        for member in members - {authors.get(seq)}:
            await withdraw_notifications(store, user_room(member), notice_keys(room, seq), now_ms)
    seqs = words_to_erase(entries)
    await asyncio.gather(*(store.append(room, erase_draft(seq, now_ms)) for seq in seqs))
    return len(seqs)
