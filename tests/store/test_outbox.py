"""The push outbox contract: every backend in ``conftest.BACKENDS`` passes all of it.

Time is a ``FakeClock``: a visibility timeout passes when a test says so.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from parley.protocol.errors import ErrorCode, ParleyError
from parley.server.core.clock import FakeClock, to_ms
from parley.server.core.model import UserId
from parley.server.store import Store, StoreUnavailable, open_store
from parley.server.store.outbox import (
    PUSHED_KEEP_MS,
    Delivery,
    PushItem,
    PushOutbox,
    open_outbox,
)
from tests.store.conftest import BACKENDS
from tests.support.closed_port import closed_port
from tests.support.long_poll import until_long_polls
from tests.support.redis_server import RedisServer

VT = 60.0  # the visibility timeout, in FakeClock seconds
# XADD's approximate MAXLEN trims whole stream nodes (stream-node-max-entries).
TRIM_SLACK = {"sqlite": 0, "redis": 100, "redis-cluster": 100}


def item(user: str, seq: int, kind: str = "mention", **data: Any) -> PushItem:
    return PushItem(
        user_id=UserId(user),
        seq=seq,
        kind=kind,
        title=f"Title {seq}",
        body=f"Body {seq} — é",
        link=f"https://marketplace.example/notifications/{seq}",
        locale="fr-CA",
        ts=1_800_000_000_000 + seq,
        data={"room": "listing:l1", "seq": seq, **data},
    )


def keys(deliveries: list[Delivery]) -> list[tuple[str, int]]:
    return [(d.item.user_id, d.item.seq) for d in deliveries]


@dataclass
class Env:
    backend: str
    url: str
    redis_server: RedisServer | None
    clock: FakeClock = field(default_factory=FakeClock)
    read: set[tuple[str, int]] = field(default_factory=set)
    store: Store = field(init=False)
    box: PushOutbox = field(init=False)
    extra: list[PushOutbox] = field(default_factory=list)

    async def is_read(self, user_id: UserId, seq: int) -> bool:
        return (user_id, seq) in self.read

    async def start(self) -> None:
        self.store = open_store(self.url)
        await self.store.open()
        self.box = await self.outbox()

    async def outbox(self, *, max_items: int = 1000) -> PushOutbox:
        box = open_outbox(
            self.store,
            clock=self.clock,
            is_read=self.is_read,
            visibility_timeout=VT,
            max_items=max_items,
        )
        await box.open()
        self.extra.append(box)
        return box

    async def stop(self) -> None:
        for box in self.extra:
            await box.close()
        self.extra.clear()
        await self.store.close()

    async def restart(self) -> None:
        """Close everything; restart Redis itself (AOF replay; not a whole cluster:
        its restarts are the failover tests'); open again."""
        await self.stop()
        if self.backend == "redis" and self.redis_server is not None:
            self.redis_server.restart()
        await self.start()


@pytest.fixture(params=BACKENDS)
async def env(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Env]:
    redis_server: RedisServer | None = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'parley.sqlite3'}"
    else:
        redis_server = request.getfixturevalue(
            "redis_server" if request.param == "redis" else "redis_cluster"
        )
        if request.param == "redis":
            redis_server.start()
        url = redis_server.url
        await redis_server.flushall()
    running = Env(request.param, url, redis_server)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


async def drain(
    box: PushOutbox, group: str, consumer: str = "c1", rounds: int = 50
) -> list[Delivery]:
    """Fetch and ack until nothing comes; bounded."""
    got: list[Delivery] = []
    for _ in range(rounds):
        batch = await box.fetch(group, consumer, count=100, wait=0)
        if not batch:
            return got
        got += batch
        await box.ack(group, [d.id for d in batch])
    raise AssertionError(f"still not drained after {rounds} rounds")


# Prepare and commit: a notification's push item, journaled.


