"""Public listing rooms (R1), listing changes (R3) and order rooms (R2, R9) over real sockets."""

from __future__ import annotations

import asyncio

import pytest

from parley.protocol.errors import ParleyError
from tests.server.conftest import RunningHub


async def test_r1_member_posts_and_every_watcher_sees_it_in_order(hub: RunningHub) -> None:
    await hub.listing("L1")
    poster = await hub.client("u1", "alice")
    json_watcher = await hub.client("u2", "bob")
    msgpack_watcher = await hub.client("u3", "carol", encoding="msgpack")
    for client in (poster, json_watcher, msgpack_watcher):
        await client.subscribe("listing:L1")

    for i in range(5):
        reply = await poster.post("listing:L1", f"question {i}")
        assert reply["seq"] == i + 1
        assert reply["duplicate"] is False

    for watcher in (poster, json_watcher, msgpack_watcher):
        events = [await watcher.next_event() for _ in range(5)]
        assert [e["seq"] for e in events] == [1, 2, 3, 4, 5]
        assert [e["text"] for e in events] == [f"question {i}" for i in range(5)]
        assert all(e["event"] == "message" and e["kind"] == "comment" for e in events)
        assert events[0]["author"] == {"id": "u1", "name": "alice"}


async def test_r1_comments_are_kept_and_read_back_page_by_page(hub: RunningHub) -> None:
    await hub.listing("L1")
    member = await hub.client("u1")
    for i in range(1, 8):
        await member.post("listing:L1", f"comment {i}")
    reader = await hub.client("u2")  # need not subscribe to read
    page = await reader.history("listing:L1", limit=3)
    assert [m["seq"] for m in page["messages"]] == [7, 6, 5]
    assert page["more"] is True
    page = await reader.history("listing:L1", before=5, limit=3)
    assert [m["seq"] for m in page["messages"]] == [4, 3, 2]
    page = await reader.history("listing:L1", before=2, limit=3)
    assert [m["text"] for m in page["messages"]] == ["comment 1"]
    assert page["more"] is False


async def test_r1_room_of_unregistered_listing_is_not_found(hub: RunningHub) -> None:
    member = await hub.client("u1")
    for call in (
        member.subscribe("listing:nope"),
        member.post("listing:nope", "hello"),
        member.history("listing:nope"),
    ):
        with pytest.raises(ParleyError) as err:
            await call
        assert err.value.code == "not_found"


async def test_r1_members_edit_and_delete_their_own_comments(hub: RunningHub) -> None:
    await hub.listing("L1", seller="s1")
    alice = await hub.client("u1", "alice")
    bob = await hub.client("u2", "bob")
    seller = await hub.client("s1", "sam")
    await bob.subscribe("listing:L1")
    first = await alice.post("listing:L1", "Is the colour navy?")
    second = await alice.post("listing:L1", "What size?")

    edited = await alice.edit("listing:L1", first["seq"], "Is the colour navy blue?")
    assert edited["target"] == first["seq"]
    with pytest.raises(ParleyError) as err:
        await bob.edit("listing:L1", first["seq"], "hijacked")
    assert err.value.code == "forbidden"
    with pytest.raises(ParleyError) as err:
        await bob.delete("listing:L1", second["seq"])
    assert err.value.code == "forbidden"
    # The seller may delete any comment on their own listing.
    await seller.delete("listing:L1", second["seq"])

    events = [await bob.next_event() for _ in range(4)]
    assert [e["event"] for e in events] == [
        "message",
        "message",
        "message_edited",
        "message_deleted",
    ]
    assert events[2]["target"] == first["seq"]
    assert events[2]["text"] == "Is the colour navy blue?"
    assert events[3]["target"] == second["seq"]

    history = (await bob.history("listing:L1"))["messages"]
    assert [(m["seq"], m["text"], m.get("deleted", False)) for m in history] == [
        (2, "", True),
        (1, "Is the colour navy blue?", False),
    ]
    assert history[1]["edited_ts"] >= history[1]["ts"]
    with pytest.raises(ParleyError) as err:
        await alice.edit("listing:L1", second["seq"], "undelete?")
    assert err.value.code == "not_found"


