"""Retention of rooms on both stores: ended orders' rooms and deleted listings' rooms
erased after the configured days, by the lease holder, a bounded batch per pass.

Time is a ``FakeClock`` the tests move; a pass is run with ``run_once`` (the hub's
own loop waits ``retention_interval``, an hour, between passes).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from parley.client import ParleyClient
from parley.server.core.clock import FakeClock
from parley.server.core.model import Entry
from parley.server.retention import RoomRetention
from tests.server.conftest import RunningHub, start_hub, stop_hub

DAY = 86_400.0
SETTINGS: dict[str, Any] = {
    "retention_order_days": 30,
    "retention_listing_days": 7,
    "member_write_burst": 1_000,
}


@asynccontextmanager
async def hub_on(store_url: str, clock: FakeClock, **settings: Any) -> AsyncIterator[RunningHub]:
    running = await start_hub(store_url, clock=clock, **settings)
    try:
        yield running
    finally:
        await stop_hub(running)


@pytest.fixture
async def hub(store_url: str, clock: FakeClock) -> AsyncIterator[RunningHub]:
    async with hub_on(store_url, clock, **SETTINGS) as running:
        yield running


async def member(hub: RunningHub, user_id: str) -> ParleyClient:
    status, reply = await hub.api("PUT", f"/v1/users/{user_id}", {"name": user_id})
    assert status == 200, reply
    return await hub.client(user_id)


async def status(hub: RunningHub, order_id: str, new: str) -> None:
    code, reply = await hub.api("POST", f"/v1/orders/{order_id}/status", {"status": new})
    assert code == 200, reply


async def room_log(hub: RunningHub, room: str) -> list[Entry]:
    return await hub.app.store.entries_after(room, 0, 10_000)


def worded(log: list[Entry]) -> list[str]:
    return [e.text for e in log if e.kind == "comment" and not e.deleted]


async def order_with_words(hub: RunningHub, order_id: str = "O1") -> tuple[ParleyClient, ...]:
    await hub.listing("L1", seller="sam")
    sam, bea = await member(hub, "sam"), await member(hub, "bea")
    await hub.order(order_id, "L1", buyer="bea", seller="sam")
    room = f"order:{order_id}"
    await bea.post(room, "au 1200 rue Saint-Denis")
    said = await sam.post(room, "@bea expédié avec Postes Canada")
    await sam.edit(room, said["seq"], "@bea expédié, suivi 123")
    return sam, bea


async def test_an_ended_orders_room_is_erased_after_the_days_set(
    hub: RunningHub, clock: FakeClock
) -> None:
    await order_with_words(hub)
    await status(hub, "O1", "delivered")
    before = await room_log(hub, "order:O1")
    clock.advance(30 * DAY - 60)
    assert await hub.app.retention.run_once() == 0
    assert len(worded(await room_log(hub, "order:O1"))) == 2

    clock.advance(120)
    assert await hub.app.retention.run_once() == 2

    log = await room_log(hub, "order:O1")
    assert worded(log) == []
    assert [e.seq for e in log] == list(range(1, len(before) + 3))  # two tombstones, no gap
    assert [e.text for e in log if e.kind == "system"] == [
        e.text for e in before if e.kind == "system"
    ]  # statuses carry no member's words
    assert all(e.text == "" for e in log if e.kind == "edit")
    for inbox in ("user:sam", "user:bea"):  # the notifications' excerpts went too
        for entry in await room_log(hub, inbox):
            assert "Saint-Denis" not in str(entry.data) and "suivi" not in str(entry.data)
    assert await hub.app.retention.run_once() == 0  # done once


async def test_an_order_opened_again_waits_for_its_next_end(
    hub: RunningHub, clock: FakeClock
) -> None:
    await order_with_words(hub)
    await status(hub, "O1", "delivered")
    clock.advance(10 * DAY)
    await status(hub, "O1", "return_requested")
    clock.advance(25 * DAY)  # 35 days after delivery, but the return is open
    assert await hub.app.retention.run_once() == 0
    await status(hub, "O1", "return_accepted")
    clock.advance(29 * DAY)
    assert await hub.app.retention.run_once() == 0
    clock.advance(2 * DAY)
    assert await hub.app.retention.run_once() == 2
    assert worded(await room_log(hub, "order:O1")) == []


async def test_a_deleted_listings_room_is_erased_unless_restored(
    hub: RunningHub, clock: FakeClock
) -> None:
    for listing_id in ("L1", "L2"):
        await hub.listing(listing_id, seller="sam")
    bea = await member(hub, "bea")
    for listing_id in ("L1", "L2"):
        await bea.post(f"listing:{listing_id}", f"Encore disponible ({listing_id}) ?")
    await hub.listing("L1", seller="sam", status="deleted")
    await hub.listing("L2", seller="sam", status="deleted")
    clock.advance(DAY)
    await hub.listing("L2", seller="sam", status="active")
    clock.advance(7 * DAY)
    assert await hub.app.retention.run_once() == 1
    assert worded(await room_log(hub, "listing:L1")) == []
    assert worded(await room_log(hub, "listing:L2")) == ["Encore disponible (L2) ?"]


async def test_each_pass_erases_a_bounded_batch_and_the_next_one_goes_on(
    store_url: str, clock: FakeClock
) -> None:
    async with hub_on(store_url, clock, **{**SETTINGS, "retention_batch": 5}) as hub:
        sam, bea = await order_with_words(hub)
        for i in range(10):
            await (sam if i % 2 else bea).post("order:O1", f"message {i}")
        await status(hub, "O1", "completed")
        clock.advance(31 * DAY)
        passes = []
        while erased := await hub.app.retention.run_once():
            passes.append(erased)
        assert passes == [5, 5, 2]
        assert worded(await room_log(hub, "order:O1")) == []


async def test_only_the_lease_holder_erases(hub: RunningHub, clock: FakeClock) -> None:
    await order_with_words(hub)
    await status(hub, "O1", "cancelled")
    clock.advance(31 * DAY)
    # This hub took the lease when it started; another hub on the store waits.
    other = RoomRetention(hub.config, hub.app.store, clock, holder="another-hub")
    assert await other.run_once() == 0
    assert len(worded(await room_log(hub, "order:O1"))) == 2
    assert await hub.app.retention.run_once() == 2
    await hub.app.retention.stop()  # gives the lease up
    assert await hub.app.store.try_lease("retention", "another-hub", 60_000)


async def test_retention_is_off_by_default(store_url: str, clock: FakeClock) -> None:
    async with hub_on(store_url, clock) as hub:
        await order_with_words(hub)
        await status(hub, "O1", "completed")
        clock.advance(3650 * DAY)
        assert await hub.app.retention.run_once() == 0
        assert len(worded(await room_log(hub, "order:O1"))) == 2
        assert await room_log(hub, "retention:orders") == []