async def test_a_prepared_item_goes_out_only_once_committed_with_its_seq(env: Env) -> None:
    pushed = item("alice", 0, "order_status", status="shipped")
    assert await env.box.prepare("alice\0k1", pushed)
    assert await env.box.fetch("g", "c1", count=10, wait=0) == []
    env.clock.advance(1)
    assert await env.box.prepared(to_ms(env.clock.now()), 10) == [("alice\0k1", pushed)]
    assert await env.box.commit("alice\0k1", 7)
    [got] = await env.box.fetch("g", "c1", count=10, wait=0)
    assert got.item == replace(pushed, seq=7)
    assert await env.box.prepared(to_ms(env.clock.now()), 10) == []


async def test_a_key_commits_once_and_once_pushed_is_not_prepared_again(env: Env) -> None:
    assert await env.box.prepare("alice\0k1", item("alice", 0))
    assert await env.box.prepare("alice\0k1", item("alice", 0, extra=1))  # keeps the first
    assert await env.box.commit("alice\0k1", 3)
    assert not await env.box.commit("alice\0k1", 3)
    assert not await env.box.commit("alice\0never", 4)
    assert not await env.box.prepare("alice\0k1", item("alice", 0))
    assert keys(await drain(env.box, "g")) == [("alice", 3)]
    env.clock.advance(PUSHED_KEEP_MS / 1000 + 1)  # a later commit forgets it
    assert await env.box.prepare("bob\0k2", item("bob", 0))
    assert await env.box.commit("bob\0k2", 1)
    assert await env.box.prepare("alice\0k1", item("alice", 0))


async def test_prepared_lists_the_oldest_first_up_to_limit_and_before_a_time(env: Env) -> None:
    for n in range(3):
        await env.box.prepare(f"u{n}\0k", item(f"u{n}", 0))
        env.clock.advance(1)
    now = to_ms(env.clock.now())
    assert [k for k, _ in await env.box.prepared(now, 10)] == ["u0\0k", "u1\0k", "u2\0k"]
    assert [k for k, _ in await env.box.prepared(now, 2)] == ["u0\0k", "u1\0k"]
    assert [k for k, _ in await env.box.prepared(now - 1500, 10)] == ["u0\0k", "u1\0k"]


# Enqueue, fetch, ack.


async def test_an_item_goes_out_with_every_field_and_once_acked_never_again(env: Env) -> None:
    pushed = item("alice", 1, "order_status", status="shipped", tracking="1Z999")
    await env.box.enqueue([pushed])

    [delivery] = await env.box.fetch("gw", "c1", count=10, wait=0)
    assert delivery.item == pushed
    assert (delivery.deliveries, delivery.read) == (1, False)
    assert isinstance(delivery.id, str) and delivery.id
    assert await env.box.stats("gw") == {"length": 1, "pending": 1, "held": 1}

    assert await env.box.ack("gw", [delivery.id]) == 1
    assert await env.box.ack("gw", [delivery.id]) == 0  # already acked
    env.clock.advance(VT * 3)
    assert await env.box.fetch("gw", "c1", count=10, wait=0) == []
    assert await env.box.fetch("gw", "c2", count=10, wait=0) == []
    assert (await env.box.stats("gw"))["pending"] == 0


async def test_a_fetch_hands_out_at_most_count_items_in_enqueue_order(env: Env) -> None:
    await env.box.enqueue([item(f"u{n}", 1) for n in range(5)])
    first = await env.box.fetch("gw", "c1", count=2, wait=0)
    rest = await env.box.fetch("gw", "c1", count=10, wait=0)
    assert keys(first) == [("u0", 1), ("u1", 1)]
    assert keys(rest) == [("u2", 1), ("u3", 1), ("u4", 1)]


@pytest.mark.parametrize("bad_id", ["nope", "", "999999", "0-1", "99999999999999-0", "1-", "-1"])
async def test_ack_ignores_ids_it_never_handed_out(env: Env, bad_id: str) -> None:
    await env.box.enqueue([item("alice", 1)])
    assert await env.box.ack("gw", [bad_id]) == 0
    [delivery] = await env.box.fetch("gw", "c1", count=1, wait=0)
    assert await env.box.ack("gw", [bad_id, delivery.id, delivery.id]) == 1


