"""Order status messages over real sockets, on both stores (R9): carriers and
tracking links, returns, each party's language, and an ended order's room."""

from __future__ import annotations

from typing import Any

import pytest

from parley.client import ParleyClient, ParleyError
from tests.server.conftest import RunningHub, notification_kinds, start_hub, stop_hub


async def order_with_parties(hub: RunningHub) -> tuple[ParleyClient, ParleyClient]:
    for user_id, name, locale in (("s1", "sam", "en"), ("b1", "bea", "fr-CA")):
        body = {"name": name, "locale": locale}
        status, reply = await hub.api("PUT", f"/v1/users/{user_id}", body)
        assert status == 200, reply
    await hub.listing("L1", seller="s1")
    await hub.order("O1", "L1", buyer="b1", seller="s1")
    buyer = await hub.client("b1", "bea", locale="fr-CA")
    seller = await hub.client("s1", "sam")
    for party in (buyer, seller):
        await party.subscribe("order:O1", since=0)
    return buyer, seller


async def report(hub: RunningHub, **body: Any) -> dict[str, Any]:
    status, reply = await hub.api("POST", "/v1/orders/O1/status", body)
    assert status == 200, reply
    return reply  # type: ignore[no-any-return]


async def next_message(client: ParleyClient) -> dict[str, Any]:
    while True:
        event = await client.next_event(room="order:O1")
        if event["event"] == "message":
            return event


async def test_r9_shipped_with_a_carrier_reaches_both_parties_in_their_language(
    hub: RunningHub,
) -> None:
    buyer, seller = await order_with_parties(hub)
    for party in (buyer, seller):
        assert (await next_message(party))["data"]["type"] == "order_opened"
    await report(hub, status="shipped", carrier="canada_post", tracking_number="7023210000012345")
    for party, locale, words in ((buyer, "fr-CA", "Postes Canada"), (seller, "en", "Canada Post")):
        event = await next_message(party)
        data = event["data"]
        assert words in data["texts"][locale]
        assert data["tracking_urls"][locale].startswith("https://www.canadapost-postescanada.ca/")
        assert "7023210000012345" in data["tracking_urls"][locale]
    for party in (buyer, seller):
        assert await notification_kinds(party) == ["order_opened", "order_status"]
        [latest, _] = (await party.notifications())["notifications"]
        notice = latest["notification"]
        assert notice["carrier"] == "Canada Post" and notice["tracking_url"].startswith("https://")


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"status": "return_requested", "reason": "Trop petit."}, "return_requested"),
        ({"status": "return_accepted"}, "return_accepted"),
        ({"status": "return_declined", "reason": "Worn after delivery."}, "return_declined"),
    ],
)
async def test_r9_returns_are_status_messages_with_their_reason(
    hub: RunningHub, body: dict[str, Any], status: str
) -> None:
    buyer, _ = await order_with_parties(hub)
    await next_message(buyer)
    await report(hub, **body)
    data = (await next_message(buyer))["data"]
    assert data["status"] == status and data.get("reason") == body.get("reason")
    assert data["texts"]["fr-CA"] != data["texts"]["en"]


async def test_r9_bad_status_reports_are_refused_and_change_nothing(hub: RunningHub) -> None:
    buyer, _ = await order_with_parties(hub)
    for body in (
        {"status": "shipped", "carrier": "pigeon", "tracking_number": "AB1234"},
        {"status": "delivered", "tracking_number": "AB1234"},
        {"status": "return_declined", "reason": ""},
        {"status": "shipped", "tracking_number": "<b>1234</b>"},
    ):
        status, reply = await hub.api("POST", "/v1/orders/O1/status", body)
        assert (status, reply["error"]["code"]) == (400, "bad_request"), body
    assert [m["seq"] for m in (await buyer.history("order:O1"))["messages"]] == [1]


async def test_r9_an_ended_order_stays_writable_by_default(hub: RunningHub) -> None:
    buyer, _ = await order_with_parties(hub)
    await report(hub, status="completed")
    assert (await buyer.post("order:O1", "Merci !"))["seq"] > 0


@pytest.mark.parametrize("store", ["sqlite", "redis"])
async def test_r9_an_ended_order_is_read_only_when_configured_and_reopens_for_a_return(
    request: pytest.FixtureRequest, sqlite_url: str, store: str
) -> None:
    url = sqlite_url
    if store == "redis":
        redis_server = request.getfixturevalue("redis_server")
        redis_server.start()
        await redis_server.flushall()
        url = redis_server.url
    hub = await start_hub(url, order_room_after_end="read_only")
    try:
        buyer, seller = await order_with_parties(hub)
        await buyer.post("order:O1", "Bien reçu, merci.")
        await report(hub, status="completed")
        for party in (buyer, seller):
            with pytest.raises(ParleyError) as refused:
                await party.post("order:O1", "encore un mot")
            assert refused.value.code == "read_only"
        # Still readable, by watchers and newcomers alike.
        history = (await seller.history("order:O1"))["messages"]
        assert [m["text"] for m in history][1] == "Bien reçu, merci."
        late = await hub.client("b1", "bea", locale="fr-CA")
        assert (await late.subscribe("order:O1"))["seq"] >= 3
        # A return after the end opens the conversation again.
        await report(hub, status="return_requested", reason="La fermeture est brisée.")
        assert (await buyer.post("order:O1", "Photo envoyée."))["seq"] > 0
    finally:
        await stop_hub(hub)
