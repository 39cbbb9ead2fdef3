"""Typing and presence over real sockets, on both stores and across two hubs.

Ephemeral events are never stored: no test here finds them in a log. To show
that an event does not come, a test waits for a later one that must come after
it, and looks at what arrived in between.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from websockets.asyncio.client import connect

from parley.client import ParleyClient, ParleyError
from parley.server.core.clock import FakeClock
from parley.server.hub import TYPING_LAG_FRACTION
from parley.server.store.redis_presence import RedisPresence
from tests.server.conftest import RunningHub, start_hub, stop_hub
from tests.support.redis_server import RedisServer

ORDER = "order:O1"
LISTING = "listing:L1"
RATE: dict[str, Any] = {"typing_rate": 1.0, "typing_burst": 3}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(time.time())  # now, so that tokens minted now are valid; moved by hand


@pytest.fixture
async def hub(store_url: str, clock: FakeClock) -> AsyncIterator[RunningHub]:
    running = await start_hub(store_url, clock=clock, **RATE)
    try:
        yield running
    finally:
        await stop_hub(running)


async def an_order(hub: RunningHub) -> None:
    await hub.listing("L1", seller="s1")
    await hub.order("O1", "L1", buyer="b1", seller="s1")


async def until(
    client: ParleyClient, room: str, last: Callable[[dict[str, Any]], bool]
) -> list[dict[str, Any]]:
    """The room's events up to and including the first that ``last`` accepts."""
    events = [await client.next_event(room=room)]
    while not last(events[-1]):
        events.append(await client.next_event(room=room))
    return events


def message(text: str) -> Callable[[dict[str, Any]], bool]:
    return lambda e: e["event"] == "message" and e.get("text") == text


def typing_from(user_id: str) -> dict[str, Any]:
    names = {"b1": "bea", "s1": "sam"}
    return {"event": "typing", "room": ORDER, "user_id": user_id, "name": names[user_id]}


def presence(user_id: str, online: bool) -> dict[str, Any]:
    return {"event": "presence", "room": ORDER, "user_id": user_id, "online": online}


async def test_typing_reaches_the_other_party_and_not_the_senders_other_device(
    hub: RunningHub,
) -> None:
    await an_order(hub)
    buyer = await hub.client("b1", "bea")
    buyer_phone = await hub.client("b1", "bea")
    seller = await hub.client("s1", "sam")
    for client in (buyer, buyer_phone):
        await client.subscribe(ORDER)
    await seller.subscribe(ORDER)
    before = await hub.app.store.head(ORDER)

    assert await buyer.request("typing", room=ORDER) == {"room": ORDER, "sent": True}
    assert await seller.next_event(room=ORDER) == typing_from("b1")

    await seller.post(ORDER, "Still there?")
    for device in (buyer, buyer_phone):
        events = await until(device, ORDER, message("Still there?"))
        assert events[:-1] == [presence("s1", True)]  # and no typing of their own

    # Never stored: the log, its head and the history hold the one message only.
    after = await hub.app.store.head(ORDER)
    assert after.seq == before.seq + 1
    logged = await hub.app.store.entries_after(ORDER, before.seq, 100)
    assert [e.kind for e in logged] == ["comment"]
    history = (await seller.history(ORDER))["messages"]
    assert [m["text"] for m in history if m["kind"] == "comment"] == ["Still there?"]


async def test_a_party_types_without_watching_and_a_stranger_cannot(hub: RunningHub) -> None:
    await an_order(hub)
    buyer = await hub.client("b1", "bea")
    seller = await hub.client("s1", "sam")
    stranger = await hub.client("x1", "xavier")
    await seller.subscribe(ORDER)

    assert await buyer.typing(ORDER) is True  # a party need not watch the room
    assert await seller.next_event(room=ORDER) == typing_from("b1")

    for room, code in [
        (ORDER, "forbidden"),
        ("order:O404", "order_required"),
        (LISTING, "bad_request"),  # typing is for order rooms only
    ]:
        with pytest.raises(ParleyError) as err:
            await stranger.typing(room)
        assert err.value.code == code
    await buyer.post(ORDER, "after the stranger")
    events = await until(seller, ORDER, message("after the stranger"))
    assert len(events) == 1  # nothing from the stranger reached the room