async def test_an_item_not_yet_handed_to_a_group_cannot_be_acked_for_it(env: Env) -> None:
    await env.box.enqueue([item("alice", 1)])
    [seen_by_a] = await env.box.fetch("a", "c1", count=1, wait=0)
    assert await env.box.ack("b", [seen_by_a.id]) == 0  # b has not fetched it
    [seen_by_b] = await env.box.fetch("b", "c1", count=1, wait=0)
    assert seen_by_b.id == seen_by_a.id


# At least once.


async def test_an_unacked_item_comes_back_after_the_visibility_timeout(env: Env) -> None:
    await env.box.enqueue([item("alice", 1)])
    [first] = await env.box.fetch("gw", "c1", count=1, wait=0)

    env.clock.advance(VT - 0.001)
    assert await env.box.fetch("gw", "c2", count=1, wait=0) == []
    assert await env.box.fetch("gw", "c1", count=1, wait=0) == []  # its holder neither
    env.clock.advance(0.001)
    [again] = await env.box.fetch("gw", "c2", count=1, wait=0)
    assert (again.id, again.item, again.deliveries) == (first.id, first.item, 2)
    assert await env.box.stats("gw") == {"length": 1, "pending": 1, "held": 1}

    env.clock.advance(VT)
    [third] = await env.box.fetch("gw", "c1", count=1, wait=0)
    assert third.deliveries == 3
    # A late ack from the first holder still counts: the item is done.
    assert await env.box.ack("gw", [first.id]) == 1
    env.clock.advance(VT)
    assert await env.box.fetch("gw", "c2", count=1, wait=0) == []


async def test_two_consumers_never_hold_one_item_even_when_fetching_at_once(env: Env) -> None:
    members = [f"m{n}" for n in range(12)]
    await env.box.enqueue([item(m, seq) for seq in range(1, 6) for m in members])
    consumers = [f"c{n}" for n in range(8)]
    delivered: dict[str, list[int]] = defaultdict(list)
    for _ in range(20):
        batches = await asyncio.gather(
            *(env.box.fetch("gw", c, count=7, wait=0) for c in consumers)
        )
        if not any(batches):
            break
        ids = [d.id for batch in batches for d in batch]
        assert len(ids) == len(set(ids)), "one item went to two consumers"
        holders: dict[str, set[str]] = defaultdict(set)
        for consumer, batch in zip(consumers, batches, strict=True):
            for d in batch:
                holders[d.item.user_id].add(consumer)
                delivered[d.item.user_id].append(d.item.seq)
        assert all(len(h) == 1 for h in holders.values()), "one member held by two consumers"
        for batch in batches:
            if batch:
                await env.box.ack("gw", [d.id for d in batch])
    assert sorted(delivered) == sorted(members)
    assert all(seqs == [1, 2, 3, 4, 5] for seqs in delivered.values()), delivered


# In order per member.


async def test_a_members_items_go_out_in_seq_order_even_if_enqueued_out_of_it(env: Env) -> None:
    await env.box.enqueue([item("alice", 3), item("bob", 1), item("alice", 1)])
    await env.box.enqueue([item("alice", 2)])
    got = await env.box.fetch("gw", "c1", count=10, wait=0)
    assert keys(got) == [("alice", 1), ("bob", 1), ("alice", 2), ("alice", 3)]


async def test_a_crashed_consumer_delays_its_member_not_the_others(env: Env) -> None:
    await env.box.enqueue([item("x", 1), item("y", 1), item("x", 2), item("y", 2)])
    [held_by_dead] = await env.box.fetch("gw", "dead", count=1, wait=0)
    assert keys([held_by_dead]) == [("x", 1)]
    # "dead" never acks. x's second item must not overtake its first.
    got = await env.box.fetch("gw", "live", count=10, wait=0)
    assert keys(got) == [("y", 1), ("y", 2)]
    await env.box.ack("gw", [d.id for d in got])
    assert await env.box.fetch("gw", "live", count=10, wait=0) == []

    env.clock.advance(VT)
    got = await env.box.fetch("gw", "live", count=10, wait=0)
    assert [(k, d.deliveries) for k, d in zip(keys(got), got, strict=True)] == [
        (("x", 1), 2),
        (("x", 2), 1),
    ]


