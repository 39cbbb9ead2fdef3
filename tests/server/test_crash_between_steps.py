"""A hub killed (SIGKILL) between two steps of a change: the change ends up whole.

Each test starts a real ``parley serve`` told to freeze at one stop point
(``PARLEY_STOP_AT``, ``server.stoppoints``), drives it there through the
internal API or a member's request, waits until the process is frozen there,
kills it with SIGKILL and starts another hub on the same store. Then it reads
what the backend and the members read: ``GET /v1/events``, ``GET /v1/push``,
the members' inboxes, the rooms. Every change is whole, and nothing is there
twice. On SQLite, on one Redis and on a Redis Cluster (where a change's keys
live on several slots, so that no script can make it one step).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from parley.client import ConnectionLost, ParleyClient, ParleyError
from parley.server.auth import mint_token
from parley.server.config import load_config
from tests.support.hubproc import API_KEY, SECRET, HubProcess

SETTINGS: dict[str, Any] = {"completion_grace": 0.0, "offer_sweep_interval": 0.2}
GROUPS = itertools.count()
PATIENCE = 15.0  # seconds the restarted hub has to complete what was left


@dataclass
class Crash:
    """A hub process on a store, and a session on its internal API."""

    proc: HubProcess
    http: aiohttp.ClientSession

    async def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        url = self.proc.api_url + path
        async with self.http.request(method, url, json=body) as response:
            return response.status, await response.json()

    async def member(self, user: str, name: str | None = None) -> ParleyClient:
        config = load_config(None, {}, jwt_secret=SECRET, api_key=API_KEY)
        token = mint_token(config, user, name or user, locale="fr-CA")
        return await ParleyClient.connect(self.proc.ws_url, token, reconnect=False)

    async def kill_when_stopped(self) -> None:
        await asyncio.to_thread(self.proc.wait_stopped)
        self.proc.kill()

    async def restart(self) -> None:
        await asyncio.to_thread(self.proc.start)

    async def pushed(self) -> list[dict[str, Any]]:
        """Every item in the push outbox: a new group starts at the oldest item
        retained, and this one never acks, so nothing is dropped."""
        group = f"check{next(GROUPS)}"
        status, body = await self.api("GET", f"/v1/push?group={group}&consumer=c&count=100")
        assert status == 200
        return list(body["items"])

    async def until(self, what: str, check: Any) -> Any:
        """Poll ``check`` (bounded) until it returns something true."""
        deadline = time.monotonic() + PATIENCE
        while time.monotonic() < deadline:
            found = await check()
            if found:
                return found
            await asyncio.sleep(0.1)
        raise AssertionError(f"{what}: not done {PATIENCE} s after the restart")


@pytest.fixture(params=["sqlite", "redis", "redis-cluster"])
async def crash(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Crash]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'parley.sqlite3'}"
    elif request.param == "redis":
        redis_server = request.getfixturevalue("redis_server")
        redis_server.start()
        await redis_server.flushall()
        url = redis_server.url
    else:
        redis_cluster = request.getfixturevalue("redis_cluster")
        await redis_cluster.flushall()
        url = redis_cluster.url
    proc = HubProcess(tmp_path, url, **SETTINGS)
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        try:
            yield Crash(proc, http)
        finally:
            proc.kill()


async def setup_market(crash: Crash) -> None:
    for user in ("seller", "buyer"):
        body = {"name": user, "locale": "fr-CA"}
        assert (await crash.api("PUT", f"/v1/users/{user}", body))[0] == 200
    listing = {
        "seller_id": "seller",
        "title": "Vélo",
        "price": {"amount": 10_000, "currency": "CAD"},
        "offers_enabled": True,
    }
    assert (await crash.api("PUT", "/v1/listings/L1", listing))[0] == 200


async def set_up_then_stop_at(crash: Crash, point: str) -> None:
    """The market set up by a hub without a stop point (setting it up passes the
    point too), then a hub that stops at ``point``."""
    crash.proc.start()
    await setup_market(crash)
    await asyncio.to_thread(crash.proc.stop)
    crash.proc.start(stop_at=point)


async def inbox(crash: Crash, user: str) -> list[dict[str, Any]]:
    member = await crash.member(user)
    try:
        return list((await member.notifications(limit=100))["notifications"])
    finally:
        await member.close()


async def backend_call(crash: Crash, method: str, path: str, body: Any) -> None:
    """A backend request the hub dies during: the answer never comes."""
    with contextlib.suppress(aiohttp.ClientError):
        await crash.api(method, path, body)


@pytest.mark.parametrize("point", ["notify.prepared", "notify.appended"])
async def test_a_notification_and_its_push_item_are_whole_after_a_kill_between_them(
    crash: Crash, point: str
) -> None:
    crash.proc.start(stop_at=point)
    await setup_market(crash)
    # An order notifies both parties (both away: pushed). The hub freezes at the
    # first one's stop point and is killed; the backend never gets an answer.
    report = asyncio.ensure_future(
        backend_call(crash, "PUT", "/v1/orders/O1", {"listing_id": "L1", "buyer_id": "buyer",
                                                     "seller_id": "seller"})
    )  # fmt: skip
    await crash.kill_when_stopped()
    await report
    await crash.restart()

    async def opened_pushed(want: int) -> list[dict[str, Any]]:
        items = [i for i in await crash.pushed() if i["kind"] == "order_opened"]
        return items if len(items) >= want else []

    # The restarted hub completes the half-done notification by itself...
    [first, *_] = await crash.until("the frozen notification pushed", lambda: opened_pushed(1))
    [note] = [
        n
        for n in await inbox(crash, first["user_id"])
        if n["notification"]["kind"] == "order_opened"
    ]
    assert note["seq"] == first["seq"]
    # ...and the backend's retry completes the rest of the order's steps.
    status, _ = await crash.api(
        "PUT", "/v1/orders/O1", {"listing_id": "L1", "buyer_id": "buyer", "seller_id": "seller"}
    )
    assert status in (200, 201)
    items = await crash.until("both order_opened pushed", lambda: opened_pushed(2))
    assert len(items) == 2
    for user in ("buyer", "seller"):
        notes = [n for n in await inbox(crash, user) if n["notification"]["kind"] == "order_opened"]
        assert len(notes) == 1, notes
        [pushed] = [i for i in items if i["user_id"] == user]
        assert pushed["seq"] == notes[0]["seq"]
    assert Counter((i["user_id"], i["seq"]) for i in await crash.pushed()).most_common(1)[0][1] == 1


async def test_an_accepted_offer_gets_its_event_after_a_kill_between_them(crash: Crash) -> None:
    crash.proc.start(stop_at="offer.stored.accepted")
    await setup_market(crash)
    buyer = await crash.member("buyer")
    offer = await buyer.offer_make("L1", 9_000)
    await buyer.close()
    seller = await crash.member("seller")
    accepting = asyncio.ensure_future(seller.offer_respond(offer["id"], "accept"))
    await crash.kill_when_stopped()
    with pytest.raises(ConnectionLost):
        await accepting
    await crash.restart()

    async def accepted_events() -> list[dict[str, Any]]:
        status, body = await crash.api("GET", "/v1/events?after=0")
        assert status == 200
        return list(body["events"])

    [event] = await crash.until("offer.accepted in GET /v1/events", accepted_events)
    assert (event["type"], event["offer_id"], event["amount"]) == (
        "offer.accepted",
        offer["id"],
        9_000,
    )
    status, stored = await crash.api("GET", f"/v1/offers/{offer['id']}")
    assert status == 200 and stored["offer"]["state"] == "accepted"

    async def buyer_told() -> list[dict[str, Any]]:
        return [i for i in await crash.pushed() if i["kind"] == "offer_accepted"]

    [pushed] = await crash.until("the buyer's push", buyer_told)
    [note] = [
        n for n in await inbox(crash, "buyer") if n["notification"]["kind"] == "offer_accepted"
    ]
    assert (pushed["user_id"], pushed["seq"]) == ("buyer", note["seq"])
    # Told once, even though the sweep keeps looking.
    await asyncio.sleep(0.5)
    assert len(await accepted_events()) == 1
    assert len(await buyer_told()) == 1


ORDER = {"listing_id": "L1", "buyer_id": "buyer", "seller_id": "seller"}


async def room_messages(crash: Crash, user: str, room: str) -> list[dict[str, Any]]:
    member = await crash.member(user)
    try:
        return list((await member.history(room, limit=100))["messages"])
    finally:
        await member.close()


async def kill_during(crash: Crash, method: str, path: str, body: Any) -> None:
    """The backend's request, answered by no one: the hub is killed at its stop point."""
    call = asyncio.ensure_future(backend_call(crash, method, path, body))
    await crash.kill_when_stopped()
    await call
    await crash.restart()


