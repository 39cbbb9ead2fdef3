"""Members' data rights over the internal API, on both stores: the export of a member.

The member's words, notifications, orders, negotiations and likes are made the
way members and the backend make them (WebSocket ops, API calls); only the
thousands of messages of the bounded-memory test are stored straight into the
store, since their number, not their path, is what that test is about.
"""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import aiohttp
import orjson
import pytest
from redis import Redis

from parley.client import ParleyClient
from parley.server.core.clock import FakeClock
from parley.server.core.model import Author, Draft, Entry, User, UserId
from parley.server.core.reports import Flag
from parley.server.store.base import Store
from parley.server.store.outbox import PushItem, open_outbox
from tests.server.conftest import RunningHub, start_hub, stop_hub
from tests.store.conftest import opened
from tests.support.hubproc import API_KEY, HubProcess


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


# Erasure.

SECRETS = (
    "Encore disponible",
    "appelle-moi au 514",
    "Quelle taille",
    "rue Saint-Denis",
    "motlongsecret",  # a long message: SQLite stores it in overflow pages
)


async def erase(hub: RunningHub, user_id: str, wait: int = 30) -> tuple[int, Any]:
    return await hub.api("DELETE", f"/v1/users/{user_id}?wait={wait}")


def stored_bytes(hub: RunningHub) -> bytes:
    return stored_bytes_at(hub.config.store)


def stored_bytes_at(url: str) -> bytes:
    """Every byte the store holds: the SQLite file and its WAL, or every Redis value."""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    client = Redis.from_url(url)
    try:
        out = []
        for key in client.scan_iter(count=1000):
            kind = client.type(key)
            if kind == b"hash":
                out += [k + v for k, v in client.hgetall(key).items()]
            elif kind == b"string":
                out.append(client.get(key) or b"")
            elif kind == b"zset":
                out += [m for m, _ in client.zrange(key, 0, -1, withscores=True)]
            elif kind == b"stream":
                out += [repr(e).encode() for e in client.xrange(key)]
        return b"".join(out)
    finally:
        client.close()


async def test_erasure_erases_the_members_words_name_inbox_marks_and_likes(
    hub: RunningHub,
) -> None:
    await hub.listing("L1", seller="s1")
    await hub.listing("L2", seller="s1")
    sam = await member(hub, "s1", "sam")
    alice = await member(hub, "u1", "alice", email="alice@example.com")
    first = await alice.post("listing:L1", "Encore disponible ?")
    await alice.edit("listing:L1", first["seq"], "Encore disponible ? appelle-moi au 514")
    own_delete = await alice.post("listing:L1", "Quelle taille ?")
    await alice.delete("listing:L1", own_delete["seq"])
    await alice.post("listing:L2", "motlongsecret " * 140)
    await sam.post("listing:L1", "@alice oui, toujours")
    await hub.order("O1", "L2", buyer="u1", seller="s1")
    said = await alice.post("order:O1", "au 1200 rue Saint-Denis")
    await sam.post("order:O1", "Merci, expédié demain")
    await alice.read("order:O1", said["seq"] + 1)
    await hub.api("PUT", "/v1/listings/L2/likers/u1", {"ts": 5})
    status, _ = await hub.api("POST", "/v1/orders/O1/status", {"status": "completed"})
    assert status == 200  # an ended order's room is closed to members: erasure still works
    await sam.subscribe("listing:L1")
    before = {room: await hub.app.store.head(room) for room in ("listing:L1", "order:O1")}
    assert all(word.encode() in stored_bytes(hub) for word in SECRETS[:2])

    assert await erase(hub, "u1") == (200, {"user_id": "u1", "state": "erased", "erased_at": ANY})

    deleted = await sam.next_event(room="listing:L1")
    assert (deleted["event"], deleted["target"]) == ("message_deleted", first["seq"])
    raw = stored_bytes(hub)
    for word in SECRETS:
        assert word.encode() not in raw, word
    assert b"alice@example.com" not in raw
    assert b"Merci, exp" in raw  # sam's words stay
    for room, head in before.items():
        entries = await hub.app.store.entries_after(room, 0, 1000)
        assert [e.seq for e in entries] == list(range(1, len(entries) + 1))  # gap-free
        assert len(entries) == head.seq + 1  # one tombstone per message still worded
        for entry in entries:
            if entry.author is not None and entry.author.id == "u1":
                assert entry.author.name == "former member" and entry.text == ""
    history = await sam.history("listing:L1")
    theirs = [m for m in history["messages"] if m["author"] and m["author"]["id"] == "u1"]
    assert theirs and all(m["deleted"] and m["author"]["name"] == "former member" for m in theirs)
    mention = await sam.post("listing:L2", "@alice are you there?")
    assert mention.get("mentions", []) == []  # the name no longer finds anyone
    assert (await hub.api("PUT", "/v1/users/u9", {"name": "alice"}))[0] == 200  # free
    assert await hub.app.store.read_marks("order:O1") == {}

    status, doc = await export(hub, "u1")
    assert status == 200
    assert doc["user"] == {"id": "u1", "name": "former member", "locale": "en", "email": None}
    assert all(m["deleted"] and m["text"] == "" for m in doc["messages"])
    assert doc["edits"] == [
        {"room": "listing:L1", "seq": ANY, "target": first["seq"], "ts": ANY, "text": ""}
    ]
    assert (doc["notifications"], doc["likes"]) == ([], [])
    assert doc["inbox"] == {"read_up_to": 0, "unread": 0}
    assert [o["id"] for o in doc["orders"]] == ["O1"]  # kept for accounting

    assert await erase(hub, "u1", wait=0) == (
        200,
        {"user_id": "u1", "state": "erased", "erased_at": ANY},
    )
    assert (await erase(hub, "nobody"))[0] == 404
    assert (await erase(hub, "u1", wait=31))[0] == 400