async def test_one_fetch_may_take_several_items_of_a_member_but_not_overtake_a_hold(
    env: Env,
) -> None:
    await env.box.enqueue([item("x", 1), item("x", 2)])
    assert keys(await env.box.fetch("gw", "c1", count=10, wait=0)) == [("x", 1), ("x", 2)]
    await env.box.enqueue([item("x", 3), item("y", 1)])
    # Not even the holder: restarted under the same name, it may have lost x 1 and 2.
    assert keys(await env.box.fetch("gw", "c1", count=10, wait=0)) == [("y", 1)]
    assert await env.box.fetch("gw", "c2", count=10, wait=0) == []
    env.clock.advance(VT)
    got = await env.box.fetch("gw", "c1", count=10, wait=0)
    assert [(k, d.deliveries) for k, d in zip(keys(got), got, strict=True)] == [
        (("x", 1), 2),
        (("x", 2), 2),
        (("x", 3), 1),
        (("y", 1), 2),
    ]


@pytest.fixture
def woken_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """A waiting fetch looks again only when woken: the backends' periodic
    re-checks (for clock jumps, for items enqueued by other hubs) are pushed
    past every wait below, so an answer can only come from the wake-up."""
    from parley.server.store import redis_outbox, sqlite_outbox

    monkeypatch.setattr(sqlite_outbox, "RECHECK_MAX", 60.0)
    monkeypatch.setattr(redis_outbox, "POLL_INTERVAL", 60.0)


@pytest.mark.usefixtures("woken_only")
async def test_an_ack_releases_the_member_to_a_waiting_consumer(env: Env) -> None:
    await env.box.enqueue([item("x", 1), item("x", 2)])
    [first] = await env.box.fetch("gw", "c1", count=1, wait=0)
    waiting = asyncio.create_task(env.box.fetch("gw", "c2", count=10, wait=10))
    await until_long_polls(env.box)  # x is held by c1: c2 found nothing and waits
    assert not waiting.done()
    await env.box.ack("gw", [first.id])
    got = await asyncio.wait_for(waiting, 5)
    assert keys(got) == [("x", 2)]


# Long-poll.


@pytest.mark.usefixtures("woken_only")
async def test_a_long_poll_returns_as_soon_as_an_item_is_enqueued(env: Env) -> None:
    waiting = asyncio.create_task(env.box.fetch("gw", "c1", count=10, wait=10))
    await until_long_polls(env.box)
    assert not waiting.done()
    await env.box.enqueue([item("alice", 1)])
    got = await asyncio.wait_for(waiting, 5)
    assert keys(got) == [("alice", 1)]


async def test_wait_zero_returns_at_once_when_there_is_nothing(env: Env) -> None:
    assert await asyncio.wait_for(env.box.fetch("gw", "c1", count=10, wait=0), 5) == []


async def test_closing_ends_a_long_poll_and_refuses_later_calls(env: Env) -> None:
    waiting = asyncio.create_task(env.box.fetch("gw", "c1", count=10, wait=30))
    await until_long_polls(env.box)
    await env.box.close()
    assert await asyncio.wait_for(waiting, 5) == []
    assert env.box.long_polls == 0
    for call in (
        env.box.fetch("gw", "c1", count=1, wait=0),
        env.box.enqueue([item("alice", 1)]),
        env.box.ack("gw", ["1"]),
    ):
        with pytest.raises(StoreUnavailable):
            await call


# Groups.


