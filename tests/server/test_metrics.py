"""GET /metrics and /readyz on a real hub: counts after traffic over real sockets,
a slow consumer's close, and the Redis pub/sub canary behind /readyz."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from pathlib import Path

import pytest
import redis.asyncio
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect

from parley.protocol.errors import CloseCode, ErrorCode, ParleyError
from parley.server.core.buckets import Buckets
from parley.server.metrics import RESULTS, op_name
from parley.server.store.redis import RedisStore
from tests.server.conftest import RunningHub, start_hub, stop_hub
from tests.support.redis_server import RedisServer

Samples = Mapping[tuple[str, frozenset[tuple[str, str]]], float]
WAIT = 5.0  # seconds; every wait below ends as soon as its condition holds


async def scrape(hub: RunningHub) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of the exposition, by name and labels."""
    async with hub.http.get(f"{hub.api_url}/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = await response.text()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def exposed(samples: Samples, name: str, **labels: str) -> float:
    """The sample's value; a sample missing from the exposition fails the test."""
    key = (name, frozenset(labels.items()))
    assert key in samples, f"{name}{labels or ''} is not exposed"
    return samples[key]


def lag_count(samples: Samples) -> float:
    return value(samples, "parley_fanout_lag_seconds_count")


def test_ops_rows_have_one_slot_per_result_and_ops_keep_their_wire_names() -> None:
    from parley.protocol.messages import NotificationsRead, OfferToLikers, Post

    assert [op_name(k) for k in (Post, NotificationsRead, OfferToLikers)] == [
        "post",
        "notifications_read",
        "offer_to_likers",
    ]
    assert RESULTS[0] == "ok" and set(RESULTS[1:]) == {str(code) for code in ErrorCode}
    with pytest.raises(ValueError, match="not a request type"):
        op_name(Buckets)


def test_buckets_count_each_value_under_the_first_bound_it_does_not_exceed() -> None:
    buckets = Buckets((0.1, 1.0))
    for seconds in (0.05, 0.1, 0.5, 3.0):
        buckets.observe(seconds)
    assert buckets.cumulative() == [("0.1", 2), ("1.0", 3), ("+Inf", 4)]
    assert buckets.total == pytest.approx(3.65)
    with pytest.raises(ValueError, match="increasing"):
        Buckets((1.0, 0.5))


async def test_metrics_need_the_api_key(sqlite_url: str) -> None:
    hub = await start_hub(sqlite_url)
    try:
        async with hub.http.get(f"{hub.api_url}/metrics", headers={"Authorization": ""}) as r:
            assert r.status == 401
            assert (await r.json())["error"]["code"] == "unauthorized"
    finally:
        await stop_hub(hub)


async def test_a_scrape_counts_posts_stored_delivered_and_ops_exactly(store_url: str) -> None:
    hub = await start_hub(store_url)
    try:
        await hub.listing("L1")
        poster = await hub.client("u1")
        watcher = await hub.client("u2")
        await poster.subscribe("listing:L1")
        await watcher.subscribe("listing:L1")
        before = await scrape(hub)
        posts = 5
        for i in range(posts):
            await poster.post("listing:L1", f"is it still for sale? {i}")
        for i in range(posts):
            assert (await watcher.next_event(room="listing:L1"))["seq"] == i + 1
            assert (await poster.next_event(room="listing:L1"))["seq"] == i + 1
        with pytest.raises(ParleyError) as refused:
            await poster.request("frobnicate")
        assert refused.value.code is ErrorCode.unknown_op
        with pytest.raises(ParleyError) as refused:
            await poster.post("order:nope", "hello")
        after = await scrape(hub)

        def grew(name: str, **labels: str) -> float:
            return value(after, name, **labels) - value(before, name, **labels)

        assert grew("parley_ops_total", op="post", result="ok") == posts
        assert grew("parley_ops_total", op="invalid", result="unknown_op") == 1
        assert grew("parley_ops_total", op="post", result=str(refused.value.code)) == 1
        assert grew("parley_entries_stored_total") == posts  # one entry per post, nothing else
        assert grew("parley_deliveries_total") == 2 * posts  # two watchers, each event once
        assert lag_count(after) - lag_count(before) == posts  # each entry delivered once here
        assert exposed(after, "parley_fanout_lag_seconds_sum") >= 0
        assert value(after, "parley_connections") == 2
        assert value(after, "parley_connections_accepted_total") == 2
        assert value(after, "parley_rooms_followed") == 3  # listing:L1 and the two inboxes
        assert value(after, "parley_closes_total", code=str(CloseCode.slow_consumer)) == 0
        assert grew("parley_store_write_seconds_count") >= 1
        assert value(after, "parley_store_write_seconds_bucket", le="+Inf") == value(
            after, "parley_store_write_seconds_count"
        )
        assert exposed(after, "parley_push_outbox_items") == 0  # everyone was online
        assert ("parley_mail_sent_total", frozenset()) in after
        assert value(after, "process_open_fds") > 0
        reconnects = ("parley_redis_fanout_reconnects_total", frozenset[tuple[str, str]]())
        assert (reconnects in after) == isinstance(hub.app.store, RedisStore)
    finally:
        await stop_hub(hub)


async def test_a_slow_consumer_close_is_counted_under_4008(sqlite_url: str) -> None:
    hub = await start_hub(
        sqlite_url, send_buffer_bytes=64 * 1024, write_burst=10_000, member_write_burst=10_000
    )
    try:
        await hub.listing("L1")
        poster = await hub.client("u1")
        # A client that stops reading: one frame at a time, then TCP fills up behind it.
        slow = await connect(hub.ws_url, subprotocols=["parley.v1.json"], max_queue=1)  # type: ignore[list-item]
        await slow.send(f'{{"id":1,"op":"connect","token":"{hub.token("u3")}"}}')
        await slow.recv()
        await slow.send('{"id":2,"op":"subscribe","room":"listing:L1"}')
        await slow.recv()
        [slow_conn] = [c for c in hub.app.hub.conns if c.principal.user_id == "u3"]
        text = "x" * 3900
        for i in range(2000):  # bounded: the slow client is closed long before the end
            await poster.post("listing:L1", f"{i} {text}")
            if slow_conn.closing:
                break
        assert slow_conn.closing, "the slow consumer was never closed"
        samples = await scrape(hub)
        assert value(samples, "parley_closes_total", code=str(CloseCode.slow_consumer)) == 1
        assert value(samples, "parley_closes_total", code=str(CloseCode.too_many_errors)) == 0
        slow.transport.abort()
    finally:
        await stop_hub(hub)


async def test_a_gateway_waiting_on_a_long_poll_is_counted_until_it_is_answered(
    sqlite_url: str,
) -> None:
    hub = await start_hub(sqlite_url)
    try:
        assert exposed(await scrape(hub), "parley_push_long_polls") == 0
        query = {"group": "fcm", "consumer": "gw-1", "wait": "20"}
        waiting = asyncio.ensure_future(hub.http.get(f"{hub.api_url}/v1/push", params=query))
        async with asyncio.timeout(WAIT):
            while exposed(await scrape(hub), "parley_push_long_polls") != 1:
                await asyncio.sleep(0.01)
        await hub.listing("L1")
        assert (await hub.api("PUT", "/v1/users/bob", {"name": "bob"}))[0] == 200
        poster = await hub.client("u1")
        await poster.post("listing:L1", "@bob have a look")  # bob is away: pushed
        async with await asyncio.wait_for(waiting, WAIT) as response:
            assert [i["user_id"] for i in (await response.json())["items"]] == ["bob"]
        assert exposed(await scrape(hub), "parley_push_long_polls") == 0
    finally:
        await stop_hub(hub)


# The /readyz canary, on a real Redis.


async def readyz(hub: RunningHub) -> tuple[int, str]:
    async with hub.http.get(f"{hub.api_url}/readyz") as response:
        body = await response.json()
        return response.status, body.get("error", {}).get("message", "")


async def until_ready(hub: RunningHub) -> None:
    async with asyncio.timeout(WAIT):
        while (await readyz(hub))[0] != 200:
            await asyncio.sleep(0.02)


async def subscribers(client: redis.asyncio.Redis, channel: bytes, sharded: bool) -> int:
    counts = await (client.pubsub_shardnumsub if sharded else client.pubsub_numsub)(channel)
    return int(counts[0][1])


async def test_readyz_sends_a_canary_around_through_redis(redis_server: RedisServer) -> None:
    redis_server.start()
    await redis_server.flushall()
    hub = await start_hub(redis_server.url)
    store = hub.app.store
    assert isinstance(store, RedisStore)
    fanout = store.fanout
    store._canary_timeout = 0.3  # the wait for an echo that never comes, kept short here
    channel, sharded = fanout._canary_channel, fanout._sharded
    outsider = redis.asyncio.Redis(host="127.0.0.1", port=redis_server.port)
    bystander = outsider.pubsub()
    try:
        await hub.client("u1")  # the hub follows the member's inbox: a pub/sub client
        assert await readyz(hub) == (200, "")

        # Redis forgets the hub's subscription while the connection stays up.
        assert fanout._conn is not None
        await fanout._conn.send_command(fanout._command("UNSUBSCRIBE"), channel, check_health=False)
        async with asyncio.timeout(WAIT):
            while await subscribers(outsider, channel, sharded):
                await asyncio.sleep(0.01)
        assert fanout.live  # what /readyz looked at before the canary
        status, reason = await readyz(hub)
        assert (status, reason) == (503, "the pub/sub canary has no subscriber: the hub is deaf")

        # Someone else hears the canary, this hub does not: the echo's wait runs out.
        await (bystander.ssubscribe if sharded else bystander.subscribe)(channel)
        async with asyncio.timeout(WAIT):
            while not await subscribers(outsider, channel, sharded):
                await asyncio.sleep(0.01)
        status, reason = await readyz(hub)
        assert (status, reason) == (503, "the pub/sub canary did not come back within 0.3s")

        # The pub/sub connection killed: the hub reconnects, subscribes again, is ready.
        before = value(await scrape(hub), "parley_redis_fanout_reconnects_total")
        assert redis_server.client().client_kill_filter(_type="pubsub") >= 1
        await until_ready(hub)
        after = value(await scrape(hub), "parley_redis_fanout_reconnects_total")
        assert after == before + 1
    finally:
        await bystander.aclose()  # type: ignore[no-untyped-call]
        await outsider.aclose()
        await stop_hub(hub)


# Logs name ids, never members' words or addresses.

SECRET_WORDS = "ourlittlesecret"
ADDRESS = "buyer.private@example.com"


async def test_logs_name_ids_never_bodies_or_addresses(
    store_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="parley")
    hub = await start_hub(store_url, mail_dir=str(tmp_path / "mail"))
    try:
        for user, name, email in (("b1", "bob", ADDRESS), ("s1", "sue", "sue@example.com")):
            status, _ = await hub.api("PUT", f"/v1/users/{user}", {"name": name, "email": email})
            assert status == 200
        await hub.listing("L1", seller="s1")
        await hub.order("O1", "L1", "b1", "s1")
        buyer = await hub.client("b1", "bob")
        seller = await hub.client("s1", "sue")
        await buyer.subscribe("listing:L1")
        posted = await buyer.post("listing:L1", f"@sue {SECRET_WORDS} write me at {ADDRESS}")
        await buyer.edit("listing:L1", posted["seq"], f"{SECRET_WORDS} edited")
        await seller.subscribe("order:O1")
        await seller.post("order:O1", f"{SECRET_WORDS}: ship to 1 Main St, mail {ADDRESS}")
        with pytest.raises(ParleyError):  # refused, and not logged with its words
            await buyer.request("frobnicate", text=SECRET_WORDS)
        async with asyncio.timeout(WAIT):
            while hub.app.mail.sent < 2:  # both confirmation e-mails went out
                await asyncio.sleep(0.01)
    finally:
        await stop_hub(hub)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "order=O1" in logged  # the hub did log, by id
    assert SECRET_WORDS not in logged
    assert ADDRESS not in logged and "sue@example.com" not in logged
