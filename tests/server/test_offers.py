"""Negotiations over real sockets, on both stores (R5-R7): every step told to the
other party, the 72-hour deadline exact on an injected clock, swept once after a
restart and across hubs, the item sold, the backend's event feed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from parley.client import ParleyClient, ParleyError
from parley.server.core.clock import FakeClock
from tests.server.conftest import RunningHub, notification_kinds, start_hub, stop_hub
from tests.support.redis_server import RedisServer

HOUR = 3600.0
# Sweeps only when a test says so (and once at start): counts stay exact.
SETTINGS: dict[str, Any] = {"offer_sweep_interval": 3600.0}


@pytest.fixture
async def hub(store_url: str, clock: FakeClock) -> AsyncIterator[RunningHub]:
    running = await start_hub(store_url, clock=clock, **SETTINGS)
    try:
        yield running
    finally:
        await stop_hub(running)


async def members(hub: RunningHub, *names: str) -> list[ParleyClient]:
    clients = []
    for name in names:
        status, reply = await hub.api("PUT", f"/v1/users/{name}", {"name": name})
        assert status == 200, reply
        clients.append(await hub.client(name))
    return clients


async def listing(hub: RunningHub, listing_id: str, amount: int = 5000, **fields: Any) -> None:
    await hub.listing(
        listing_id, seller="sam", price={"amount": amount, "currency": "CAD"}, **fields
    )


async def offer_events(client: ParleyClient, count: int) -> list[dict[str, Any]]:
    """The next ``count`` offer states pushed live to the member's inbox."""
    seen = []
    while len(seen) < count:
        event = await client.next_event(room=client.inbox)
        if event["event"] == "offer":
            seen.append(event["offer"])
    return seen


async def events_feed(hub: RunningHub, after: int = 0) -> list[dict[str, Any]]:
    status, reply = await hub.api("GET", f"/v1/events?after={after}")
    assert status == 200, reply
    return reply["events"]  # type: ignore[no-any-return]


async def test_r5_an_offer_countered_and_accepted_tells_each_step(hub: RunningHub) -> None:
    await listing(hub, "L1", 5000, offers_enabled=True)
    sam, bea = await members(hub, "sam", "bea")

    offer = await bea.offer_make("L1", 4000)
    assert offer["state"] == "open" and offer["turn"] == "seller" and not offer["your_turn"]
    assert offer["price"] == 4000 and offer["item_price"] == 5000
    assert offer["discount_percent"] == 20
    [seen_by_sam] = await offer_events(sam, 1)
    assert seen_by_sam["id"] == offer["id"] and seen_by_sam["your_turn"]

    countered = await sam.offer_respond(offer["id"], "counter", 4600)
    assert countered["turn"] == "buyer" and countered["price"] == 4600
    accepted = await bea.offer_respond(offer["id"], "accept")
    assert accepted["state"] == "accepted"
    assert [h["amount"] for h in accepted["history"]] == [4000, 4600]

    assert await notification_kinds(sam) == ["offer_received", "offer_accepted"]
    assert await notification_kinds(bea) == ["offer_countered"]
    [event] = await events_feed(hub)
    assert event["type"] == "offer.accepted"
    assert (event["listing_id"], event["buyer_id"], event["amount"]) == ("L1", "bea", 4600)
    assert await events_feed(hub, after=event["seq"]) == []
    status, got = await hub.api("GET", f"/v1/offers/{offer['id']}")
    assert status == 200 and got["offer"]["state"] == "accepted"


async def test_r5_offers_need_the_sellers_switch_which_only_the_seller_turns(
    hub: RunningHub,
) -> None:
    await listing(hub, "L1")
    sam, bea = await members(hub, "sam", "bea")
    with pytest.raises(ParleyError) as refused:
        await bea.offer_make("L1", 4000)
    assert refused.value.code == "offers_disabled"
    with pytest.raises(ParleyError) as refused:
        await bea.offers_enable("L1")
    assert refused.value.code == "forbidden"
    assert await sam.offers_enable("L1") == {"listing": "L1", "offers_enabled": True}
    # A later report of the listing that does not mention the switch keeps it.
    await listing(hub, "L1", 5500)
    offer = await bea.offer_make("L1", 4000)
    assert offer["item_price"] == 5500
    with pytest.raises(ParleyError) as refused:
        await sam.offer_make("L1", 4000)
    assert refused.value.code == "forbidden"