async def test_every_group_gets_every_item_and_acks_are_per_group(env: Env) -> None:
    pushed = [item("alice", 1), item("bob", 1), item("alice", 2)]
    await env.box.enqueue(pushed)
    a = await env.box.fetch("email-fallback", "c1", count=10, wait=0)
    b = await env.box.fetch("fcm", "c1", count=10, wait=0)  # the same consumer name: no matter
    assert [d.item for d in a] == [d.item for d in b] == pushed
    assert all(d.deliveries == 1 for d in a + b)
    assert await env.box.ack("email-fallback", [d.id for d in a]) == 3
    env.clock.advance(VT)
    assert await env.box.fetch("email-fallback", "c1", count=10, wait=0) == []
    again = await env.box.fetch("fcm", "c2", count=10, wait=0)
    assert [(d.item, d.deliveries) for d in again] == [(p, 2) for p in pushed]


async def test_a_new_group_starts_at_the_oldest_item_retained(env: Env) -> None:
    await env.box.enqueue([item("alice", 1), item("alice", 2)])  # before any group
    got = await drain(env.box, "first")
    assert keys(got) == [("alice", 1), ("alice", 2)]
    # Acked by every group there was: gone, so a group created now starts after them.
    await env.box.enqueue([item("alice", 3)])
    assert keys(await drain(env.box, "second")) == [("alice", 3)]
    assert keys(await drain(env.box, "first")) == [("alice", 3)]


# The read flag.


async def test_read_is_asked_at_fetch_time(env: Env) -> None:
    await env.box.enqueue([item("alice", 1), item("alice", 2)])
    env.read.add(("alice", 1))
    got = await env.box.fetch("gw", "c1", count=10, wait=0)
    assert [(d.item.seq, d.read) for d in got] == [(1, True), (2, False)]
    env.read.add(("alice", 2))
    env.clock.advance(VT)
    again = await env.box.fetch("gw", "c1", count=10, wait=0)
    assert [(d.item.seq, d.read) for d in again] == [(1, True), (2, True)]


async def test_without_is_read_nothing_is_read(env: Env) -> None:
    box = open_outbox(env.store, clock=env.clock, is_read=None, visibility_timeout=VT, max_items=10)
    await box.open()
    try:
        await box.enqueue([item("alice", 1)])
        [d] = await box.fetch("gw", "c1", count=1, wait=0)
        assert d.read is False
    finally:
        await box.close()


async def test_a_read_state_that_cannot_be_had_counts_as_unread(env: Env) -> None:
    async def unavailable(user_id: UserId, seq: int) -> bool:
        raise StoreUnavailable()

    box = open_outbox(
        env.store, clock=env.clock, is_read=unavailable, visibility_timeout=VT, max_items=10
    )
    await box.open()
    try:
        await box.enqueue([item("alice", 1)])
        [d] = await box.fetch("gw", "c1", count=1, wait=0)
        assert d.read is False
    finally:
        await box.close()


# Durability and bounds.


async def test_items_order_and_holds_survive_a_restart(env: Env) -> None:
    await env.box.enqueue([item("x", 1), item("x", 2), item("y", 1), item("y", 2)])
    [x1] = await env.box.fetch("gw", "c1", count=1, wait=0)
    [y1] = await env.box.fetch("gw", "c2", count=1, wait=0)
    await env.box.ack("gw", [y1.id])

    await env.restart()

    [y2] = await env.box.fetch("gw", "c3", count=10, wait=0)  # x is still held by c1
    assert keys([y2]) == [("y", 2)]
    await env.box.ack("gw", [y2.id])
    env.clock.advance(VT)
    got = await env.box.fetch("gw", "c3", count=10, wait=0)
    assert keys(got) == [("x", 1), ("x", 2)]
    assert (got[0].id, got[0].deliveries) == (x1.id, 2)
    assert got[0].item == item("x", 1)


