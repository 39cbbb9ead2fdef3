"""Blocks and mutes over real sockets, on both stores: what a block silences and
forbids, what a mute silences, and that an order between two members who fell out
can still be finished (docs/moderation.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from parley.client import ParleyError
from tests.server.conftest import RunningHub, notification_kinds, start_hub, stop_hub
from tests.server.test_offers import members


@pytest.fixture
async def hub(store_url: str) -> AsyncIterator[RunningHub]:
    running = await start_hub(store_url, max_blocks=3, max_mutes=2)
    try:
        yield running
    finally:
        await stop_hub(running)


async def test_a_block_list_is_kept_bounded_and_idempotent(hub: RunningHub) -> None:
    [ann] = await members(hub, "ann")
    assert await ann.blocks() == []
    assert (await ann.block("bob"))["changed"] is True
    assert (await ann.block("bob"))["changed"] is False  # again: nothing new
    await ann.block("cat")
    await ann.block("dan")
    with pytest.raises(ParleyError) as full:
        await ann.block("eve")
    assert full.value.code == "limit_reached" and full.value.details == {"max": 3}
    assert [b["user"] for b in await ann.blocks()] == ["dan", "cat", "bob"]
    assert (await ann.unblock("cat"))["changed"] is True
    assert (await ann.unblock("cat"))["changed"] is False  # not blocked: not an error
    await ann.block("eve")  # room again
    assert {b["user"] for b in await ann.blocks()} == {"bob", "dan", "eve"}
    with pytest.raises(ParleyError) as own:
        await ann.block("ann")
    assert own.value.code == "bad_request"


async def test_a_blocked_members_mention_of_the_blocker_notifies_nothing(
    hub: RunningHub,
) -> None:
    await hub.listing("L1", seller="sam")
    ann, bob, cat = await members(hub, "ann", "bob", "cat")
    await ann.block("bob")
    reply = await bob.post("listing:L1", "@ann @cat regardez ce manteau")
    # The author's reply does not tell that one of them blocked them.
    assert reply["notified"] == 2 and "not_notified" not in reply
    assert await notification_kinds(ann) == []
    assert await notification_kinds(cat) == ["mention"]
    # The other way round, and after unblocking, mentions notify.
    await ann.post("listing:L1", "@bob merci")
    assert await notification_kinds(bob) == ["mention"]
    await ann.unblock("bob")
    await bob.post("listing:L1", "@ann encore une question")
    assert await notification_kinds(ann) == ["mention"]


async def test_no_offer_between_two_members_one_of_whom_blocked_the_other(
    hub: RunningHub,
) -> None:
    await hub.listing("L1", seller="sam", offers_enabled=True)
    sam, bea, cal = await members(hub, "sam", "bea", "cal")
    await sam.block("bea")
    with pytest.raises(ParleyError) as refused:
        await bea.offer_make("L1", 4000)
    assert refused.value.code == "blocked"
    assert "sam" not in refused.value.message and "block" not in refused.value.message
    # The blocker cannot make one to the blocked member either, nor the other way.
    await cal.block("sam")
    with pytest.raises(ParleyError) as refused_too:
        await cal.offer_make("L1", 4000)
    assert refused_too.value.code == "blocked"
    await sam.unblock("bea")
    assert (await bea.offer_make("L1", 4000))["state"] == "open"


async def test_an_offer_to_likers_skips_members_blocked_either_way(hub: RunningHub) -> None:
    await hub.listing("L1", seller="sam")
    sam, bea, cal, dee = await members(hub, "sam", "bea", "cal", "dee")
    for liker in ("bea", "cal", "dee"):
        status, _ = await hub.api("PUT", f"/v1/listings/L1/likers/{liker}")
        assert status == 201
    await sam.block("bea")  # the seller blocked one liker
    await cal.block("sam")  # another liker blocked the seller
    sent = await sam.offer_to_likers("L1", 4000)
    assert [s["user_id"] for s in sent["sent"]] == ["dee"]
    assert sorted((s["user_id"], s["reason"]) for s in sent["skipped"]) == [
        ("bea", "blocked"),
        ("cal", "blocked"),
    ]
    assert await notification_kinds(bea) == [] and await notification_kinds(cal) == []
    assert await notification_kinds(dee) == ["offer_received"]


async def test_an_order_between_members_who_blocked_each_other_can_still_be_finished(
    hub: RunningHub,
) -> None:
    await hub.listing("L1", seller="sam")
    sam, bea = await members(hub, "sam", "bea")
    await hub.order("O1", "L1", buyer="bea", seller="sam")
    await sam.block("bea")
    # Messages still flow both ways, live, and the blocked buyer is still told.
    await bea.subscribe("order:O1")
    await sam.post("order:O1", "Expédié demain matin")
    event = await bea.next_event(room="order:O1")
    assert event["event"] == "message" and event["text"] == "Expédié demain matin"
    assert "order_message" not in await notification_kinds(bea)  # she watches: no notice
    await bea.unsubscribe("order:O1")
    await sam.post("order:O1", "Numéro de suivi envoyé")
    assert (await notification_kinds(bea)).count("order_message") == 1
    # The blocker reads the buyer's messages, but is not notified of them...
    await bea.post("order:O1", "Merci, l'adresse est la bonne")
    history = await sam.history("order:O1")
    assert "Merci, l'adresse est la bonne" in [m["text"] for m in history["messages"]]
    assert "order_message" not in await notification_kinds(sam)
    # ... while the marketplace's own status changes still notify them.
    status, reply = await hub.api("POST", "/v1/orders/O1/status", {"status": "delivered"})
    assert status == 200, reply
    assert "order_status" in await notification_kinds(sam)


async def test_a_muted_room_notifies_nothing_but_its_events_still_arrive(
    hub: RunningHub,
) -> None:
    await hub.listing("L1", seller="sam")
    await hub.listing("L2", seller="sam")
    ann, bob = await members(hub, "ann", "bob")
    assert (await ann.mute("listing:L1"))["changed"] is True
    assert [m["room"] for m in await ann.mutes()] == ["listing:L1"]
    await ann.subscribe("listing:L1")
    await bob.post("listing:L1", "@ann tu l'as vu ?")
    event = await ann.next_event(room="listing:L1")
    assert event["event"] == "message" and event["text"] == "@ann tu l'as vu ?"
    await bob.post("listing:L2", "@ann et celui-ci ?")  # another room still notifies
    assert await notification_kinds(ann) == ["mention"]
    [notice] = (await ann.notifications())["notifications"]
    assert notice["notification"]["room"] == "listing:L2"
    await ann.unmute("listing:L1")
    await bob.post("listing:L1", "@ann et maintenant ?")
    assert await notification_kinds(ann) == ["mention", "mention"]


async def test_a_muted_order_room_sends_no_order_message(hub: RunningHub) -> None:
    await hub.listing("L1", seller="sam")
    sam, bea = await members(hub, "sam", "bea")
    await hub.order("O1", "L1", buyer="bea", seller="sam")
    await sam.mute("order:O1")
    await bea.post("order:O1", "Bonjour, quand l'envoyez-vous ?")
    assert "order_message" not in await notification_kinds(sam)
    await sam.unmute("order:O1")
    await bea.post("order:O1", "Des nouvelles ?")
    assert "order_message" in await notification_kinds(sam)


async def test_a_member_mutes_only_rooms_they_may_read_and_a_bounded_number(
    hub: RunningHub,
) -> None:
    await hub.listing("L1", seller="sam")
    await hub.listing("L2", seller="sam")
    await hub.listing("L3", seller="sam")
    ann, _, _ = await members(hub, "ann", "sam", "bea")
    await hub.order("O1", "L1", buyer="bea", seller="sam")
    with pytest.raises(ParleyError) as other_order:
        await ann.mute("order:O1")
    assert other_order.value.code == "forbidden"
    with pytest.raises(ParleyError) as no_listing:
        await ann.mute("listing:nope")
    assert no_listing.value.code == "not_found"
    await ann.mute("listing:L1")
    await ann.mute("listing:L2")
    with pytest.raises(ParleyError) as full:
        await ann.mute("listing:L3")
    assert full.value.code == "limit_reached" and full.value.details == {"max": 2}
