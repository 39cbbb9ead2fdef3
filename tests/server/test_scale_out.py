"""Several hub processes on one Redis: fan-out between them, and no silent loss.

Every test here runs real ``parley serve`` processes and a ``redis-server`` of
its own, so it can kill, stop and restart them.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from parley.client import ConnectionLost, ParleyClient
from parley.protocol.errors import ParleyError
from parley.server.auth import mint_token
from parley.server.config import load_config
from tests.server.conftest import notification_kinds
from tests.support.hubproc import API_KEY, SECRET, HubProcess
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.slow

TOKENS = load_config(None, {}, jwt_secret=SECRET, api_key=API_KEY)


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer(tmp_path / "redis") as server:
        yield server


@contextmanager
def running_hubs(tmp_path: Path, store: str) -> Iterator[list[HubProcess]]:
    """Two ``parley serve`` processes on ``store``, stopped at the end."""
    started = [HubProcess(tmp_path, store) for _ in range(2)]
    try:
        for hub in started:
            hub.start()
        yield started
    finally:
        for hub in started:
            hub.stop()


@pytest.fixture
def hubs(tmp_path: Path, redis: RedisServer) -> Iterator[list[HubProcess]]:
    with running_hubs(tmp_path, redis.url) as started:
        yield started


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {API_KEY}"}) as session:
        yield session


class Clients:
    def __init__(self) -> None:
        self.opened: list[ParleyClient] = []

    async def connect(self, hub: HubProcess, user: str, **options: Any) -> ParleyClient:
        options.setdefault("reconnect", False)
        token = mint_token(TOKENS, user, user)
        client = await ParleyClient.connect(hub.ws_url, token, **options)
        self.opened.append(client)
        return client

    async def close(self) -> None:
        for client in self.opened:
            await client.close()


@pytest.fixture
async def clients() -> AsyncIterator[Clients]:
    opened = Clients()
    try:
        yield opened
    finally:
        await opened.close()


async def api(
    http: aiohttp.ClientSession, hub: HubProcess, method: str, path: str, body: Any = None
) -> tuple[int, Any]:
    async with http.request(method, hub.api_url + path, json=body) as response:
        return response.status, await response.json()


async def listing(
    http: aiohttp.ClientSession, hub: HubProcess, listing_id: str, **fields: Any
) -> None:
    body = {
        "seller_id": "s1",
        "title": "Coat",
        "price": {"amount": 4500, "currency": "CAD"},
        **fields,
    }
    status, reply = await api(http, hub, "PUT", f"/v1/listings/{listing_id}", body)
    assert status == 200, reply


async def events(client: ParleyClient, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The next ``count`` message events, skipping ``resumed`` markers and the
    ephemeral ``presence`` and ``typing`` events (they have no ``seq``)."""
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(out) < count:
        event = await client.next_event(max(0.01, deadline - time.monotonic()))
        if event["event"] not in ("resumed", "presence", "typing"):
            out.append(event)
    return out


async def ready(http: aiohttp.ClientSession, hub: HubProcess) -> bool:
    async with http.get(hub.api_url + "/readyz") as response:
        return response.status == 200


async def until(condition: Any, timeout: float = 15.0) -> None:
    """Poll an async condition, bounded in time; the state it waits for is real."""
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


async def test_members_on_two_hubs_see_each_others_comments_in_order(
    hubs: list[HubProcess], http: aiohttp.ClientSession, clients: Clients
) -> None:
    a, b = hubs
    await listing(http, a, "L1")
    on_a = await clients.connect(a, "u1")
    on_b = await clients.connect(b, "u2")
    await on_a.subscribe("listing:L1")
    await on_b.subscribe("listing:L1")
    for i in range(10):
        await (on_a if i % 2 else on_b).post("listing:L1", f"m{i}")
    for client in (on_a, on_b):
        got = await events(client, 10)
        assert [e["seq"] for e in got] == list(range(1, 11))
        assert [e["text"] for e in got] == [f"m{i}" for i in range(10)]


async def test_an_order_room_spans_both_hubs(
    hubs: list[HubProcess], http: aiohttp.ClientSession, clients: Clients
) -> None:
    a, b = hubs
    await listing(http, a, "L1")
    body = {"listing_id": "L1", "buyer_id": "b1", "seller_id": "s1"}
    status, _ = await api(http, b, "PUT", "/v1/orders/O1", body)
    assert status == 201
    buyer = await clients.connect(a, "b1")
    seller = await clients.connect(b, "s1")
    stranger = await clients.connect(b, "x1")
    await buyer.subscribe("order:O1", since=0)
    await seller.subscribe("order:O1", since=0)
    await buyer.post("order:O1", "Address confirmed?")
    await seller.post("order:O1", "Yes, shipping tomorrow.")
    for client in (buyer, seller):
        got = await events(client, 3)
        assert [e["seq"] for e in got] == [1, 2, 3]
        assert got[0]["kind"] == "system"
    with pytest.raises(ParleyError) as err:
        await stranger.subscribe("order:O1")
    assert err.value.code == "forbidden"