# On SQLite the order and its indexes are one transaction: no step to stop between.
@pytest.mark.parametrize(
    ("crash", "point"),
    [
        ("sqlite", "order.stored"),
        ("redis", "order.indexing"),
        ("redis", "order.stored"),
        ("redis-cluster", "order.indexing"),
        ("redis-cluster", "order.stored"),
    ],
    indirect=["crash"],
)
async def test_an_order_killed_before_its_room_opens_is_whole_after_the_backends_retry(
    crash: Crash, point: str
) -> None:
    crash.proc.start(stop_at=point)
    await setup_market(crash)
    await kill_during(crash, "PUT", "/v1/orders/O1", ORDER)
    status, body = await crash.api("PUT", "/v1/orders/O1", ORDER)  # the backend retries
    assert (status, body["created"]) == (200, False)
    [opened] = await room_messages(crash, "buyer", "order:O1")
    assert opened["data"]["type"] == "order_opened"
    for user in ("buyer", "seller"):
        kinds = [n["notification"]["kind"] for n in await inbox(crash, user)]
        assert kinds.count("order_opened") == 1
    pushed = Counter(i["user_id"] for i in await crash.pushed() if i["kind"] == "order_opened")
    assert pushed == {"buyer": 1, "seller": 1}
    member = await crash.member("buyer")
    try:
        purchases = await member.conversations("purchases")  # the order's indexes (R10)
    finally:
        await member.close()
    assert [c["order_id"] for c in purchases["conversations"]] == ["O1"]


