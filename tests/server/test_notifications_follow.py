"""R2: what a member is told of a message follows that message, on every store.

A member with no order with another can't reach them in private by quoting words in a
notification and then deleting or editing the public message: the notification's excerpt
is withdrawn or rewritten in the inbox, live on every device and in the stored bytes, and a
push item not yet handed to a gateway goes out as the message reads then, or not at all.
Run on SQLite, one Redis and a Redis Cluster (the inbox and the message are on two slots).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
from websockets.asyncio.client import connect as ws_connect

from parley.client import ParleyClient, ParleyError
from parley.protocol.codec import JSON_SUBPROTOCOL
from tests.server.conftest import RunningHub, start_hub, stop_hub
from tests.support.redis_cluster import RedisCluster

ROOM = "listing:L1"
SECRET = "meet me at the Jean-Talon metro at 5, bring cash"


async def members(hub: RunningHub) -> tuple[ParleyClient, ParleyClient, ParleyClient]:
    """The listing, its seller, a hostile member and the victim (on two devices)."""
    await hub.listing("L1", seller="s1")
    for user_id, name in (("s1", "sam"), ("h1", "mallory"), ("v1", "victim")):
        status, reply = await hub.api("PUT", f"/v1/users/{user_id}", {"name": name})
        assert status == 200, reply
    return await hub.client("h1"), await hub.client("v1"), await hub.client("v1")


async def inbox_event(device: ParleyClient, event: str) -> dict[str, Any]:
    """The next event ``event`` of the device's inbox (others of the inbox are skipped)."""
    for _ in range(10):
        got = await device.next_event(room=device.inbox)
        if got["event"] == event:
            return got
    raise AssertionError(f"no {event} in the inbox")


async def resume_inbox(hub: RunningHub, user_id: str) -> list[dict[str, Any]]:
    """What a device that saw nothing of its inbox is replayed at ``connect``."""
    async with ws_connect(hub.ws_url, subprotocols=[JSON_SUBPROTOCOL]) as ws:  # type: ignore[list-item]
        connect = {"id": 1, "op": "connect", "token": hub.token(user_id), "since": 0}
        await ws.send(orjson.dumps(connect).decode())
        reply = orjson.loads(await ws.recv())
    missed: list[dict[str, Any]] = reply["result"]["inbox"]["missed"]
    return missed


async def mentions(device: ParleyClient) -> list[dict[str, Any]]:
    reply = await device.notifications(limit=100)
    return [n["notification"] for n in reply["notifications"] if n["notification"]]


async def fetch(hub: RunningHub) -> list[dict[str, Any]]:
    query = {"group": "fcm", "consumer": "c1", "count": "100", "wait": "0"}
    async with hub.http.get(hub.api_url + "/v1/push", params=query) as response:
        assert response.status == 200, await response.text()
        items: list[dict[str, Any]] = (await response.json())["items"]
        return items