async def test_a_client_that_drops_from_one_hub_resumes_on_the_other(
    hubs: list[HubProcess], http: aiohttp.ClientSession, clients: Clients
) -> None:
    a, b = hubs
    await listing(http, a, "L1")
    poster = await clients.connect(a, "u1")
    roamer = await clients.connect(a, "u2")
    subscribed = await roamer.subscribe("listing:L1")
    for i in range(3):
        await poster.post("listing:L1", f"seen {i}")
    last_seen = (await events(roamer, 3))[-1]["seq"]
    await roamer.close()
    for i in range(4):
        await poster.post("listing:L1", f"missed {i}")

    back = await clients.connect(b, "u2")
    result = await back.request(
        "subscribe", room="listing:L1", since=last_seen, epoch=subscribed["epoch"]
    )
    assert [e["text"] for e in result["missed"]] == [f"missed {i}" for i in range(4)]
    await poster.post("listing:L1", "live")
    got = await events(back, 5)
    assert [e["seq"] for e in got] == [4, 5, 6, 7, 8]


async def test_kill_9_of_a_hub_loses_no_acknowledged_post_and_duplicates_none(
    hubs: list[HubProcess], http: aiohttp.ClientSession, clients: Clients
) -> None:
    a, b = hubs
    await listing(http, a, "L1")
    posters = [await clients.connect(a, f"u{i}") for i in range(4)]
    acked: list[str] = []

    async def stream(client: ParleyClient, who: int) -> None:
        for n in range(500):  # bounded; the hub dies long before
            text = f"{who}-{n}"
            try:
                await client.post("listing:L1", text, client_msg_id=text)
            except (ConnectionLost, ParleyError, TimeoutError):
                return
            acked.append(text)

    streams = [asyncio.ensure_future(stream(c, i)) for i, c in enumerate(posters)]
    await until(lambda: _true(len(acked) >= 100))
    a.kill()
    await asyncio.wait_for(asyncio.gather(*streams), 20)

    reader = await clients.connect(b, "reader")
    stored: list[str] = []
    before = None
    while True:
        page = await reader.history("listing:L1", before=before, limit=100)
        stored += [m["text"] for m in page["messages"]]
        if not page["more"]:
            break
        before = page["messages"][-1]["seq"]
    assert len(stored) == len(set(stored)), "a post was stored twice"
    assert set(acked) <= set(stored), "an acknowledged post is missing"
    seqs = [(await reader.history("listing:L1", limit=1))["messages"][0]["seq"]]
    assert seqs[0] == len(stored)  # gap-free


async def _true(value: bool) -> bool:
    return value


async def test_redis_outage_answers_unavailable_then_delivery_resumes_with_no_gap(
    hubs: list[HubProcess], redis: RedisServer, http: aiohttp.ClientSession, clients: Clients
) -> None:
    a, _b = hubs
    await listing(http, a, "L1")
    poster = await clients.connect(a, "u1")
    watchers = [await clients.connect(hub, f"w{i}") for i, hub in enumerate(hubs)]
    for watcher in watchers:
        await watcher.subscribe("listing:L1")
    await poster.post("listing:L1", "before")
    for watcher in watchers:
        assert (await events(watcher, 1))[0]["seq"] == 1

    redis.stop()
    for hub in hubs:
        await until(lambda hub=hub: _not(ready(http, hub)))
    with pytest.raises(ParleyError) as err:
        await poster.post("listing:L1", "during the outage")
    assert err.value.code == "unavailable"

    redis.start()
    for hub in hubs:
        await until(lambda hub=hub: ready(http, hub))

    async def post_when_back() -> bool:
        try:
            await poster.post("listing:L1", "after", client_msg_id="after")
        except ParleyError:
            return False
        return True

    await until(post_when_back)
    for watcher in watchers:
        got = await events(watcher, 1)
        assert [(e["seq"], e["text"]) for e in got] == [(2, "after")]


async def _not(condition: Any) -> bool:
    return not await condition


async def test_a_hub_whose_pubsub_connection_is_killed_delivers_everything_in_order(
    hubs: list[HubProcess], redis: RedisServer, http: aiohttp.ClientSession, clients: Clients
) -> None:
    a, b = hubs
    await listing(http, a, "L1")
    poster = await clients.connect(a, "u1")
    watcher = await clients.connect(b, "u2")
    await watcher.subscribe("listing:L1")
    await poster.post("listing:L1", "m0")
    assert (await events(watcher, 1))[0]["seq"] == 1

    with redis.client() as admin:
        killed = admin.client_kill_filter(_type="pubsub")
    assert killed >= 2  # one pub/sub connection per hub
    for i in range(1, 30):
        await poster.post("listing:L1", f"m{i}")
    got = await events(watcher, 29, timeout=20)
    assert [e["seq"] for e in got] == list(range(2, 31))
    assert [e["text"] for e in got] == [f"m{i}" for i in range(1, 30)]