async def test_r3_listing_changes_appear_as_system_messages(hub: RunningHub) -> None:
    await hub.listing("L1")
    watcher = await hub.client("u1")
    await watcher.subscribe("listing:L1")
    status, reply = await hub.api(
        "POST", "/v1/listings/L1/events", {"type": "photos_added", "count": 2}
    )
    assert status == 201, reply
    status, _ = await hub.api("POST", "/v1/listings/L1/events", {"type": "edited"})
    assert status == 201
    photos, edited = await watcher.next_event(), await watcher.next_event()
    assert photos["kind"] == "system" and photos["author"] is None
    assert photos["data"] == {
        "type": "listing_photos_added",
        "count": 2,
        "texts": {"en": "The seller added 2 photos.", "fr-CA": "Le vendeur a ajouté 2 photos."},
    }
    assert edited["data"]["type"] == "listing_edited"
    status, reply = await hub.api("POST", "/v1/listings/L1/events", {"type": "bogus"})
    assert (status, reply["error"]["code"]) == (400, "bad_request")
    status, reply = await hub.api("POST", "/v1/listings/none/events", {"type": "edited"})
    assert (status, reply["error"]["code"]) == (404, "not_found")


async def test_r2_order_room_before_the_order_is_order_required(hub: RunningHub) -> None:
    await hub.listing("L1", seller="s1")
    buyer = await hub.client("b1")
    for call in (
        buyer.subscribe("order:O1"),
        buyer.subscribe("order:O1", since=0),
        buyer.post("order:O1", "my phone is ..."),
        buyer.history("order:O1"),
        buyer.edit("order:O1", 1, "x"),
        buyer.delete("order:O1", 1),
    ):
        with pytest.raises(ParleyError) as err:
            await call
        assert err.value.code == "order_required"


async def test_r2_no_path_at_all_leads_to_a_private_conversation_before_an_order(
    hub: RunningHub,
) -> None:
    await hub.listing("L1", seller="s1")
    buyer = await hub.client("b1")
    seller = await hub.client("s1")
    # No room kind other than listing and order can be named...
    for room in ("user:s1", "dm:s1", "direct:b1:s1", "private:s1", "conversation:1", "s1"):
        for op, fields in (
            ("subscribe", {}),
            ("history", {}),
            ("post", {"text": "hi", "client_msg_id": "c1"}),
        ):
            with pytest.raises(ParleyError) as err:
                await buyer.request(op, room=room, **fields)
            assert err.value.code == "bad_request", (op, room)
            await buyer.request("ping")  # a good request resets the bad-frame count
    # ...no op sends to a member...
    for op in ("message", "direct_message", "dm", "send", "whisper", "invite", "open_room"):
        with pytest.raises(ParleyError) as err:
            await buyer.request(op, to="s1", text="hi")
        assert err.value.code == "unknown_op"
        await buyer.request("ping")
    # ...and an order room, whatever its id, is closed until the backend reports it.
    for order_id in ("O1", "L1", "s1", "b1"):
        with pytest.raises(ParleyError) as err:
            await buyer.post(f"order:{order_id}", "let's talk privately")
        assert err.value.code == "order_required"
    # The seller's own channel received nothing from the buyer.
    assert seller.pending_events() == []


async def test_r9_order_room_opens_at_once_for_buyer_and_seller_only(hub: RunningHub) -> None:
    await hub.listing("L1", seller="s1")
    buyer = await hub.client("b1", "bea")
    seller = await hub.client("s1", "sam")
    stranger = await hub.client("x1", "xavier")
    reply = await hub.order("O1", "L1", buyer="b1", seller="s1")
    assert reply["created"] is True
    assert reply["order"]["room"] == "order:O1"

    for party in (buyer, seller):
        result = await party.subscribe("order:O1", since=0)
        [opened] = result["missed"]
        assert opened["seq"] == 1 and opened["kind"] == "system"
        assert opened["data"]["type"] == "order_opened"
        await party.next_event(room="order:O1")  # the missed system message, queued

    await buyer.post("order:O1", "Could you confirm the colour before shipping?")
    answer = await seller.next_event(room="order:O1")
    assert answer["text"] == "Could you confirm the colour before shipping?"
    assert answer["seq"] == 2

    for call in (
        stranger.subscribe("order:O1"),
        stranger.post("order:O1", "hello"),
        stranger.history("order:O1"),
    ):
        with pytest.raises(ParleyError) as err:
            await call
        assert err.value.code == "forbidden"

    # Reporting the same order again is idempotent: no second opening message.
    again = await hub.order("O1", "L1", buyer="b1", seller="s1")
    assert again["created"] is False
    history = (await buyer.history("order:O1"))["messages"]
    assert [m["seq"] for m in history] == [2, 1]


