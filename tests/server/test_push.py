"""The push gateways' HTTP API over real sockets, on both stores, and the example gateway.

``push`` serves the internal API (its key guard and error mapping included)
with the push routes over a real outbox and store, on port 0, with a
``FakeClock`` so visibility timeouts pass when a test says so.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from parley.server.api import InternalApi
from parley.server.config import Config, load_config
from parley.server.core.clock import FakeClock
from parley.server.core.model import UserId
from parley.server.push_api import push_routes
from parley.server.store import Store, open_store
from parley.server.store.outbox import PushItem, PushOutbox, open_outbox
from tests.server.conftest import GATEWAY_TIMEOUT, MockProvider, finish_gateway, start_gateway
from tests.support import hubproc
from tests.support.hubproc import API_KEY
from tests.support.long_poll import until_long_polls


def item(user: str, seq: int, kind: str = "mention") -> PushItem:
    return PushItem(
        UserId(user),
        seq,
        kind,
        f"Nouvelle mention {seq}",
        "@alice vous a mentionné",
        f"https://marketplace.example/listings/l1#c{seq}",
        "fr-CA",
        1_800_000_000_000 + seq,
        {"room": "listing:l1", "seq": seq},
    )


@dataclass
class PushApi:
    config: Config
    store: Store
    outbox: PushOutbox
    clock: FakeClock
    runner: web.AppRunner
    http: aiohttp.ClientSession
    read: set[tuple[str, int]] = field(default_factory=set)

    @property
    def url(self) -> str:
        host, port = self.runner.addresses[0][:2]
        return f"http://{host}:{port}"

    async def get(self, path: str, **params: Any) -> tuple[int, Any]:
        query = {k: str(v) for k, v in params.items()}
        async with self.http.get(self.url + path, params=query) as response:
            return response.status, await response.json()

    async def post(self, path: str, body: Any) -> tuple[int, Any]:
        async with self.http.post(self.url + path, json=body) as response:
            return response.status, await response.json()


@pytest.fixture(params=["sqlite", "redis"])
async def push(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[PushApi]:
    # With App wiring the outbox, this is start_hub(url) with a FakeClock,
    # and hub.app.outbox.
    url = f"sqlite:///{tmp_path / 'parley.sqlite3'}"
    if request.param == "redis":
        redis_server = request.getfixturevalue("redis_server")
        redis_server.start()
        await redis_server.flushall()
        url = redis_server.url
    config = load_config(None, {}, **hubproc.test_settings(url))
    clock = FakeClock()
    store = open_store(url)
    await store.open()
    read: set[tuple[str, int]] = set()

    async def is_read(user_id: UserId, seq: int) -> bool:
        return (user_id, seq) in read

    outbox = open_outbox(
        store,
        clock=clock,
        is_read=is_read,
        visibility_timeout=config.push_visibility_timeout,
        max_items=config.push_max_items,
    )
    await outbox.open()
    app = InternalApi(config, store, clock).app()
    app.add_routes(push_routes(outbox))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    http = aiohttp.ClientSession(headers={"Authorization": f"Bearer {API_KEY}"})
    try:
        yield PushApi(config, store, outbox, clock, runner, http, read)
    finally:
        await http.close()
        await outbox.close()  # first: long-polls in progress end now
        await runner.cleanup()
        await store.close()


async def test_a_gateway_fetches_every_field_then_acks(push: PushApi) -> None:
    await push.outbox.enqueue([item("alice", 1), item("bob", 1)])
    push.read.add(("bob", 1))

    status, reply = await push.get("/v1/push", group="fcm", consumer="gw-1")
    assert status == 200
    first = reply["items"][0]
    assert first == {
        "id": first["id"],
        "user_id": "alice",
        "seq": 1,
        "kind": "mention",
        "title": "Nouvelle mention 1",
        "body": "@alice vous a mentionné",
        "link": "https://marketplace.example/listings/l1#c1",
        "locale": "fr-CA",
        "ts": 1_800_000_000_001,
        "data": {"room": "listing:l1", "seq": 1},
        "deliveries": 1,
        "read": False,
    }
    assert [(i["user_id"], i["read"]) for i in reply["items"]] == [("alice", False), ("bob", True)]
    ids = [i["id"] for i in reply["items"]]
    assert await push.get("/v1/push/stats", group="fcm") == (
        200,
        {"group": "fcm", "length": 2, "pending": 2, "held": 2},
    )

    assert await push.post("/v1/push/ack", {"group": "fcm", "ids": ids}) == (200, {"acked": 2})
    assert await push.post("/v1/push/ack", {"group": "fcm", "ids": ids}) == (200, {"acked": 0})
    push.clock.advance(push.config.push_visibility_timeout)
    assert await push.get("/v1/push", group="fcm", consumer="gw-2") == (200, {"items": []})


async def test_count_limits_a_fetch(push: PushApi) -> None:
    await push.outbox.enqueue([item(f"u{n}", 1) for n in range(5)])
    _, reply = await push.get("/v1/push", group="fcm", consumer="gw-1", count=3)
    assert [i["user_id"] for i in reply["items"]] == ["u0", "u1", "u2"]


async def test_an_item_not_acked_in_time_is_fetched_again(push: PushApi) -> None:
    await push.outbox.enqueue([item("alice", 1)])
    _, first = await push.get("/v1/push", group="fcm", consumer="gw-1")
    assert await push.get("/v1/push", group="fcm", consumer="gw-2") == (200, {"items": []})
    push.clock.advance(push.config.push_visibility_timeout)
    _, again = await push.get("/v1/push", group="fcm", consumer="gw-2")
    assert [(i["id"], i["deliveries"]) for i in again["items"]] == [(first["items"][0]["id"], 2)]


async def test_a_long_poll_answers_when_an_item_arrives(push: PushApi) -> None:
    waiting = asyncio.create_task(push.get("/v1/push", group="fcm", consumer="gw-1", wait=20))
    await until_long_polls(push.outbox)  # the request found nothing and waits
    assert not waiting.done()
    await push.outbox.enqueue([item("alice", 1)])
    status, reply = await asyncio.wait_for(waiting, 10)
    assert status == 200
    assert [i["user_id"] for i in reply["items"]] == ["alice"]


@pytest.mark.parametrize(
    "params",
    [
        {"consumer": "gw-1"},
        {"group": "fcm"},
        {"group": "", "consumer": "gw-1"},
        {"group": "f cm", "consumer": "gw-1"},
        {"group": "fcm", "consumer": "x" * 65},
        {"group": "fcm", "consumer": "gw/1"},
        {"group": "fcm", "consumer": "gw-1", "wait": "-1"},
        {"group": "fcm", "consumer": "gw-1", "wait": "31"},
        {"group": "fcm", "consumer": "gw-1", "wait": "soon"},
        {"group": "fcm", "consumer": "gw-1", "wait": "nan"},
        {"group": "fcm", "consumer": "gw-1", "wait": "inf"},
        {"group": "fcm", "consumer": "gw-1", "count": "0"},
        {"group": "fcm", "consumer": "gw-1", "count": "101"},
        {"group": "fcm", "consumer": "gw-1", "count": "1.5"},
        {"group": "fcm", "consumer": "gw-1", "count": "-3"},
        {"group": "fcm", "consumer": "gw-1", "count": "ten"},
    ],
)
async def test_bad_fetch_parameters_are_refused(push: PushApi, params: dict[str, str]) -> None:
    status, reply = await push.get("/v1/push", **params)
    assert status == 400
    assert reply["error"]["code"] == "bad_request"


@pytest.mark.parametrize(
    "body",
    [
        [],
        "fcm",
        {"ids": ["1"]},
        {"group": "fcm"},
        {"group": "fcm", "ids": []},
        {"group": "fcm", "ids": "1"},
        {"group": "fcm", "ids": [1]},
        {"group": "fcm", "ids": [""]},
        {"group": "fcm", "ids": ["x" * 65]},
        {"group": "fcm", "ids": [str(n) for n in range(101)]},
        {"group": "f/cm", "ids": ["1"]},
        {"group": 7, "ids": ["1"]},
    ],
)
async def test_bad_ack_bodies_are_refused(push: PushApi, body: Any) -> None:
    status, reply = await push.post("/v1/push/ack", body)
    assert status == 400
    assert reply["error"]["code"] == "bad_request"


async def test_a_head_request_hands_nothing_out(push: PushApi) -> None:
    await push.outbox.enqueue([item("alice", 1)])
    async with push.http.head(push.url + "/v1/push?group=fcm&consumer=gw-1") as response:
        assert response.status == 405
    assert (await push.outbox.stats("fcm"))["pending"] == 0


async def test_an_ack_body_that_is_not_json_is_refused(push: PushApi) -> None:
    async with push.http.post(push.url + "/v1/push/ack", data=b"{nope") as response:
        assert response.status == 400
        assert (await response.json())["error"]["code"] == "bad_request"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/push?group=fcm&consumer=gw-1"),
        ("POST", "/v1/push/ack"),
        ("GET", "/v1/push/stats?group=fcm"),
    ],
)
async def test_the_push_routes_need_the_api_key(push: PushApi, method: str, path: str) -> None:
    await push.outbox.enqueue([item("alice", 1)])
    async with aiohttp.ClientSession() as anonymous:
        body = {"group": "fcm", "ids": ["1"]}
        async with anonymous.request(method, push.url + path, json=body) as response:
            assert response.status == 401
            assert (await response.json())["error"]["code"] == "unauthorized"
    assert (await push.outbox.stats("fcm"))["pending"] == 0  # nothing was handed out


# The example gateway, as a process, against a mock push provider.


async def test_the_example_gateway_sends_each_unread_item_once_in_member_order(
    push: PushApi, provider: tuple[MockProvider, str]
) -> None:
    mock, provider_url = provider
    members = ["alice", "bob", "chloe"]
    pushed = [item(m, seq) for seq in range(1, 6) for m in members]
    await push.outbox.enqueue(pushed[:9])
    push.read.add(("bob", 2))

    gateway = await start_gateway(
        push.url, API_KEY, "--provider-url", provider_url, "--count", "4", "--wait", "1",
        "--backoff", "0.05", "--max-items", str(len(pushed)), "--exit-when-idle", "20",
    )  # fmt: skip
    await push.outbox.enqueue(pushed[9:])  # while it runs
    err = await finish_gateway(gateway)
    assert gateway.returncode == 0, err.decode()

    sent: dict[str, list[int]] = defaultdict(list)
    for body in mock.received:
        sent[body["user_id"]].append(body["seq"])
    assert sent == {"alice": [1, 2, 3, 4, 5], "bob": [1, 3, 4, 5], "chloe": [1, 2, 3, 4, 5]}
    assert len({body["id"] for body in mock.received}) == len(mock.received) == 14
    assert mock.requests == 15  # one refused, retried
    assert await push.outbox.stats("fcm") == {"length": 0, "pending": 0, "held": 0}
    push.clock.advance(push.config.push_visibility_timeout)
    assert await push.outbox.fetch("fcm", "gw-2", count=100, wait=0) == []


async def test_the_example_gateway_prints_without_a_provider_and_stops_on_sigterm(
    push: PushApi,
) -> None:
    await push.outbox.enqueue([item("alice", 1), item("alice", 2)])
    gateway = await start_gateway(push.url, API_KEY, "--wait", "30")
    try:
        assert gateway.stdout is not None
        lines = [await asyncio.wait_for(gateway.stdout.readline(), GATEWAY_TIMEOUT) for _ in "12"]
        for _ in range(500):  # until both are acked; then it is long-polling
            if (await push.outbox.stats("fcm"))["pending"] == 0:
                break
            await asyncio.sleep(0.01)
        gateway.terminate()
        _, err = await asyncio.wait_for(gateway.communicate(), GATEWAY_TIMEOUT)
    finally:
        if gateway.returncode is None:
            gateway.kill()
            await gateway.wait()
    assert gateway.returncode == 0, err.decode()
    assert [line.split()[2:4] for line in lines] == [
        [b"user=alice", b"seq=1"],
        [b"user=alice", b"seq=2"],
    ]
    assert await push.outbox.stats("fcm") == {"length": 0, "pending": 0, "held": 0}


async def test_the_example_gateway_stops_on_a_wrong_key(push: PushApi) -> None:
    gateway = await start_gateway(push.url, "wrong")
    err = await finish_gateway(gateway)
    assert gateway.returncode == 2
    assert b"401" in err