async def test_redis_back_without_its_data_tells_clients_to_reload(
    hubs: list[HubProcess], redis: RedisServer, http: aiohttp.ClientSession, clients: Clients
) -> None:
    a, b = hubs
    await listing(http, a, "L1")
    poster = await clients.connect(a, "u1")
    watcher = await clients.connect(b, "u2")
    first = await watcher.subscribe("listing:L1")
    for i in range(3):
        await poster.post("listing:L1", f"old {i}")
    await events(watcher, 3)

    redis.restart(keep_data=False)
    await listing(http, a, "L1")  # the backend registers it again

    async def reloaded() -> bool:
        return any(event["event"] == "reload" for event in watcher.pending_events())

    await until(reloaded)
    # Resuming with the old epoch and seq is refused: reload, never a wrong replay.
    again = await clients.connect(a, "u2b")

    async def resumed_as_reload() -> bool:
        try:
            result = await again.request(
                "subscribe", room="listing:L1", since=3, epoch=first["epoch"]
            )
        except ParleyError:
            return False
        assert result.get("reload") is True
        assert result["epoch"] != first["epoch"]
        return True

    await until(resumed_as_reload)


def _listening_ports(pid: int) -> set[int]:
    """The TCP ports process ``pid`` listens on (Linux ``/proc``)."""
    fds = Path(f"/proc/{pid}/fd")
    inodes = set()
    for fd in fds.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


async def test_serve_with_workers_runs_several_hub_processes_on_one_port(
    tmp_path: Path, redis: RedisServer, http: aiohttp.ClientSession, clients: Clients
) -> None:
    hub = HubProcess(tmp_path, redis.url, workers=2)
    hub.start()  # ready once every worker is
    try:
        assert hub.proc is not None
        workers = _children(hub.proc.pid)
        assert len(workers) == 2
        # Both on the ports the ready line gave (picked once: the settings said 0);
        # the supervisor holds them without listening.
        ports = {hub.settings["ws_port"], hub.settings["api_port"]}
        assert [_listening_ports(pid) for pid in workers] == [ports, ports]
        assert _listening_ports(hub.proc.pid) == set()
        await listing(http, hub, "L1")
        # The kernel spreads connections over both workers; Redis joins them.
        members = [await clients.connect(hub, f"u{i}") for i in range(12)]
        for member in members:
            await member.subscribe("listing:L1")
        await members[0].post("listing:L1", "to everyone")
        for member in members:
            assert (await events(member, 1))[0]["text"] == "to everyone"
        assert hub.terminate() == 0
        assert all(not Path(f"/proc/{pid}").exists() for pid in workers)
    finally:
        hub.stop()


async def test_r9_order_message_goes_to_the_absent_party_across_hubs(
    hubs: list[HubProcess], http: aiohttp.ClientSession, clients: Clients, redis: RedisServer
) -> None:
    a, b = hubs
    await listing(http, a, "L1")
    body = {"listing_id": "L1", "buyer_id": "b1", "seller_id": "s1"}
    status, _ = await api(http, a, "PUT", "/v1/orders/O1", body)
    assert status == 201
    buyer = await clients.connect(a, "b1")
    seller = await clients.connect(b, "s1")
    await buyer.subscribe("order:O1")
    await seller.subscribe("order:O1")
    # Both watch the room, each on a hub of its own: nobody is notified.
    await buyer.post("order:O1", "Bonjour, l'adresse est bonne ?")
    await seller.post("order:O1", "Oui, merci.")
    assert await notification_kinds(seller) == ["order_opened"]
    assert await notification_kinds(buyer) == ["order_opened"]
    # The seller leaves the room on hub b; once hub b has said so, the buyer
    # posts on hub a.
    await seller.unsubscribe("order:O1")
    admin = redis.client()

    async def seller_gone() -> bool:
        fields = admin.hkeys("parley:{order:O1}:present")
        return not any(field.startswith(b"s1|") for field in fields)

    await until(seller_gone, timeout=5.0)
    await buyer.post("order:O1", "Expédié quand ?")
    assert await notification_kinds(seller) == ["order_opened", "order_message"]
    event = await seller.next_event(room=seller.inbox)
    while event["notification"]["kind"] != "order_message":
        event = await seller.next_event(room=seller.inbox)
    assert event["notification"]["excerpt"] == "Expédié quand ?"
    assert await notification_kinds(buyer) == ["order_opened"]


async def test_a_deleted_listing_closes_its_room_on_every_hub(
    hubs: list[HubProcess], http: aiohttp.ClientSession, clients: Clients
) -> None:
    a, b = hubs
    await listing(http, a, "L1")
    on_a = await clients.connect(a, "u1")
    on_b = await clients.connect(b, "u2")
    for client in (on_a, on_b):
        await client.subscribe("listing:L1")
    await listing(http, a, "L1", status="deleted")
    for client in (on_a, on_b):
        event = await client.next_event(room="listing:L1")
        assert event["event"] == "room_closed"
        with pytest.raises(ParleyError) as err:
            await client.post("listing:L1", "still there?")
        assert err.value.code == "not_found"