def stored_bytes(hub: RunningHub, request: pytest.FixtureRequest) -> bytes:
    """Every byte the store holds for rooms, inboxes and the push outbox."""
    url = hub.config.store
    if url.startswith("sqlite:"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            rows = [
                row
                for table in ("entries", "push_items")
                for row in conn.execute(f"SELECT * FROM {table}")
            ]
        return repr(rows).encode()
    cluster = "cluster" in request.node.callspec.id
    server = request.getfixturevalue("redis_cluster" if cluster else "redis_server")
    out = []
    for node in server.nodes if cluster else [server]:
        with node.client() as admin:
            if admin.execute_command("ROLE")[0] != b"master":
                continue
            for key in admin.scan_iter(match="parley:*"):
                out.append(repr(_value(admin, key)).encode())
    return b"".join(out)


def _value(admin: redis.Redis, key: bytes) -> Any:
    kind = admin.type(key)
    if kind == b"hash":
        return admin.hgetall(key)
    if kind == b"stream":
        return admin.xrange(key)
    if kind == b"zset":
        return admin.zrange(key, 0, -1)
    if kind == b"string":
        return admin.get(key)
    return kind


async def test_r2_a_deleted_comment_withdraws_its_mention_everywhere(
    every_store_hub: RunningHub, request: pytest.FixtureRequest
) -> None:
    hub = every_store_hub
    mallory, phone, laptop = await members(hub)
    posted = await mallory.post(ROOM, f"@victim {SECRET}")
    assert posted["notified"] == 1
    for device in (phone, laptop):
        event = await inbox_event(device, "notification")
        assert SECRET in event["notification"]["excerpt"]
    notification_seq = event["seq"]

    await mallory.delete(ROOM, posted["seq"])

    for device in (phone, laptop):  # live, on every device
        withdrawn = await inbox_event(device, "message_deleted")
        assert withdrawn["target"] == notification_seq
    assert await mentions(phone) == []
    assert (await phone.notifications())["unread"] == 0
    missed = await resume_inbox(hub, "v1")  # a device that resumes is told the same
    assert [e["event"] for e in missed] == ["notification", "message_deleted"]
    assert SECRET not in repr(missed)
    assert await fetch(hub) == []  # the push item was not taken yet: it never goes out
    assert b"Jean-Talon" not in stored_bytes(hub, request)


async def test_r2_a_comment_removed_by_the_moderators_withdraws_its_mention_too(
    every_store_hub: RunningHub, request: pytest.FixtureRequest
) -> None:
    hub = every_store_hub
    mallory, phone, _ = await members(hub)
    posted = await mallory.post(ROOM, f"@victim {SECRET}")
    notification_seq = (await inbox_event(phone, "notification"))["seq"]
    body = {"reason": "off_platform", "statement": "A meeting outside the platform."}
    status, reply = await hub.api("POST", f"/v1/rooms/{ROOM}/messages/{posted['seq']}/remove", body)
    assert status == 200, reply
    withdrawn = await inbox_event(phone, "message_deleted")
    assert withdrawn["target"] == notification_seq
    assert await mentions(phone) == []
    pushed = await fetch(hub)  # the author's moderation notice, and nothing for the victim
    assert [item["kind"] for item in pushed if item["user_id"] == "v1"] == []
    assert b"Jean-Talon" not in stored_bytes(hub, request)


async def test_r2_an_edit_that_drops_a_mention_un_notifies_the_member(
    every_store_hub: RunningHub, request: pytest.FixtureRequest
) -> None:
    hub = every_store_hub
    mallory, phone, _ = await members(hub)
    posted = await mallory.post(ROOM, "nice coat")
    edited = await mallory.edit(ROOM, posted["seq"], "@victim pay me by interac, I skip the fees")
    assert edited["notified"] == 1
    await inbox_event(phone, "notification")

    await mallory.edit(ROOM, posted["seq"], "nice coat")

    await inbox_event(phone, "message_deleted")
    assert await mentions(phone) == []
    assert await fetch(hub) == []
    # The public log keeps the edit, as every member saw it; the inbox and the outbox don't.
    dump = stored_bytes(hub, request)
    assert dump.count(b"interac") <= 1


async def test_r2_an_edit_rewrites_the_excerpt_live_and_in_the_push_item(
    every_store_hub: RunningHub,
) -> None:
    hub = every_store_hub
    mallory, phone, laptop = await members(hub)
    posted = await mallory.post(ROOM, "@victim is it still available?")
    await inbox_event(phone, "notification")

    await mallory.edit(ROOM, posted["seq"], "@victim is it still available? I'm near")

    for device in (phone, laptop):
        event = await inbox_event(device, "message_edited")
        assert event["notification"]["excerpt"] == "@victim is it still available? I'm near"
    [shown] = await mentions(phone)
    assert shown["excerpt"] == "@victim is it still available? I'm near"
    [item] = await fetch(hub)  # not taken before the edit: it goes out as the message reads
    assert item["body"] == "@victim is it still available? I'm near"
    assert item["data"]["excerpt"] == item["body"]


async def test_r2_a_push_already_taken_is_not_recalled_but_the_inbox_is(
    every_store_hub: RunningHub,
) -> None:
    hub = every_store_hub
    mallory, phone, _ = await members(hub)
    posted = await mallory.post(ROOM, f"@victim {SECRET}")
    [item] = await fetch(hub)  # handed to a gateway: on its way to the phone
    assert SECRET in item["body"]
    await mallory.delete(ROOM, posted["seq"])
    await inbox_event(phone, "message_deleted")
    assert await mentions(phone) == []


async def test_r2_an_order_message_excerpt_follows_its_message(every_store_hub: RunningHub) -> None:
    hub = every_store_hub
    await hub.listing("L1", seller="s1")
    await hub.order("O1", "L1", buyer="b1", seller="s1")
    seller = await hub.client("s1")
    # The buyer is away: the order message is their notification.
    posted = await seller.post("order:O1", "Shipped this morning")
    buyer = await hub.client("b1")
    [note] = [n for n in await mentions(buyer) if n["kind"] == "order_message"]
    assert note["excerpt"] == "Shipped this morning"

    await seller.edit("order:O1", posted["seq"], "Shipping tomorrow")
    [note] = [n for n in await mentions(buyer) if n["kind"] == "order_message"]
    assert note["excerpt"] == "Shipping tomorrow"

    await seller.delete("order:O1", posted["seq"])
    assert [n for n in await mentions(buyer) if n["kind"] == "order_message"] == []


@pytest.mark.slow
async def test_r2_a_delete_is_not_acknowledged_while_a_copy_of_the_words_survives(
    tmp_path: Path,
) -> None:
    """On a Redis Cluster the inbox and the room are two slots, two steps: the inbox's
    shard dies before the delete. The delete is refused (``unavailable``) and stores
    nothing: the comment is not shown deleted while its words wait in an inbox; the
    author's retry, once the shard is back, withdraws the notification and deletes.
    The test kills a master: it runs on a cluster of its own."""
    with RedisCluster(tmp_path / "cluster", node_timeout_ms=2000) as redis_cluster:
        await _delete_while_the_inbox_shard_is_down(redis_cluster)


async def _delete_while_the_inbox_shard_is_down(redis_cluster: RedisCluster) -> None:
    inbox_key = "parley:{user:v1}:seq"
    inbox_master = redis_cluster.master_for_key(inbox_key)
    listing = next(
        f"L{n}"
        for n in range(10_000)
        if redis_cluster.master_for_key(f"parley:{{listing:L{n}}}:seq") is not inbox_master
        and redis_cluster.master_for_key(f"parley:listing:L{n}") is not inbox_master
    )
    room = f"listing:{listing}"
    hub = await start_hub(redis_cluster.url, push_when="always")
    try:
        await hub.listing(listing, seller="s1")
        for user_id, name in (("h1", "mallory"), ("v1", "victim")):
            assert (await hub.api("PUT", f"/v1/users/{user_id}", {"name": name}))[0] == 200
        mallory = await hub.client("h1")
        victim = await hub.client("v1")
        posted = await mallory.post(room, f"@victim {SECRET}")
        await inbox_event(victim, "notification")

        await asyncio.to_thread(redis_cluster.kill_master_for, inbox_key)
        with pytest.raises(ParleyError) as refused:
            await mallory.delete(room, posted["seq"])
        assert refused.value.code == "unavailable"
        [comment] = (await mallory.history(room))["messages"]
        assert SECRET in comment["text"] and not comment.get("deleted")
        await asyncio.to_thread(redis_cluster.wait_failover, redis_cluster.slot_of(inbox_key))

        await _when_back(lambda: mallory.delete(room, posted["seq"]))  # the author's retry
        [comment] = (await mallory.history(room))["messages"]
        assert comment["deleted"] is True
        watcher = await hub.client("v1")
        assert await mentions(watcher) == []
    finally:
        await stop_hub(hub)


async def _when_back(request: Callable[[], Awaitable[Any]]) -> Any:
    """``request``'s answer once the store answers again (bounded)."""
    for _ in range(100):
        try:
            return await request()
        except ParleyError as exc:
            if exc.code != "unavailable":
                raise
            await asyncio.sleep(0.1)
    raise AssertionError("the store did not come back")