async def test_r9_order_status_changes_appear_in_the_order_room(hub: RunningHub) -> None:
    await hub.listing("L1", seller="s1")
    await hub.order("O1", "L1", buyer="b1", seller="s1")
    buyer = await hub.client("b1")
    await buyer.subscribe("order:O1")
    status, reply = await hub.api(
        "POST",
        "/v1/orders/O1/status",
        {"status": "shipped", "tracking_number": "1Z999AA10123456784"},
    )
    assert status == 200, reply
    event = await buyer.next_event()
    assert event["kind"] == "system"
    assert event["data"] == {
        "type": "order_status",
        "status": "shipped",
        "tracking_number": "1Z999AA10123456784",
        "texts": {
            "en": "The order has shipped. Tracking number: 1Z999AA10123456784.",
            "fr-CA": "La commande a été expédiée. Numéro de suivi\u00a0: 1Z999AA10123456784.",
        },
    }
    for body, code in (
        ({"status": "teleported"}, "bad_request"),
        ({}, "bad_request"),
    ):
        status, reply = await hub.api("POST", "/v1/orders/O1/status", body)
        assert reply["error"]["code"] == code
    status, reply = await hub.api("POST", "/v1/orders/O9/status", {"status": "shipped"})
    assert (status, reply["error"]["code"]) == (404, "not_found")


async def test_r9_an_order_with_other_parties_is_a_conflict(hub: RunningHub) -> None:
    await hub.listing("L1", seller="s1")
    await hub.order("O1", "L1", buyer="b1", seller="s1")
    body = {"listing_id": "L1", "buyer_id": "b2", "seller_id": "s1"}
    status, reply = await hub.api("PUT", "/v1/orders/O1", body)
    assert (status, reply["error"]["code"]) == (409, "conflict")
    body = {"listing_id": "L1", "buyer_id": "b2", "seller_id": "s2"}
    status, reply = await hub.api("PUT", "/v1/orders/O2", body)
    assert (status, reply["error"]["code"]) == (409, "conflict")


async def test_concurrent_posters_get_gap_free_unique_seqs(hub: RunningHub) -> None:
    await hub.listing("L1")
    posters = [await hub.client(f"u{i}") for i in range(8)]
    watcher = await hub.client("w")
    await watcher.subscribe("listing:L1")

    async def post_many(client_index: int) -> list[int]:
        client = posters[client_index]
        replies = await asyncio.gather(
            *(client.post("listing:L1", f"{client_index}-{n}") for n in range(25))
        )
        return [r["seq"] for r in replies]

    seqs = [s for batch in await asyncio.gather(*(post_many(i) for i in range(8))) for s in batch]
    assert sorted(seqs) == list(range(1, 201))
    events = [await watcher.next_event() for _ in range(200)]
    assert [e["seq"] for e in events] == list(range(1, 201))


async def test_retrying_with_the_same_client_msg_id_never_duplicates(hub: RunningHub) -> None:
    await hub.listing("L1")
    member = await hub.client("u1")
    other = await hub.client("u2")
    first = await member.post("listing:L1", "Still available?", client_msg_id="m-1")
    retries = await asyncio.gather(
        *(member.post("listing:L1", "Still available?", client_msg_id="m-1") for _ in range(5))
    )
    assert {r["seq"] for r in retries} == {first["seq"]}
    assert all(r["duplicate"] for r in retries)
    # The id is the author's own: another member's m-1 is another message.
    theirs = await other.post("listing:L1", "Me too", client_msg_id="m-1")
    assert theirs["seq"] == first["seq"] + 1
    history = (await member.history("listing:L1"))["messages"]
    assert len(history) == 2