async def test_erasure_cut_by_a_killed_hub_is_finished_by_the_next_one(
    store_url: str, tmp_path: Path
) -> None:
    count = 6_000
    async with opened(store_url) as store:  # an existing member's history
        await store.put_user(User(UserId("u1"), "alice", "fr-CA", "alice@example.com"))
        alice = Author(UserId("u1"), "alice")
        for start in range(0, count, 500):
            await asyncio.gather(
                *(
                    store.append(
                        f"listing:L{i % 23}", Draft("comment", f"secret-{i:05d}", i, alice)
                    )
                    for i in range(start, start + 500)
                )
            )
        await store.block(UserId("u1"), UserId("u2"), 1, 10)  # what moderation keeps
        await store.mute(UserId("u1"), "listing:L1", 1, 10)
        snapshot = {"room": "listing:L0", "seq": 1, "text": "x", "ts": 0, "author": {"id": "u2"}}
        event = Draft("event", "", 1, None, client_msg_id="report.created:r1", data={})
        await store.file_report("r1", snapshot, Flag(UserId("u1"), "spam", "note-of-u1", 1), event)
        outbox = open_outbox(
            store, clock=FakeClock(), is_read=None, visibility_timeout=30, max_items=100
        )
        await outbox.open()
        pushed = PushItem(UserId("u1"), 1, "mention", "t", "b", "", "fr-CA", 1, {})
        await outbox.enqueue([pushed])
    hub = HubProcess(tmp_path, store_url)
    try:
        hub.start()
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {API_KEY}"}) as http:
            url = f"{hub.api_url}/v1/users/u1?wait=0"
            done = 0
            for _ in range(1000):  # until the first steps are stored
                async with http.delete(url) as response:
                    assert response.status == 202, await response.text()
                    done = (await response.json())["entries_done"]
                if done:
                    break
            assert done > 0
        hub.kill()
        async with opened(store_url) as store:
            erasure = await store.erasure(UserId("u1"))
            assert erasure is not None and erasure.state == "erasing"
            left = [e for e in await all_entries(store, "u1") if not e.deleted]
            assert 0 < len(left) < count  # cut in the middle

        hub.start()
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {API_KEY}"}) as http:
            for _ in range(10):
                async with http.delete(f"{hub.api_url}/v1/users/u1?wait=30") as response:
                    if response.status == 200:
                        break
            assert response.status == 200
    finally:
        hub.stop()
    async with opened(store_url) as store:
        entries = await all_entries(store, "u1")
        assert len(entries) == count
        assert all(e.deleted and e.text == "" for e in entries)
        assert all(e.author == Author(UserId("u1"), "former member") for e in entries)
        for room in {e.room for e in entries}:  # one tombstone each, no gap, no second one
            log = await store.entries_after(room, 0, 10_000)
            assert [e.seq for e in log] == list(range(1, len(log) + 1))
            assert sum(e.kind == "delete" for e in log) == sum(e.kind == "comment" for e in log)
        assert (await store.blocks(UserId("u1"), 10), await store.mutes(UserId("u1"), 10)) == (
            [],
            [],
        )
        assert [page async for page in store.member_reports(UserId("u1"))] == []
    assert b"secret-" not in stored_bytes_at(store_url)
    assert "u1" not in stored_push_members(store_url)


async def all_entries(store: Store, user_id: str) -> list[Entry]:
    out: list[Entry] = []
    after: tuple[str, int] | None = None
    while page := await store.member_entries(UserId(user_id), after, 1000):
        out.extend(page)
        after = (page[-1].room, page[-1].seq)
    return out


async def push_items(hub: RunningHub, group: str) -> list[dict[str, Any]]:
    query = {"group": group, "consumer": "c1", "count": "100", "wait": "0"}
    async with hub.http.get(f"{hub.api_url}/v1/push", params=query) as response:
        assert response.status == 200, await response.text()
        items: list[dict[str, Any]] = (await response.json())["items"]
        return items


