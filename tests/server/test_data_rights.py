"""Members' data rights over the internal API, on both stores: the export of a member.

The member's words, notifications, orders, negotiations and likes are made the
way members and the backend make them (WebSocket ops, API calls); only the
thousands of messages of the bounded-memory test are stored straight into the
store, since their number, not their path, is what that test is about.
"""

from __future__ import annotations

import asyncio
import tempfile
import tracemalloc
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from parley.client import ParleyClient
from parley.server.core.model import Author, Draft, UserId
from tests.server.conftest import RunningHub, start_hub, stop_hub


@pytest.fixture
async def hub(store_url: str) -> AsyncIterator[RunningHub]:
    running = await start_hub(store_url, member_write_rate=10_000, member_write_burst=10_000)
    try:
        yield running
    finally:
        await stop_hub(running)


async def member(hub: RunningHub, user_id: str, name: str, **fields: Any) -> ParleyClient:
    status, reply = await hub.api("PUT", f"/v1/users/{user_id}", {"name": name, **fields})
    assert status == 200, reply
    return await hub.client(user_id, name)


async def export(hub: RunningHub, user_id: str) -> tuple[int, Any]:
    async with hub.http.get(f"{hub.api_url}/v1/users/{user_id}/export") as response:
        body = await response.read()
        assert response.headers["Content-Type"].startswith("application/json")
        return response.status, orjson.loads(body)


async def test_export_holds_the_members_profile_words_notifications_orders_offers_likes(
    hub: RunningHub,
) -> None:
    await hub.listing("L1", seller="s1", offers_enabled=True)
    await hub.listing("L2", seller="s1")
    sam = await member(hub, "s1", "sam")
    alice = await member(hub, "u1", "alice", locale="fr-CA", email="alice@example.com")
    first = await alice.post("listing:L1", "Encore disponible ?")
    second = await alice.post("listing:L2", "Quelle taille ?")
    gone = await alice.post("listing:L2", "appelle-moi")
    await alice.edit("listing:L1", first["seq"], "Encore disponible ? Merci")
    await alice.delete("listing:L2", gone["seq"])
    await sam.post("listing:L1", "@alice oui, toujours")
    await sam.post("listing:L1", "a word of sam's own")
    offer = await alice.offer_make("L1", 4000)
    status, _ = await hub.api("PUT", "/v1/listings/L2/likers/u1", {"ts": 1_234})
    assert status == 201
    await hub.order("O1", "L2", buyer="u1", seller="s1")
    said = await alice.post("order:O1", "Merci !")
    await alice.read("order:O1", said["seq"])

    status, doc = await export(hub, "u1")

    assert status == 200
    assert doc["format"] == "parley.export/1"
    assert doc["user"] == {
        "id": "u1",
        "name": "alice",
        "locale": "fr-CA",
        "email": "alice@example.com",
    }
    messages = {(m["room"], m["seq"]): m for m in doc["messages"]}
    assert set(messages) == {
        ("listing:L1", first["seq"]),
        ("listing:L2", second["seq"]),
        ("listing:L2", gone["seq"]),
        ("order:O1", said["seq"]),
    }
    assert messages["listing:L1", first["seq"]]["text"] == "Encore disponible ? Merci"
    assert "edited_ts" in messages["listing:L1", first["seq"]]
    assert messages["listing:L2", gone["seq"]] == {
        "room": "listing:L2",
        "seq": gone["seq"],
        "ts": messages["listing:L2", gone["seq"]]["ts"],
        "text": "",
        "deleted": True,
    }
    assert [(e["room"], e["target"], e["text"]) for e in doc["edits"]] == [
        ("listing:L1", first["seq"], "Encore disponible ? Merci")
    ]
    assert "a word of sam's own" not in orjson.dumps(doc).decode()
    kinds = [n["notification"]["kind"] for n in doc["notifications"]]
    assert kinds == ["mention", "order_opened"]
    assert doc["notifications"][0]["notification"]["excerpt"] == "@alice oui, toujours"
    assert doc["inbox"] == {"read_up_to": 0, "unread": 2}
    assert doc["orders"] == [
        {
            "id": "O1",
            "role": "buyer",
            "listing_id": "L2",
            "status": "created",
            "created_ts": doc["orders"][0]["created_ts"],
            "room": "order:O1",
            "read_up_to": said["seq"],
        }
    ]
    [negotiation] = doc["negotiations"]
    assert (negotiation["id"], negotiation["price"], negotiation["buyer"]) == (
        offer["id"],
        4000,
        "u1",
    )
    assert doc["likes"] == [{"listing_id": "L2", "ts": 1_234}]


async def test_export_of_an_unknown_member_or_a_bad_id_is_refused(hub: RunningHub) -> None:
    assert await export(hub, "nobody") == (
        404,
        {"error": {"code": "not_found", "message": "no member nobody"}},
    )
    status, reply = await export(hub, "bad%20id")
    assert status == 400 and reply["error"]["code"] == "bad_request"
    async with hub.http.get(
        f"{hub.api_url}/v1/users/u1/export", headers={"Authorization": "Bearer wrong"}
    ) as response:
        assert response.status == 401


async def stored_posts(hub: RunningHub, count: int, rooms: int) -> None:
    """``count`` comments of Alice's and as many of Bob's, over ``rooms`` listings."""
    store = hub.app.store
    alice, bob = Author(UserId("u1"), "alice"), Author(UserId("u2"), "bob")
    text = "Bonjour, est-ce encore disponible ? " * 10
    for start in range(0, count, 500):
        await asyncio.gather(
            *(
                store.append(f"listing:L{i % rooms}", Draft("comment", f"{i} {text}", i, who))
                for i in range(start, min(start + 500, count))
                for who in (alice, bob)
            )
        )


async def export_peak(hub: RunningHub, user_id: str) -> tuple[int, Any]:
    """The export's bytes (read into a file as they come) and the process's peak of
    traced memory meanwhile: the hub runs in this process."""
    with tempfile.TemporaryFile() as out:
        tracemalloc.start()
        try:
            async with hub.http.get(f"{hub.api_url}/v1/users/{user_id}/export") as response:
                assert response.status == 200
                async for chunk in response.content.iter_chunked(16 * 1024):
                    out.write(chunk)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        out.seek(0)
        return peak, orjson.loads(out.read())


async def test_export_of_thousands_of_messages_is_streamed_in_bounded_memory(
    hub: RunningHub,
) -> None:
    await member(hub, "u1", "alice")
    await stored_posts(hub, 300, rooms=7)
    small_peak, small = await export_peak(hub, "u1")
    await stored_posts(hub, 6_000, rooms=37)
    peak, doc = await export_peak(hub, "u1")

    assert len(small["messages"]) == 300
    assert len(doc["messages"]) == 6_300
    assert all(m["text"].startswith(f"{m['ts']} Bonjour") for m in doc["messages"])
    keys = [(m["room"], m["seq"]) for m in doc["messages"]]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    size = len(orjson.dumps(doc["messages"]))
    # Twenty times the messages, about the same memory: a page at a time.
    assert peak < 2 * small_peak, (peak, small_peak)
    assert peak < size / 2, (peak, size)
