"""Read receipts and "My orders" over real sockets, on both stores (R9, R10): the
list per role with its item, counterpart, last message and unread count; a read
told live to the counterpart and to the reader's other devices; unread counts
exact after a restart; order rooms closed to strangers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from parley.client import ParleyClient, ParleyError
from parley.server.core.clock import FakeClock
from tests.server.conftest import RunningHub, notification_kinds, start_hub, stop_hub

ROOM = "order:O1"
PHOTO = "https://img.example/L1.jpg"


@pytest.fixture
async def hub(store_url: str, clock: FakeClock) -> AsyncIterator[RunningHub]:
    """The hub on each store, on a clock that moves only when a test says so:
    orders reported one after the other may share their ``created_ts``."""
    running = await start_hub(store_url, clock=clock)
    try:
        yield running
    finally:
        await stop_hub(running)


async def register(hub: RunningHub, *members: tuple[str, str]) -> None:
    for user_id, name in members:
        status, reply = await hub.api("PUT", f"/v1/users/{user_id}", {"name": name})
        assert status == 200, reply


async def sam_sells_to_bea(hub: RunningHub) -> None:
    """Order O1: Bea buys Sam's wool coat; its room opens with a system message (seq 1)."""
    await register(hub, ("s1", "sam"), ("b1", "bea"))
    await hub.listing("L1", seller="s1", title="Wool coat", photo_url=PHOTO)
    await hub.order("O1", "L1", buyer="b1", seller="s1")


async def conversations(client: ParleyClient, role: str, **page: Any) -> dict[str, Any]:
    return await client.request("conversations", role=role, **page)


async def read(client: ParleyClient, seq: int, room: str = ROOM) -> dict[str, Any]:
    return await client.request("read", room=room, seq=seq)


async def next_of(client: ParleyClient, kind: str) -> dict[str, Any]:
    """The room's next event of ``kind``, past the others."""
    while True:
        event = await client.next_event(room=ROOM)
        if event["event"] == kind:
            return event


async def test_r10_my_orders_lists_sales_and_purchases_with_item_counterpart_and_unread(
    hub: RunningHub, clock: FakeClock
) -> None:
    await sam_sells_to_bea(hub)
    await register(hub, ("b2", "bob"))
    await hub.listing("L2", seller="s1", title="Brass lamp")
    clock.advance(60)
    await hub.order("O2", "L2", buyer="b2", seller="s1")
    bea = await hub.client("b1", "bea")
    sam = await hub.client("s1", "sam")
    await bea.subscribe(ROOM)
    await bea.post(ROOM, "Bonjour ! Pouvez-vous l'envoyer lundi ?")  # seq 2; Sam is away
    assert (await notification_kinds(sam))[-1] == "order_message"

    sales = await conversations(sam, "sales")
    assert sales["more"] is False
    newest, coat = sales["conversations"]
    assert newest["order_id"] == "O2" and newest["counterpart"] == {"id": "b2", "name": "bob"}
    assert newest["listing"] == {"id": "L2", "title": "Brass lamp", "photo_url": None}
    assert newest["last_message"]["kind"] == "system" and newest["unread"] == 1
    assert coat == {
        "order_id": "O1",
        "room": ROOM,
        "status": "created",
        "created_at": newest["created_at"] - 60_000,
        "listing": {"id": "L1", "title": "Wool coat", "photo_url": PHOTO},
        "counterpart": {"id": "b1", "name": "bea"},
        "last_message": {
            "seq": 2,
            "ts": coat["last_message"]["ts"],
            "kind": "comment",
            "author": {"id": "b1", "name": "bea"},
            "excerpt": "Bonjour ! Pouvez-vous l'envoyer lundi ?",
        },
        "unread": 2,  # the order's system message and Bea's question
        "read_up_to": 0,
    }
    assert (await conversations(sam, "purchases")) == {"conversations": [], "more": False}

    [purchase] = (await conversations(bea, "purchases"))["conversations"]
    assert purchase["order_id"] == "O1" and purchase["counterpart"] == {"id": "s1", "name": "sam"}
    assert purchase["unread"] == 1  # her own question is not unread; the system message is
    assert await read(bea, 2) == {"room": ROOM, "up_to": 2, "unread": 0}
    [purchase] = (await conversations(bea, "purchases"))["conversations"]
    assert (purchase["unread"], purchase["read_up_to"]) == (0, 2)
    assert (await conversations(bea, "sales"))["conversations"] == []


async def test_r10_my_orders_pages_newest_first_keeping_a_millisecond_together(
    hub: RunningHub, clock: FakeClock
) -> None:
    await register(hub, ("s1", "sam"), ("b1", "bea"))
    for i, step in ((1, 0.0), (2, 1.0), (3, 0.0), (4, 1.0)):  # O2 and O3 share a ms
        clock.advance(step)
        await hub.listing(f"L{i}", seller="s1")
        await hub.order(f"O{i}", f"L{i}", buyer="b1", seller="s1")
    bea = await hub.client("b1", "bea")

    async def page(**cursor: Any) -> tuple[list[str], bool, int]:
        reply = await conversations(bea, "purchases", limit=2, **cursor)
        items = reply["conversations"]
        return [c["order_id"] for c in items], reply["more"], items[-1]["created_at"]

    first, more, cursor = await page()
    assert (first, more) == (["O4"], True)  # O3 without O2 would lose O2 to the cursor
    second, more, cursor = await page(before=cursor)
    assert (second, more) == (["O3", "O2"], True)
    third, more, _ = await page(before=cursor)
    assert (third, more) == (["O1"], False)


