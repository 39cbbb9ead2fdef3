"""The inbox over real sockets, on both stores: notifications on every device, read
marks, resume with since, exact unread counts; order notifications (R9)."""

from __future__ import annotations

import pytest

from parley.client import ParleyClient
from tests.server.conftest import RunningHub, notification_kinds, start_hub, stop_hub


async def register(hub: RunningHub, *members: tuple[str, str]) -> None:
    for user_id, name in members:
        status, reply = await hub.api("PUT", f"/v1/users/{user_id}", {"name": name})
        assert status == 200, reply


async def test_r4_every_device_gets_the_notification_and_the_read_mark(hub: RunningHub) -> None:
    await hub.listing("L1", seller="s1")
    await register(hub, ("s1", "sam"), ("u1", "alice"))
    phone = await hub.client("u1")
    laptop = await hub.client("u1")
    sam = await hub.client("s1")
    await sam.post("listing:L1", "@alice une question ?")
    await sam.post("listing:L1", "@alice et une autre.")
    for device in (phone, laptop):
        first = await device.next_event(room=device.inbox)
        second = await device.next_event(room=device.inbox)
        assert [first["event"], second["event"]] == ["notification", "notification"]
        assert second["seq"] == first["seq"] + 1
    listed = await laptop.notifications()
    assert listed["unread"] == 2
    assert [n["read"] for n in listed["notifications"]] == [False, False]

    marked = await phone.notifications_read(first["seq"])
    assert marked == {"read_up_to": first["seq"], "unread": 1}
    for device in (phone, laptop):
        event = await device.next_event(room=device.inbox)
        assert event["event"] == "notifications_read"
        assert event["up_to"] == first["seq"] and event["unread"] == 1

    # A third device connecting later resumes the inbox from where the phone was.
    late = await ParleyClient.connect(hub.ws_url, hub.token("u1"), reconnect=False)
    hub.clients.append(late)
    listed = await late.notifications()
    assert listed["unread"] == 1 and listed["read_up_to"] == first["seq"]
    assert [n["read"] for n in listed["notifications"]] == [False, True]


async def test_a_reconnecting_device_resumes_its_inbox_with_since(hub: RunningHub) -> None:
    await hub.listing("L1", seller="s1")
    await register(hub, ("s1", "sam"), ("u1", "alice"))
    alice = await hub.client("u1", reconnect=True, max_backoff=0.2)
    sam = await hub.client("s1")
    await sam.post("listing:L1", "@alice un")
    seen = await alice.next_event(room=alice.inbox)
    # Drop the connection from the hub side, then notify while it is gone.
    [conn] = [c for c in hub.app.hub.conns if c.principal.user_id == "u1"]
    conn.transport.abort()
    await sam.post("listing:L1", "@alice deux")
    await sam.post("listing:L1", "@alice trois")
    missed = [await alice.next_event(room=alice.inbox) for _ in range(2)]
    assert [e["notification"]["excerpt"] for e in missed] == ["@alice deux", "@alice trois"]
    assert [e["seq"] for e in missed] == [seen["seq"] + 1, seen["seq"] + 2]
    assert {"event": "resumed"} in alice.pending_events()


async def test_connect_with_an_old_inbox_epoch_is_told_to_reload(hub: RunningHub) -> None:
    client = ParleyClient(hub.ws_url, hub.token("u1"), reconnect=False)
    client.user = {"id": "u1"}
    client.positions[client.inbox] = ("not-this-epoch", 3)
    await client._open()
    hub.clients.append(client)
    assert client.pending_events() == [
        {"event": "reload", "room": "user:u1", "epoch": client.positions["user:u1"][0]}
    ]


async def test_notifications_read_never_goes_back_nor_past_the_end(hub: RunningHub) -> None:
    await hub.listing("L1", seller="s1")
    await register(hub, ("s1", "sam"), ("u1", "alice"))
    alice = await hub.client("u1")
    sam = await hub.client("s1")
    for i in range(3):
        await sam.post("listing:L1", f"@alice {i}")
    assert (await alice.notifications())["unread"] == 3
    top = await alice.notifications_read(10_000)
    assert top["unread"] == 0
    back = await alice.notifications_read(1)
    assert back == top