async def test_typing_is_rate_limited_per_connection_on_the_clock(
    hub: RunningHub, clock: FakeClock
) -> None:
    await an_order(hub)
    buyer = await hub.client("b1", "bea")
    buyer_phone = await hub.client("b1", "bea")
    seller = await hub.client("s1", "sam")
    await seller.subscribe(ORDER)

    assert [await buyer.typing(ORDER) for _ in range(4)] == [True, True, True, False]
    assert await buyer_phone.typing(ORDER) is True  # another connection, its own allowance
    assert await buyer.typing(ORDER) is False
    clock.advance(1.0)  # typing_rate: one more per second
    assert [await buyer.typing(ORDER) for _ in range(2)] == [True, False]

    await buyer.post(ORDER, "done typing")
    events = await until(seller, ORDER, message("done typing"))
    assert events[:-1] == [typing_from("b1")] * 5  # the skipped ones were never sent


async def test_presence_says_when_a_party_comes_and_when_their_last_device_goes(
    hub: RunningHub,
) -> None:
    await an_order(hub)
    buyer = await hub.client("b1", "bea")
    assert (await buyer.subscribe(ORDER))["online"] == {"s1": False}

    seller = await hub.client("s1", "sam")
    assert (await seller.subscribe(ORDER))["online"] == {"b1": True}
    assert await buyer.next_event(room=ORDER) == presence("s1", True)

    seller_phone = await hub.client("s1", "sam")
    assert (await seller_phone.subscribe(ORDER))["online"] == {"b1": True}
    await seller.unsubscribe(ORDER)  # the phone still watches: not gone
    await seller_phone.close()  # the last device: gone
    assert await buyer.next_event(room=ORDER) == presence("s1", False)

    again = await hub.client("s1", "sam")
    await again.subscribe(ORDER)
    # Nothing came between: the phone's arrival and the first device's leaving
    # said nothing, since the seller was here all along.
    assert await buyer.next_event(room=ORDER) == presence("s1", True)
    assert (await buyer.subscribe(ORDER))["online"] == {"s1": True}  # asked again

    await buyer.post(ORDER, "hello")
    # A member never hears of their own comings and goings.
    assert len(await until(again, ORDER, message("hello"))) == 1


async def test_a_listing_room_says_how_many_watch_and_never_who(
    hub: RunningHub, request: pytest.FixtureRequest
) -> None:
    await hub.listing("L1", seller="s1")
    ann, bob, bob_phone, cy = [await hub.client(user) for user in ("u1", "u2", "u2", "u3")]
    assert (await ann.subscribe(LISTING))["watchers"] == 1
    assert (await bob.subscribe(LISTING))["watchers"] == 2
    assert (await bob_phone.subscribe(LISTING))["watchers"] == 2  # members, not devices
    await ann.unsubscribe(LISTING)
    third = await cy.subscribe(LISTING)
    assert third["watchers"] == 2
    assert "online" not in third

    await cy.post(LISTING, "is it wool?")
    for watcher in (bob, bob_phone, cy):
        # No presence and no typing in a public room: the comment comes first.
        [event] = await until(watcher, LISTING, message("is it wool?"))
        assert event["author"]["id"] == "u3"

    shared = hub.app.store.presence
    if isinstance(shared, RedisPresence):
        await shared.wait_written()  # a count is written behind the subscribe
        redis_server: RedisServer = request.getfixturevalue("redis_server")
        with redis_server.client() as client:
            # What other hubs see: one count per hub, and no member id.
            assert client.exists(f"parley:{{{LISTING}}}:present") == 0
            watching = client.hgetall(f"parley:{{{LISTING}}}:watching")
            assert watching == {shared.hub_id.encode(): b"2"}