@pytest.mark.parametrize(
    ("status", "code", "details"),
    [
        ("reserved", "listing_unavailable", {"status": "reserved"}),
        ("sold", "listing_unavailable", {"status": "sold"}),
        ("hidden", "listing_unavailable", {"status": "hidden"}),
        ("deleted", "not_found", None),  # as every op on a deleted listing
    ],
)
async def test_r5_r6_a_listing_not_active_takes_no_offer(
    hub: RunningHub, status: str, code: str, details: dict[str, str] | None
) -> None:
    await listing(hub, "L1", 5000, offers_enabled=True)
    sam, bea = await members(hub, "sam", "bea")
    await hub.api("PUT", "/v1/listings/L1/likers/bea")
    await listing(hub, "L1", 5000, status=status)
    for call in (bea.offer_make("L1", 4000), sam.offer_to_likers("L1", 4000, ["bea"])):
        with pytest.raises(ParleyError) as refused:
            await call
        assert (refused.value.code, refused.value.details) == (code, details)
    # Active again (the order fell through): it takes offers.
    await listing(hub, "L1", 5000, status="active")
    assert (await bea.offer_make("L1", 4000))["state"] == "open"


async def test_r5_turns_one_open_negotiation_and_strangers(hub: RunningHub) -> None:
    await listing(hub, "L1", 5000, offers_enabled=True)
    sam, bea, eve = await members(hub, "sam", "bea", "eve")
    offer = await bea.offer_make("L1", 3000)
    cases = [
        (bea, "accept", None, "not_your_turn"),  # her own price
        (bea, "counter", 3500, "not_your_turn"),
        (eve, "accept", None, "not_found"),  # not a party: not even told it exists
        (sam, "counter", 5000, "price_out_of_range"),  # not below his own start
        (sam, "counter", 3000, "price_out_of_range"),  # not above her price
    ]
    for client, action, amount, code in cases:
        with pytest.raises(ParleyError) as refused:
            await client.offer_respond(offer["id"], action, amount)
        assert refused.value.code == code, (action, amount)
    with pytest.raises(ParleyError) as refused:
        await bea.offer_make("L1", 3200)
    assert refused.value.code == "offer_exists"
    assert refused.value.details == {"offer_id": offer["id"]}
    withdrawn = await bea.offer_respond(offer["id"], "withdraw")
    assert withdrawn["state"] == "withdrawn"
    with pytest.raises(ParleyError) as refused:
        await sam.offer_respond(offer["id"], "accept")
    assert refused.value.code == "offer_closed"
    again = await bea.offer_make("L1", 3200)  # a closed negotiation no longer blocks
    assert {o["id"] for o in await bea.offers("L1")} == {again["id"], offer["id"]}
    assert [o["id"] for o in await sam.offers("L1", state="open")] == [again["id"]]


async def test_r5_bad_offer_requests_get_bad_request(hub: RunningHub) -> None:
    await listing(hub, "L1", 5000, offers_enabled=True)
    [bea] = await members(hub, "bea")
    bad: list[dict[str, Any]] = [
        {"listing": "L1", "amount": "4000"},
        {"listing": "L1", "amount": 40.5},
        {"listing": "L1", "amount": True},
        {"listing": "L1", "amount": 0},
        {"listing": "L 1", "amount": 4000},
        {"listing": "L1"},
    ]
    for fields in bad:
        with pytest.raises(ParleyError) as refused:
            await bea.request("offer_make", **fields)
        assert refused.value.code == "bad_request", fields
    with pytest.raises(ParleyError) as refused:
        await bea.request("offer_respond", offer="x", action="counter")
    assert refused.value.code == "bad_request"
    with pytest.raises(ParleyError) as refused:
        await bea.request("offer_respond", offer="x", action="haggle")
    assert refused.value.code == "bad_request"
    assert await bea.offers() == []  # nothing was stored