async def test_a_listing_deleted_and_killed_before_its_room_closed_is_closed_by_the_retry(
    crash: Crash,
) -> None:
    await set_up_then_stop_at(crash, "listing.stored")
    deleted = {"seller_id": "seller", "title": "Vélo", "price": {"amount": 10_000,
               "currency": "CAD"}, "status": "deleted"}  # fmt: skip
    await kill_during(crash, "PUT", "/v1/listings/L1", deleted)
    assert (await crash.api("PUT", "/v1/listings/L1", deleted))[0] == 200
    assert (await crash.api("PUT", "/v1/listings/L1", deleted))[0] == 200  # and again
    member = await crash.member("buyer")
    try:
        with pytest.raises(ParleyError) as refused:
            await member.post("listing:L1", "still for sale?")
        assert refused.value.code == "not_found"
        # Restored, the room opens again; its log shows one close, however often
        # the backend said it.
        restored = {**deleted, "status": "active"}
        assert (await crash.api("PUT", "/v1/listings/L1", restored))[0] == 200
        entries = await member.request("subscribe", room="listing:L1", since=0)
        await member.post("listing:L1", "still for sale?")
    finally:
        await member.close()
    kinds = [e["event"] for e in entries["missed"]]
    assert kinds.count("room_closed") == 1 and kinds.count("room_reopened") == 1, kinds


async def test_a_status_killed_before_its_message_is_whole_after_the_backends_retry(
    crash: Crash,
) -> None:
    crash.proc.configure(order_room_after_end="read_only")
    crash.proc.start(stop_at="order_status.stored")
    await setup_market(crash)
    # The hub stops at the first status report; the order itself goes through.
    assert (await crash.api("PUT", "/v1/orders/O1", ORDER))[0] == 201
    report = {"status": "completed", "event_id": "evt-1"}
    await kill_during(crash, "POST", "/v1/orders/O1/status", report)
    assert (await crash.api("POST", "/v1/orders/O1/status", report))[0] == 200
    statuses = [
        m for m in await room_messages(crash, "buyer", "order:O1")
        if m["data"]["type"] == "order_status"
    ]  # fmt: skip
    assert [m["data"]["status"] for m in statuses] == ["completed"]
    seller = await crash.member("seller")
    try:
        with pytest.raises(ParleyError) as refused:
            await seller.post("order:O1", "one more thing")
        assert refused.value.code == "read_only"  # the room closed at the end
    finally:
        await seller.close()
    for user in ("buyer", "seller"):
        kinds = [n["notification"]["kind"] for n in await inbox(crash, user)]
        assert kinds.count("order_status") == 1


async def test_a_post_killed_before_its_notifications_tells_them_on_its_retry(
    crash: Crash,
) -> None:
    crash.proc.start(stop_at="post.stored")
    await setup_market(crash)
    member = await crash.member("buyer")
    posting = asyncio.ensure_future(
        member.post("listing:L1", "Still available, @seller?", client_msg_id="q-1")
    )
    await crash.kill_when_stopped()
    with pytest.raises(ConnectionLost):
        await posting
    await crash.restart()
    member = await crash.member("buyer")
    try:
        retried = await member.post("listing:L1", "Still available, @seller?", client_msg_id="q-1")
    finally:
        await member.close()
    assert retried["duplicate"] is True
    mentions = [n for n in await inbox(crash, "seller") if n["notification"]["kind"] == "mention"]
    assert [n["notification"]["seq"] for n in mentions] == [retried["seq"]]
    [pushed] = [i for i in await crash.pushed() if i["kind"] == "mention"]
    assert (pushed["user_id"], pushed["seq"]) == ("seller", mentions[0]["seq"])


# On SQLite a rename is one transaction: no step to stop between.
@pytest.mark.parametrize("crash", ["redis", "redis-cluster"], indirect=True)
async def test_a_rename_killed_after_its_name_was_claimed_is_whole_after_the_retry(
    crash: Crash,
) -> None:
    await set_up_then_stop_at(crash, "user.name_claimed")
    renamed = {"name": "velo_fan", "locale": "fr-CA"}
    await kill_during(crash, "PUT", "/v1/users/buyer", renamed)
    assert (await crash.api("PUT", "/v1/users/buyer", renamed))[0] == 200
    # The new name is the member's, the old one is free for another member.
    assert (await crash.api("PUT", "/v1/users/other", {"name": "buyer"}))[0] == 200
    status, body = await crash.api("PUT", "/v1/users/third", {"name": "velo_fan"})
    assert (status, body["error"]["code"]) == (409, "conflict")