async def test_r9_order_opened_and_status_notify_both_parties(hub: RunningHub) -> None:
    await hub.listing("L1", seller="s1")
    await register(hub, ("s1", "sam"), ("b1", "bea"))
    buyer = await hub.client("b1")
    seller = await hub.client("s1")
    await hub.order("O1", "L1", buyer="b1", seller="s1")
    await hub.order("O1", "L1", buyer="b1", seller="s1")  # a retried report
    for party, role in ((buyer, "buyer"), (seller, "seller")):
        event = await party.next_event(room=party.inbox)
        notice = event["notification"]
        assert notice["kind"] == "order_opened" and notice["role"] == role
        assert notice["room"] == "order:O1" and notice["listing_title"] == "Wool coat"
    body = {"status": "shipped", "tracking_number": "1Z999AA10123456784", "event_id": "e1"}
    for _ in range(2):  # the backend retries with the same event id
        status, _ = await hub.api("POST", "/v1/orders/O1/status", body)
        assert status == 200
    for party in (buyer, seller):
        assert await notification_kinds(party) == ["order_opened", "order_status"]
        [latest, _] = (await party.notifications())["notifications"]
        assert latest["notification"]["tracking_number"] == "1Z999AA10123456784"


async def test_r9_order_message_goes_to_the_absent_party_only(hub: RunningHub) -> None:
    await hub.listing("L1", seller="s1")
    await register(hub, ("s1", "sam"), ("b1", "bea"))
    await hub.order("O1", "L1", buyer="b1", seller="s1")
    buyer = await hub.client("b1")
    seller = await hub.client("s1")
    await buyer.subscribe("order:O1")
    # The seller is online but not in the room: notified.
    await buyer.post("order:O1", "Pouvez-vous l'envoyer lundi ?")
    assert await notification_kinds(seller) == ["order_opened", "order_message"]
    [message, _] = (await seller.notifications())["notifications"]
    assert message["notification"]["excerpt"] == "Pouvez-vous l'envoyer lundi ?"
    assert message["notification"]["author"] == {"id": "b1", "name": "bea"}
    # Watching the room, on any device: not notified; the buyer, watching, never is.
    await seller.subscribe("order:O1")
    await buyer.post("order:O1", "Merci !")
    await seller.post("order:O1", "Oui, lundi.")
    assert await notification_kinds(seller) == ["order_opened", "order_message"]
    assert await notification_kinds(buyer) == ["order_opened"]
    # Once the seller leaves, the next message notifies again.
    await seller.unsubscribe("order:O1")
    await buyer.post("order:O1", "Parfait.")
    assert await notification_kinds(seller) == ["order_opened", "order_message", "order_message"]


async def test_unread_counts_survive_a_restart(sqlite_url: str) -> None:
    hub = await start_hub(sqlite_url)
    try:
        await hub.listing("L1", seller="s1")
        await register(hub, ("s1", "sam"), ("u1", "alice"))
        sam = await hub.client("s1")
        for i in range(3):
            await sam.post("listing:L1", f"@alice {i}")
        alice = await hub.client("u1")
        await alice.notifications_read((await alice.notifications())["notifications"][1]["seq"])
    finally:
        await stop_hub(hub)
    hub = await start_hub(sqlite_url)
    try:
        alice = await hub.client("u1")
        listed = await alice.notifications()
        assert listed["unread"] == 1
        assert [n["read"] for n in listed["notifications"]] == [False, True, True]
    finally:
        await stop_hub(hub)


@pytest.mark.parametrize("status", ["deleted"])
async def test_a_deleted_listing_closes_its_room_for_watchers_and_posts(
    hub: RunningHub, status: str
) -> None:
    await hub.listing("L1", seller="s1")
    watcher = await hub.client("u1")
    await watcher.subscribe("listing:L1")
    await watcher.post("listing:L1", "Encore disponible ?")
    await hub.listing("L1", seller="s1", status=status)
    events = [await watcher.next_event(room="listing:L1") for _ in range(2)]
    assert [e["event"] for e in events] == ["message", "room_closed"]
    assert events[1]["reason"] == "listing_deleted"
    for call in (
        watcher.post("listing:L1", "Et maintenant ?"),
        watcher.history("listing:L1"),
        watcher.subscribe("listing:L1"),
        watcher.edit("listing:L1", 1, "modifié"),
    ):
        with pytest.raises(Exception) as err:
            await call
        assert getattr(err.value, "code", None) == "not_found"
    # Restored: the room opens again, with its history.
    await hub.listing("L1", seller="s1", status="active")
    await watcher.subscribe("listing:L1")
    reply = await watcher.post("listing:L1", "De retour !")
    texts = [m["text"] for m in (await watcher.history("listing:L1"))["messages"]]
    assert texts == ["De retour !", "Encore disponible ?"]
    assert reply["seq"] > 2