def stored_push_members(url: str) -> list[str]:
    """The member of every push item the outbox stores, handed out or not."""
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            rows = conn.execute(
                "SELECT user_id FROM push_items UNION ALL SELECT user_id FROM push_pending"
                " UNION ALL SELECT user_id FROM push_prepared"
            ).fetchall()
        return [row[0] for row in rows]
    client = Redis.from_url(url)
    try:
        out = []
        for key in client.scan_iter(match="*{push}*", count=1000):
            kind = client.type(key)
            if kind == b"stream":
                out += [fields[b"u"].decode() for _, fields in client.xrange(key)]
            elif kind == b"hash":
                out += [v.rpartition(b"\n")[2].decode() for v in client.hvals(key)]
        return out
    finally:
        client.close()


async def test_erasure_drops_the_members_push_items_and_the_export_shows_them_gone(
    hub: RunningHub,
) -> None:
    await hub.listing("L1", seller="s1")
    sam = await member(hub, "s1", "sam")
    for user_id, name in (("u1", "alice"), ("u2", "bob")):  # away: pushed to
        assert (await hub.api("PUT", f"/v1/users/{user_id}", {"name": name}))[0] == 200
    await sam.post("listing:L1", "@alice handed out")
    handed = await push_items(hub, "fcm")  # held by the gateway, not acked
    assert [i["user_id"] for i in handed] == ["u1"]
    for text in ("@alice waiting", "@alice and @bob, both", "@bob only"):
        await sam.post("listing:L1", text)
    assert sorted(stored_push_members(hub.config.store)).count("u1") >= 3

    assert (await erase(hub, "u1"))[0] == 200

    assert "u1" not in stored_push_members(hub.config.store)
    assert "u2" in stored_push_members(hub.config.store)
    for group in ("fcm", "apns"):  # a group made after the erasure starts at the oldest
        items = await push_items(hub, group)
        assert {i["user_id"] for i in items} == {"u2"}, group
    assert (await erase(hub, "u1", wait=0))[0] == 200  # again: nothing left, nothing fails


async def test_export_and_erasure_cover_the_members_blocks_mutes_reports_and_restriction(
    hub: RunningHub,
) -> None:
    await hub.listing("L1", seller="s1")
    sam = await member(hub, "s1", "sam")
    alice = await member(hub, "u1", "alice")
    bob = await member(hub, "u2", "bob")
    reported = await sam.post("listing:L1", "Paiement hors site, écrivez-moi")
    other = await sam.post("listing:L1", "Un autre message")
    await alice.block("u2")
    await alice.mute("listing:L1")
    await bob.block("u1")  # bob's list, not alice's: it stays
    await alice.report("listing:L1", reported["seq"], "scam", "note-of-alice-9417")
    await alice.report("listing:L1", other["seq"], "spam")
    await bob.report("listing:L1", reported["seq"], "off_platform", "note-of-bob")
    status, _ = await hub.api(
        "PUT", "/v1/users/u1/restriction", {"kind": "read_only", "reason": "Spam."}
    )
    assert status == 200

    status, doc = await export(hub, "u1")

    assert status == 200
    assert doc["blocks"] == [{"user": "u2", "since": ANY}]
    assert doc["mutes"] == [{"room": "listing:L1", "since": ANY}]
    assert doc["restriction"] == [
        {"kind": "read_only", "until": None, "reason": "Spam.", "since": ANY}
    ]
    mine = sorted(doc["reports"], key=lambda r: r["seq"])
    assert [(r["room"], r["seq"], r["reason"], r["note"]) for r in mine] == [
        ("listing:L1", reported["seq"], "scam", "note-of-alice-9417"),
        ("listing:L1", other["seq"], "spam", None),
    ]
    text = orjson.dumps(doc).decode()
    assert "note-of-bob" not in text and "u2" not in text.replace('"user":"u2"', "")

    assert (await erase(hub, "u1"))[0] == 200

    status, doc = await export(hub, "u1")
    assert (doc["blocks"], doc["mutes"], doc["reports"]) == ([], [], [])
    assert await bob.blocks() == [{"user": "u1", "since": ANY}]
    status, reply = await hub.api("GET", "/v1/reports?state=open")
    items = {item["seq"]: item for item in reply["reports"]}
    first = items[reported["seq"]]
    assert first["reporters"] == 2 and first["reasons"] == {"scam": 1, "off_platform": 1}
    assert [(n["reason"], n["note"]) for n in first["notes"]] == [
        ("scam", None),
        ("off_platform", "note-of-bob"),
    ]
    assert items[other["seq"]]["reasons"] == {"spam": 1}
    raw = stored_bytes(hub)
    assert b"note-of-alice-9417" not in raw and b"note-of-bob" in raw
    again = await bob.report("listing:L1", reported["seq"], "spam")
    assert again["duplicate"] is True  # bob's own report is untouched