async def test_a_lagging_client_goes_without_typing_and_is_not_closed(sqlite_url: str) -> None:
    hub = await start_hub(
        sqlite_url, send_buffer_bytes=64 * 1024, write_burst=10_000, member_write_burst=10_000
    )
    try:
        await an_order(hub)
        seller = await hub.client("s1", "sam")
        await seller.subscribe(ORDER)
        buyer = await hub.client("b1", "bea")
        await buyer.subscribe(ORDER)
        known = set(hub.app.hub.conns)
        # The buyer's second device stops reading: TCP fills up behind it.
        slow = await connect(hub.ws_url, subprotocols=["parley.v1.json"], max_queue=1)  # type: ignore[list-item]
        await slow.send(f'{{"id":1,"op":"connect","token":"{hub.token("b1", "bea")}"}}')
        await slow.recv()
        await slow.send(f'{{"id":2,"op":"subscribe","room":"{ORDER}"}}')
        await slow.recv()
        [slow_conn] = hub.app.hub.conns - known
        lagging = 2 * hub.config.send_buffer_bytes // TYPING_LAG_FRACTION
        text = "x" * 3900
        for i in range(2000):  # bounded: it lags long before the end
            await seller.post(ORDER, f"{i} {text}")
            if slow_conn.transport.get_write_buffer_size() > lagging:
                break
        assert slow_conn.transport.get_write_buffer_size() > lagging
        assert slow_conn.transport.get_write_buffer_size() < hub.config.send_buffer_bytes // 2

        assert await seller.typing(ORDER) is True
        await seller.post(ORDER, "after typing")
        # The device that reads gets the typing, in order.
        events = await until(buyer, ORDER, message("after typing"))
        assert events[-2] == typing_from("s1")
        # The lagging one was skipped, not closed: it reads its backlog, no typing.
        assert not slow_conn.closing
        seen: list[str] = []
        for _ in range(5000):  # bounded
            event = json.loads(await slow.recv())
            seen.append(event.get("event", "reply"))
            if event.get("text") == "after typing":
                break
        assert seen[-1] == "message"
        assert "typing" not in seen
        await slow.close()
    finally:
        await stop_hub(hub)


async def test_typing_and_presence_cross_two_hubs_on_one_redis(redis_server: RedisServer) -> None:
    redis_server.start()
    await redis_server.flushall()
    a = await start_hub(redis_server.url, **RATE)
    b = await start_hub(redis_server.url, **RATE)
    try:
        await an_order(a)
        buyer = await a.client("b1", "bea")
        assert (await buyer.subscribe(ORDER))["online"] == {"s1": False}
        seller = await b.client("s1", "sam")
        assert (await seller.subscribe(ORDER))["online"] == {"b1": True}
        assert await buyer.next_event(room=ORDER) == presence("s1", True)

        # The seller's phone, on the buyer's hub: a first connection there.
        seller_phone = await a.client("s1", "sam")
        await seller_phone.subscribe(ORDER)
        assert await buyer.next_event(room=ORDER) == presence("s1", True)

        assert await seller.typing(ORDER) is True
        assert await buyer.next_event(room=ORDER) == typing_from("s1")
        assert await buyer.typing(ORDER) is True
        assert await seller.next_event(room=ORDER) == typing_from("b1")
        await buyer.post(ORDER, "across hubs")
        events = await until(seller_phone, ORDER, message("across hubs"))
        assert events[:-1] == [typing_from("b1")]  # not the seller's own typing
        assert len(await until(buyer, ORDER, message("across hubs"))) == 1

        # Leaving hub b is not leaving: hub a still has the seller's phone.
        await seller.close()
        await seller_phone.post(ORDER, "still here")
        assert len(await until(buyer, ORDER, message("still here"))) == 1
        await seller_phone.close()
        assert await buyer.next_event(room=ORDER) == presence("s1", False)
        await buyer.post(ORDER, "gone?")
        # Said once, by the last hub to let the seller go, whenever b's check ran.
        assert len(await until(buyer, ORDER, message("gone?"))) == 1

        # Public rooms: members counted on every hub.
        await a.listing("L1", seller="s1")
        ann, bob, cy, bob_on_a = [
            await on.client(user) for on, user in ((a, "u1"), (b, "u2"), (a, "u3"), (a, "u2"))
        ]
        # A count is written behind the subscribe: the tests wait for it.
        written = a.app.store.presence.wait_written, b.app.store.presence.wait_written
        assert (await ann.subscribe(LISTING))["watchers"] == 1
        await written[0]()
        assert (await bob.subscribe(LISTING))["watchers"] == 2
        await written[1]()
        await ann.unsubscribe(LISTING)
        assert (await cy.subscribe(LISTING))["watchers"] == 2
        # Each hub counts its own members: one watching from two hubs counts twice.
        assert (await bob_on_a.subscribe(LISTING))["watchers"] == 3
    finally:
        await stop_hub(a)
        await stop_hub(b)
