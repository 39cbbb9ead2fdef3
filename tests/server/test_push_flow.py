"""Notifications reach push gateways through a live hub, on both stores.

What the outbox promises by itself is proven in ``tests/store/test_outbox.py``
and over HTTP in ``test_push.py``; here real mentions and orders produce the
items, with ``push_when``, the ``read`` flag and a restart in the way.
"""

from __future__ import annotations

import asyncio
from typing import Any

from parley.server.core.clock import FakeClock
from tests.server.conftest import (
    MockProvider,
    RunningHub,
    finish_gateway,
    start_gateway,
    start_hub,
    stop_hub,
)
from tests.support.hubproc import API_KEY


async def setup(hub: RunningHub) -> None:
    await hub.listing("L1", seller="s1")
    for user_id, name, locale in (("s1", "sam", "en"), ("u1", "alice", "fr-CA")):
        body = {"name": name, "locale": locale}
        status, reply = await hub.api("PUT", f"/v1/users/{user_id}", body)
        assert status == 200, reply


async def fetch(hub: RunningHub, group: str = "fcm", **params: Any) -> list[dict[str, Any]]:
    query = {"group": group, "consumer": "c1", "count": "100", **params}
    async with hub.http.get(hub.api_url + "/v1/push", params=query) as response:
        assert response.status == 200, await response.text()
        items: list[dict[str, Any]] = (await response.json())["items"]
        return items


async def ack(hub: RunningHub, items: list[dict[str, Any]], group: str = "fcm") -> None:
    status, reply = await hub.api(
        "POST", "/v1/push/ack", {"group": group, "ids": [i["id"] for i in items]}
    )
    assert status == 200 and reply["acked"] == len(items), reply


async def test_r4_push_when_offline_pushes_only_members_with_no_live_session(
    store_url: str,
) -> None:
    hub = await start_hub(store_url)
    try:
        await setup(hub)
        sam = await hub.client("s1")
        alice = await hub.client("u1")
        await sam.post("listing:L1", "@alice tu es là ?")
        assert await fetch(hub) == []  # connected: the inbox is enough
        await alice.close()
        await _until_offline(hub, "u1")
        reply = await sam.post("listing:L1", "@alice et maintenant ?")
        [item] = await fetch(hub)
        assert item["user_id"] == "u1" and item["kind"] == "mention"
        assert item["locale"] == "fr-CA"
        assert item["title"].startswith("sam vous")  # in the member's language
        assert item["body"] == "@alice et maintenant ?"
        assert item["link"] == f"https://marketplace.example/chat/listing:L1?seq={reply['seq']}"
        assert item["data"]["seq"] == reply["seq"] and item["read"] is False
        assert item["deliveries"] == 1
        await ack(hub, [item])
    finally:
        await stop_hub(hub)


async def _until_offline(hub: RunningHub, user_id: str) -> None:
    """The hub has seen the member's last connection go (bounded)."""
    presence = hub.app.store.presence
    for _ in range(200):
        if not await presence.present(f"user:{user_id}", user_id):  # type: ignore[arg-type]
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the member still looks online")


async def test_push_when_always_pushes_online_members_too_and_read_is_flagged(
    store_url: str,
) -> None:
    hub = await start_hub(store_url, push_when="always")
    try:
        await setup(hub)
        sam = await hub.client("s1")
        alice = await hub.client("u1")
        await sam.post("listing:L1", "@alice premier")
        await sam.post("listing:L1", "@alice second")
        # Alice reads the first one in the app before the gateway gets there.
        first = await alice.next_event(room=alice.inbox)
        await alice.notifications_read(first["seq"])
        items = await fetch(hub)
        assert [i["body"] for i in items] == ["@alice premier", "@alice second"]
        assert [i["read"] for i in items] == [True, False]
        await ack(hub, items)
    finally:
        await stop_hub(hub)


async def test_order_notifications_are_pushed_in_member_order_across_a_restart(
    store_url: str,
) -> None:
    clock = FakeClock()
    hub = await start_hub(store_url, clock=clock)
    try:
        await setup(hub)
        await hub.order("O1", "L1", buyer="u1", seller="s1")
        for status in ("shipped", "delivered"):
            reply = await hub.api("POST", "/v1/orders/O1/status", {"status": status})
            assert reply[0] == 200
        taken = await fetch(hub, count="1")  # taken, never acked: the consumer died
        assert [i["kind"] for i in taken] == ["order_opened"]
    finally:
        await stop_hub(hub)
    hub = await start_hub(store_url, clock=clock)
    try:
        # Held until its visibility timeout: no later item of those members overtakes it.
        early = await fetch(hub)
        assert len(early) == 3  # the other party's three, in order
        assert all(i["user_id"] != taken[0]["user_id"] for i in early)
        await ack(hub, early)
        clock.advance(hub.config.push_visibility_timeout + 1)
        items = await fetch(hub)
        kinds = [(i["kind"], i["data"].get("status")) for i in items]
        assert kinds == [
            ("order_opened", None),
            ("order_status", "shipped"),
            ("order_status", "delivered"),
        ]
        assert items[0]["id"] == taken[0]["id"] and items[0]["deliveries"] == 2
        assert len({i["user_id"] for i in items}) == 1
    finally:
        await stop_hub(hub)


async def test_the_example_gateway_delivers_a_live_hubs_notifications(
    store_url: str, provider: tuple[MockProvider, str]
) -> None:
    mock, provider_url = provider
    hub = await start_hub(store_url)
    try:
        await setup(hub)
        sam = await hub.client("s1")
        for i in range(3):
            await sam.post("listing:L1", f"@alice message {i}")
        await hub.order("O1", "L1", buyer="u1", seller="s1")
        gateway = await start_gateway(
            hub.api_url, API_KEY, "--provider-url", provider_url, "--wait", "1",
            "--backoff", "0.05", "--max-items", "4", "--exit-when-idle", "20",
        )  # fmt: skip
        err = await finish_gateway(gateway)
        assert gateway.returncode == 0, err.decode()
        to_alice = [body for body in mock.received if body["user_id"] == "u1"]
        assert [b["kind"] for b in to_alice] == ["mention"] * 3 + ["order_opened"]
        assert [b["body"] for b in to_alice[:3]] == [f"@alice message {i}" for i in range(3)]
        assert await fetch(hub) == []  # all acknowledged
    finally:
        await stop_hub(hub)