async def test_r5_an_accept_racing_a_withdraw_one_wins_the_other_is_told(
    hub: RunningHub,
) -> None:
    await listing(hub, "L1", 5000, offers_enabled=True)
    sam, bea = await members(hub, "sam", "bea")
    offer = await bea.offer_make("L1", 4000)
    outcomes = await asyncio.gather(
        sam.offer_respond(offer["id"], "accept"),
        bea.offer_respond(offer["id"], "withdraw"),
        return_exceptions=True,
    )
    won = [o for o in outcomes if isinstance(o, dict)]
    lost = [o for o in outcomes if isinstance(o, ParleyError)]
    assert len(won) == 1 and len(lost) == 1
    assert lost[0].code == "offer_closed"
    accepted_events = [e for e in await events_feed(hub) if e["type"] == "offer.accepted"]
    assert len(accepted_events) == (1 if won[0]["state"] == "accepted" else 0)


async def test_r6_a_global_offer_reaches_the_20_most_recent_likers(hub: RunningHub) -> None:
    await listing(hub, "L1", 1999)
    [sam] = await members(hub, "sam")
    for i in range(25):
        status, _ = await hub.api("PUT", f"/v1/listings/L1/likers/u{i:02d}", {"ts": 1000 + i})
        assert status == 201
    status, _ = await hub.api("PUT", "/v1/listings/L1/likers/u03", {"ts": 9999})
    assert status == 200  # liked already: kept as it was

    with pytest.raises(ParleyError) as refused:
        await sam.offer_to_likers("L1", 1800)
    assert refused.value.code == "discount_too_small"
    sent = await sam.offer_to_likers("L1", 1799)
    assert sorted(s["user_id"] for s in sent["sent"]) == [f"u{i:02d}" for i in range(5, 25)]
    assert sent["skipped"] == []
    page = await sam.likers("L1", limit=3)
    assert [(x["user_id"], x["liked_at"]) for x in page["likers"]] == [
        ("u24", 1024),
        ("u23", 1023),
        ("u22", 1022),
    ]
    assert page["likers"][0]["open_offer"] is not None and page["more"]

    chosen = [f"u{i:02d}" for i in range(4)] + ["u24", "nobody", "sam"]
    again = await sam.offer_to_likers("L1", 1500, chosen)
    assert sorted(s["user_id"] for s in again["sent"]) == ["u00", "u01", "u02", "u03"]
    assert sorted((s["user_id"], s["reason"]) for s in again["skipped"]) == [
        ("nobody", "not_a_liker"),
        ("sam", "own_listing"),
        ("u24", "offer_exists"),
    ]
    with pytest.raises(ParleyError) as refused:
        await sam.offer_to_likers("L1", 1500, [f"u{i:02d}" for i in range(21)])
    assert refused.value.code == "too_many_recipients"


async def test_r6_only_the_seller_sees_likers_and_offers_them_a_price(hub: RunningHub) -> None:
    await listing(hub, "L1", 5000)
    sam, bea = await members(hub, "sam", "bea")
    await hub.api("PUT", "/v1/listings/L1/likers/bea")
    for call in (bea.likers("L1"), bea.offer_to_likers("L1", 4000, ["bea"])):
        with pytest.raises(ParleyError) as refused:
            await call
        assert refused.value.code == "forbidden"
    sent = await sam.offer_to_likers("L1", 4500, ["bea"])
    offer = sent["sent"][0]["offer"]
    assert offer["origin"] == "seller" and offer["turn"] == "buyer"
    assert await notification_kinds(bea) == ["offer_received"]
    # The buyer answers the seller's price like any other.
    assert (await bea.offer_respond(offer["id"], "counter", 4000))["turn"] == "seller"
    status, reply = await hub.api("DELETE", "/v1/listings/L1/likers/bea")
    assert status == 200 and reply["deleted"]
    assert (await sam.likers("L1"))["likers"] == []


async def test_r7_an_answer_at_72_hours_is_refused_a_millisecond_before_it_is_not(
    hub: RunningHub, clock: FakeClock
) -> None:
    await listing(hub, "L1", 5000, offers_enabled=True)
    sam, bea, ben = await members(hub, "sam", "bea", "ben")
    first = await bea.offer_make("L1", 4000)
    second = await ben.offer_make("L1", 4100)
    clock.advance(72 * HOUR - 0.001)
    assert (await sam.offer_respond(first["id"], "accept"))["state"] == "accepted"
    clock.advance(0.001)
    with pytest.raises(ParleyError) as refused:
        await sam.offer_respond(second["id"], "accept")
    assert refused.value.code == "offer_expired"  # no sweep ran yet