async def test_the_outbox_keeps_at_most_max_items_dropping_the_oldest(env: Env) -> None:
    box = await env.outbox(max_items=10)
    await box.enqueue([item("held", 1)])
    [held] = await box.fetch("gw", "c1", count=1, wait=0)
    for start in range(0, 250, 50):
        await box.enqueue([item(f"u{n % 7}", n) for n in range(start, start + 50)])

    stats = await box.stats("gw")
    assert 10 <= stats["length"] <= 10 + TRIM_SLACK[env.backend]
    env.clock.advance(VT)  # the held item, trimmed, does not come back
    got = await drain(box, "gw")
    assert held.id not in {d.id for d in got}
    assert len(got) == stats["length"]
    assert sorted(d.item.seq for d in got) == list(range(250 - len(got), 250))


async def test_items_every_group_acked_are_dropped(env: Env) -> None:
    await env.box.enqueue([item("alice", n) for n in range(1, 6)])
    a = await env.box.fetch("a", "c1", count=10, wait=0)
    b = await env.box.fetch("b", "c1", count=10, wait=0)
    await env.box.ack("a", [d.id for d in a])
    assert (await env.box.stats("a"))["length"] == 5  # b has not acked them
    await env.box.ack("b", [d.id for d in b[:2]])
    assert await env.box.stats("b") == {"length": 3, "pending": 3, "held": 3}
    await env.box.ack("b", [d.id for d in b[2:]])
    assert await env.box.stats("a") == {"length": 0, "pending": 0, "held": 0}


# Bad input.


@pytest.mark.parametrize(
    "name", ["", "a b", "x" * 65, "é", "a/b", "a\n", "~parked", "{push}", "a*"]
)
async def test_bad_group_and_consumer_names_are_refused(env: Env, name: str) -> None:
    calls = [
        env.box.fetch(name, "c1", count=1, wait=0),
        env.box.fetch("gw", name, count=1, wait=0),
        env.box.ack(name, ["1"]),
        env.box.stats(name),
    ]
    for call in calls:
        with pytest.raises(ParleyError) as caught:
            await call
        assert caught.value.code == ErrorCode.bad_request


@pytest.mark.parametrize("name", ["a", "x" * 64, "fcm.eu-west:1", "A_b-c.d:e"])
async def test_good_names_are_taken(env: Env, name: str) -> None:
    await env.box.enqueue([item("alice", 1)])
    assert len(await env.box.fetch(name, name, count=1, wait=0)) == 1


@pytest.mark.parametrize("count", [0, -1, 1001])
async def test_a_bad_count_is_refused(env: Env, count: int) -> None:
    with pytest.raises(ParleyError) as caught:
        await env.box.fetch("gw", "c1", count=count, wait=0)
    assert caught.value.code == ErrorCode.bad_request


# Backend specifics.


async def test_on_redis_every_key_is_under_the_prefix_with_one_hash_tag(
    redis_server: RedisServer,
) -> None:
    redis_server.start()
    await redis_server.flushall()
    env = Env("redis", redis_server.url, redis_server)
    await env.start()
    try:
        await env.box.enqueue([item("alice", 1)])
        assert len(await env.box.fetch("fcm.eu:1", "c1", count=1, wait=0)) == 1
    finally:
        await env.stop()
    with redis_server.client() as admin:
        found = sorted(k.decode() for k in admin.keys("parley:{push}:*"))
        groups = [g["name"].decode() for g in admin.xinfo_groups("parley:{push}:stream")]
    assert found == [
        "parley:{push}:group:fcm.eu:1:due",
        "parley:{push}:group:fcm.eu:1:held",
        "parley:{push}:stream",
    ]
    assert groups == ["fcm.eu:1"]


async def test_on_redis_an_unreachable_server_is_unavailable(free_redis_url: str) -> None:
    store = open_store(free_redis_url)
    box = open_outbox(store, clock=FakeClock(), is_read=None, visibility_timeout=VT, max_items=10)
    try:
        for call in (
            box.enqueue([item("alice", 1)]),
            box.fetch("gw", "c1", count=1, wait=0),
            box.ack("gw", ["1-1"]),
            box.stats("gw"),
        ):
            with pytest.raises(StoreUnavailable):
                await call
    finally:
        await box.close()
        await store.close()


