"""Retention of rooms, run: ended orders' rooms and deleted listings' rooms erased
after the configured number of days (the rules: ``server.core.retention``).

The internal API records each end or deletion (``order_status_changed``,
``listing_changed``) as an event of a log room, only while the setting is on.
One hub among all, the holder of the lease ``retention``, looks every
``retention_interval`` seconds at the events now due, oldest first, and erases
their rooms, at most ``retention_batch`` messages per pass: a room with more is
finished by the next passes. Progress is the log's read mark, moved once a
room is done; a hub that dies in the middle leaves the mark where it was, and
the next holder erases the rest (each message's erasure is stored once,
whoever runs it). Time is the injected clock's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from typing import Final

from parley.protocol.errors import ParleyError
from parley.server.config import Config
from parley.server.core.clock import Clock, to_ms
from parley.server.core.model import Draft, Entry, Listing, ListingId, Order, OrderId
from parley.server.core.retention import (
    LISTINGS_LOG,
    ORDERS_LOG,
    due,
    listing_event,
    order_ended,
    order_event,
    order_still_ended,
)
from parley.server.core.rooms import listing_room, order_room
from parley.server.member_erasure import erase_words
from parley.server.store.base import Store

log = logging.getLogger("parley.retention")

LEASE_NAME: Final = "retention"
LEASE_MS: Final = 30_000
READ_BATCH: Final = 100  # log events or room entries read at once


class RoomRetention:
    def __init__(self, config: Config, store: Store, clock: Clock, holder: str = "") -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._task: asyncio.Task[None] | None = None

    @property
    def on(self) -> bool:
        return self.config.retention_order_days > 0 or self.config.retention_listing_days > 0

    def _now(self) -> int:
        return to_ms(self.clock.now())

    # Recording (the internal API).

    async def order_status_changed(self, order: Order, before: str) -> None:
        if self.config.retention_order_days > 0 and order_ended(before, order.status):
            await self._record(ORDERS_LOG, order_event(order.id, order.status))

    async def listing_changed(self, listing: Listing, was_deleted: bool) -> None:
        deleted_now = listing.status == "deleted" and not was_deleted
        if self.config.retention_listing_days > 0 and deleted_now:
            await self._record(LISTINGS_LOG, listing_event(listing.id))

    async def _record(self, log_room: str, data: dict[str, str]) -> None:
        await self.store.append(log_room, Draft("event", "", self._now(), data=data))

    # Erasing (the lease holder).

    def start(self) -> None:
        if self.on:
            self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            with contextlib.suppress(ParleyError):  # else the lease simply runs out
                await self.store.release_lease(LEASE_NAME, self.holder)

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except ParleyError as exc:
                log.warning("retention pass failed: %s", exc.message)
            await asyncio.sleep(self.config.retention_interval)

    async def run_once(self) -> int:
        """One pass, if this hub holds the lease: the messages it erased."""
        if not await self.store.try_lease(LEASE_NAME, self.holder, LEASE_MS):
            return 0
        budget = self.config.retention_batch
        for log_room, days in (
            (ORDERS_LOG, self.config.retention_order_days),
            (LISTINGS_LOG, self.config.retention_listing_days),
        ):
            if days > 0 and budget > 0:
                budget -= await self._pass(log_room, days, budget)
        erased = self.config.retention_batch - budget
        if erased:
            log.info("retention pass erased=%d", erased)
        return erased

    async def _pass(self, log_room: str, days: float, budget: int) -> int:
        """Erase the rooms of ``log_room``'s due events, within ``budget`` messages."""
        now = self._now()
        cursor = (await self.store.read_state(log_room)).up_to
        spent = 0
        while True:
            entries = await self.store.entries_after(log_room, cursor, READ_BATCH)
            if not entries:
                return spent
            for entry in entries:
                if entry.kind == "event":
                    if not due(entry.ts, days, now):
                        return spent
                    done, used = await self._erase(entry, budget - spent, now)
                    spent += used
                    if not done:
                        return spent
                    await self.store.append(log_room, Draft("read", "", now, target=entry.seq))
                cursor = entry.seq

    async def _erase(self, event: Entry, budget: int, now: int) -> tuple[bool, int]:
        """Erase the event's room if it still applies; (finished, messages erased)."""
        data = event.data or {}
        if "order_id" in data:
            order = await self.store.get_order(OrderId(str(data["order_id"])))
            if not order_still_ended(data, None if order is None else order.status):
                return True, 0
            room = order_room(str(data["order_id"]))
        else:
            listing = await self.store.get_listing(ListingId(str(data.get("listing_id"))))
            if listing is None or listing.status != "deleted":
                return True, 0
            room = listing_room(listing.id)
        return await _erase_room(self.store, room, budget, now)


async def _erase_room(store: Store, room: str, budget: int, now: int) -> tuple[bool, int]:
    """Erase ``room``'s messages from its start, within ``budget``: the ones already
    erased are skipped, so a pass cut short is resumed by reading it again."""
    after = spent = 0
    while spent < budget:
        limit = min(READ_BATCH, budget - spent)  # entries read bound the messages erased
        entries = await store.entries_after(room, after, limit)
        spent += await erase_words(store, room, entries, now)
        if len(entries) < limit:
            return True, spent
        after = entries[-1].seq
    return False, spent