async def test_r10_a_read_on_one_device_reaches_the_other_and_the_counterpart(
    hub: RunningHub,
) -> None:
    await sam_sells_to_bea(hub)
    sam = await hub.client("s1", "sam")
    phone = await hub.client("b1", "bea")
    laptop = await hub.client("b1", "bea")
    await sam.subscribe(ROOM)
    await sam.post(ROOM, "Merci ! Je l'envoie lundi.")  # seq 2
    await sam.post(ROOM, "Le numéro de suivi suivra.")  # seq 3
    for device in (phone, laptop):
        joined = await device.subscribe(ROOM)
        assert (joined["read"], joined["unread"]) == ({"b1": 0, "s1": 0}, 3)

    assert await read(phone, 3) == {"room": ROOM, "up_to": 3, "unread": 0}
    for watcher in (laptop, sam, phone):
        event = await next_of(watcher, "read")
        assert event == {
            "event": "read",
            "room": ROOM,
            "seq": 4,
            "ts": event["ts"],
            "user_id": "b1",
            "up_to": 3,
        }
    [purchase] = (await conversations(laptop, "purchases"))["conversations"]
    assert (purchase["unread"], purchase["read_up_to"]) == (0, 3)
    again = await laptop.subscribe(ROOM)
    assert (again["read"], again["unread"]) == ({"b1": 3, "s1": 0}, 0)
    assert (await sam.subscribe(ROOM))["read"] == {"b1": 3, "s1": 0}

    # Reading what is read already, or past the last message (over the receipt),
    # moves nothing and tells nobody: Sam's next event is his own message.
    assert await read(laptop, 2) == {"room": ROOM, "up_to": 3, "unread": 0}
    assert await read(laptop, 4) == {"room": ROOM, "up_to": 3, "unread": 0}
    await sam.post(ROOM, "C'est parti.")  # seq 5
    assert (await sam.next_event(room=ROOM))["seq"] == 5
    assert (await next_of(laptop, "message"))["seq"] == 5
    [purchase] = (await conversations(phone, "purchases"))["conversations"]
    assert purchase["unread"] == 1

    # Sam reads in turn: Bea's devices learn that he has seen up to the last message.
    assert await read(sam, 99) == {"room": ROOM, "up_to": 5, "unread": 0}
    for device in (phone, laptop):
        event = await next_of(device, "read")
        assert (event["user_id"], event["up_to"], event["seq"]) == ("s1", 5, 6)


async def test_r10_unread_counts_are_exact_after_a_restart(
    store_url: str, clock: FakeClock
) -> None:
    first = await start_hub(store_url, clock=clock)
    try:
        await sam_sells_to_bea(first)
        sam = await first.client("s1", "sam")
        bea = await first.client("b1", "bea")
        for text in ("Bonjour.", "Expédié lundi.", "Suivi : bientôt."):  # seq 2, 3, 4
            await sam.post(ROOM, text)
        assert await read(bea, 2) == {"room": ROOM, "up_to": 2, "unread": 2}
    finally:
        await stop_hub(first)

    second = await start_hub(store_url, clock=clock)
    try:
        bea = await second.client("b1", "bea")
        [purchase] = (await conversations(bea, "purchases"))["conversations"]
        assert (purchase["unread"], purchase["read_up_to"]) == (2, 2)
        assert purchase["last_message"]["excerpt"] == "Suivi : bientôt."
        joined = await bea.subscribe(ROOM)
        assert (joined["read"], joined["unread"]) == ({"b1": 2, "s1": 0}, 2)
        sam = await second.client("s1", "sam")
        [sale] = (await conversations(sam, "sales"))["conversations"]
        assert sale["unread"] == 1  # the order's system message; his own are not unread
        assert await read(bea, 2) == {"room": ROOM, "up_to": 2, "unread": 2}  # never back
    finally:
        await stop_hub(second)


async def test_r9_a_stranger_cannot_read_an_order_room(hub: RunningHub) -> None:
    await sam_sells_to_bea(hub)
    await register(hub, ("o1", "olga"))
    olga = await hub.client("o1", "olga")
    with pytest.raises(ParleyError) as refused:
        await read(olga, 1)
    assert refused.value.code == "forbidden"
    with pytest.raises(ParleyError) as refused:
        await read(olga, 1, room="order:NOPE")
    assert refused.value.code == "order_required"
    assert (await conversations(olga, "purchases"))["conversations"] == []
    bea = await hub.client("b1", "bea")
    assert (await conversations(bea, "purchases"))["conversations"][0]["read_up_to"] == 0


async def test_r10_read_takes_an_order_room_only(hub: RunningHub) -> None:
    await sam_sells_to_bea(hub)
    bea = await hub.client("b1", "bea")
    for fields in (
        {"room": "listing:L1", "seq": 1},
        {"room": "user:b1", "seq": 1},
        {"room": ROOM, "seq": -1},
    ):
        with pytest.raises(ParleyError) as refused:
            await bea.request("read", **fields)
        assert refused.value.code == "bad_request"
    for fields in ({"role": "orders"}, {"role": "sales", "limit": 51}):
        with pytest.raises(ParleyError) as refused:
            await bea.request("conversations", **fields)
        assert refused.value.code == "bad_request"