async def test_r7_a_counter_restarts_the_clock_and_the_sweep_tells_both(
    hub: RunningHub, clock: FakeClock
) -> None:
    await listing(hub, "L1", 5000, offers_enabled=True)
    sam, bea = await members(hub, "sam", "bea")
    offer = await bea.offer_make("L1", 4000)
    clock.advance(70 * HOUR)
    await sam.offer_respond(offer["id"], "counter", 4500)
    clock.advance(71 * HOUR)
    assert await hub.app.negotiations.sweep() == 0
    clock.advance(1 * HOUR)
    assert await hub.app.negotiations.sweep() == 1
    assert await hub.app.negotiations.sweep() == 0
    assert (await bea.offers())[0]["state"] == "expired"
    assert (await notification_kinds(sam))[-1] == "offer_expired"
    assert (await notification_kinds(bea))[-1] == "offer_expired"


async def test_r7_a_deadline_passed_while_no_hub_ran_is_swept_at_start(
    store_url: str, clock: FakeClock
) -> None:
    hub = await start_hub(store_url, clock=clock, **SETTINGS)
    try:
        await listing(hub, "L1", 5000, offers_enabled=True)
        _, bea = await members(hub, "sam", "bea")
        offer = await bea.offer_make("L1", 4000)
    finally:
        await stop_hub(hub)
    clock.advance(73 * HOUR)
    hub = await start_hub(store_url, clock=clock, **SETTINGS)
    try:
        await hub.app.negotiations.sweep()  # the start's own sweep may have run already
        sam, bea = await members(hub, "sam", "bea")
        [now] = await bea.offers()
        assert now["id"] == offer["id"] and now["state"] == "expired"
        assert (await notification_kinds(sam)).count("offer_expired") == 1
        assert (await notification_kinds(bea)).count("offer_expired") == 1
    finally:
        await stop_hub(hub)


async def test_r7_two_hubs_on_redis_expire_a_negotiation_exactly_once(
    redis_server: RedisServer, clock: FakeClock
) -> None:
    redis_server.start()
    await redis_server.flushall()
    one = await start_hub(redis_server.url, clock=clock, **SETTINGS)
    two = await start_hub(redis_server.url, clock=clock, **SETTINGS)
    try:
        await listing(one, "L1", 5000, offers_enabled=True)
        for i in range(5):
            status, _ = await one.api("PUT", f"/v1/users/b{i}", {"name": f"b{i}"})
            assert status == 200
        await members(one, "sam")
        for i in range(5):
            buyer = await one.client(f"b{i}")
            await buyer.offer_make("L1", 4000 + i)
        clock.advance(72 * HOUR)
        swept = await asyncio.gather(one.app.negotiations.sweep(), two.app.negotiations.sweep())
        assert sum(swept) == 5
        sam = await two.client("sam")
        assert (await notification_kinds(sam)).count("offer_expired") == 5
    finally:
        await stop_hub(two)
        await stop_hub(one)


async def test_r5_an_order_closes_every_open_negotiation_as_item_sold(hub: RunningHub) -> None:
    await listing(hub, "L1", 5000, offers_enabled=True)
    sam, bea, ben = await members(hub, "sam", "bea", "ben")
    first = await bea.offer_make("L1", 4000)
    await ben.offer_make("L1", 4200)
    await sam.offer_respond(first["id"], "accept")
    await hub.order("O1", "L1", buyer="bea", seller="sam")
    [lost] = await ben.offers()
    assert lost["state"] == "item_sold"
    assert (await notification_kinds(ben))[-1] == "offer_item_sold"
    assert (await bea.offers())[0]["state"] == "accepted"
    # A retry of the order report changes nothing more.
    await hub.order("O1", "L1", buyer="bea", seller="sam")
    assert (await notification_kinds(ben)).count("offer_item_sold") == 1


async def test_r7_a_lapsed_negotiation_does_not_block_a_new_offer_before_the_sweep(
    hub: RunningHub, clock: FakeClock
) -> None:
    await listing(hub, "L1", 5000, offers_enabled=True)
    sam, bea = await members(hub, "sam", "bea")
    first = await bea.offer_make("L1", 4000)
    clock.advance(72 * HOUR)
    second = await bea.offer_make("L1", 4100)
    states = {o["id"]: o["state"] for o in await bea.offers("L1")}
    assert states == {first["id"]: "expired", second["id"]: "open"}
    assert await notification_kinds(sam) == ["offer_received", "offer_expired", "offer_received"]