async def test_on_sqlite_a_closed_store_is_unavailable(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'p.sqlite3'}")
    await store.open()
    box = open_outbox(store, clock=FakeClock(), is_read=None, visibility_timeout=VT, max_items=10)
    await box.open()
    await store.close()
    with pytest.raises(StoreUnavailable):
        await box.enqueue([item("alice", 1)])
    with pytest.raises(StoreUnavailable):
        await box.fetch("gw", "c1", count=1, wait=0)


@pytest.fixture
def free_redis_url() -> Iterator[str]:
    """A Redis URL where nothing answers: a port the test holds, never listened on."""
    with closed_port() as port:
        yield f"redis://127.0.0.1:{port}/0"


@pytest.fixture
async def redis_env(redis_server: RedisServer) -> AsyncIterator[Env]:
    redis_server.start()
    await redis_server.flushall()
    running = Env("redis", redis_server.url, redis_server)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


async def test_on_redis_out_of_memory_refuses_an_enqueue_before_it_stores_anything(
    redis_env: Env, redis_server: RedisServer
) -> None:
    box = redis_env.box
    await box.enqueue([item("alice", 1)])
    with redis_server.client() as admin:
        admin.config_set("maxmemory", "1")  # with noeviction, every new write is refused
        try:
            with pytest.raises(StoreUnavailable):
                await box.enqueue([item("bob", 1), item("chloe", 1)])
        finally:
            admin.config_set("maxmemory", "0")
    assert keys(await box.fetch("gw", "c1", count=10, wait=0)) == [("alice", 1)]


async def test_on_redis_a_replica_refuses_every_change_as_unavailable(
    redis_env: Env, redis_server: RedisServer
) -> None:
    box = redis_env.box
    await box.enqueue([item("alice", 1)])
    [held] = await box.fetch("gw", "c1", count=1, wait=0)
    await box.enqueue([item("bob", 1)])
    with redis_server.client() as admin:
        # A replica of nothing answers READONLY to writes, as after a failover.
        admin.execute_command("REPLICAOF", "127.0.0.1", "1")
        try:
            with pytest.raises(StoreUnavailable):
                await box.enqueue([item("chloe", 1)])
            with pytest.raises(StoreUnavailable):
                await box.fetch("gw", "c2", count=10, wait=0)
            with pytest.raises(StoreUnavailable):
                await box.ack("gw", [held.id])
        finally:
            admin.execute_command("REPLICAOF", "NO", "ONE")
    assert keys(await box.fetch("gw", "c2", count=10, wait=0)) == [("bob", 1)]
    assert await box.ack("gw", [held.id]) == 1


# A member's erasure.


async def test_drop_member_removes_their_items_held_or_waiting_and_prepared(env: Env) -> None:
    box = await env.outbox(max_items=5000)
    many = [item("alice" if i % 3 else "bob", i) for i in range(1, 1101)]  # several pages
    await box.enqueue(many)
    held = await box.fetch("fcm", "c1", count=1, wait=0)
    assert keys(held) == [("alice", 1)]
    taken = await box.fetch("apns", "c1", count=50, wait=0)
    assert {d.item.user_id for d in taken} == {"alice", "bob"}
    await box.prepare("n-alice", item("alice", 0))
    await box.prepare("n-bob", item("bob", 0))
    alices = sum(i.user_id == "alice" for i in many)

    assert await box.drop_member(UserId("alice")) == alices
    assert await box.drop_member(UserId("alice")) == 0

    assert [key for key, _ in await box.prepared(to_ms(env.clock.now()) + 1, 10)] == ["n-bob"]
    assert (await box.stats("fcm"))["length"] == len(many) - alices
    env.clock.advance(VT)  # what was held comes back, if it still is
    for group in ("new", "fcm", "apns"):  # a new group starts at the oldest retained
        got = await drain(box, group)
        assert {d.item.user_id for d in got} == {"bob"}, group
        if group == "new":
            assert len(got) == len(many) - alices
    assert await box.ack("fcm", [d.id for d in held + taken]) == 0
