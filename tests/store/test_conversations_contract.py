"""The read marks and "My orders" contract (R9, R10): every backend in
``conftest.BACKENDS`` passes it.

A mark moves only forward and never past the room's last message; unread
counts the others' messages after it; a member's orders come newest first,
per role, page by page. All of it outlives the store.
"""

from __future__ import annotations

import asyncio

from redis.crc import key_slot

from parley.server.core.model import Author, Draft, ListingId, Order, OrderId, UserId
from parley.server.store import Store
from parley.server.store.base import UNREAD_CAP
from tests.store.conftest import opened
from tests.support.redis_server import RedisServer

T0 = 1_800_000_000_000
BUYER = UserId("bea")
SELLER = UserId("sam")
OTHER = UserId("olga")
ROOM = "order:o1"


def comment(author: UserId, text: str = "Bonjour") -> Draft:
    return Draft(kind="comment", text=text, ts=T0, author=Author(author, author))


def system(text: str = "Order confirmed.") -> Draft:
    return Draft(kind="system", text=text, ts=T0)


def receipt(reader: UserId, up_to: int) -> Draft:
    data = {"user_id": reader, "up_to": up_to}
    return Draft(kind="receipt", text="", ts=T0, author=Author(reader, reader), data=data)


def order(order_id: str, created_ts: int, buyer: UserId = BUYER, seller: UserId = SELLER) -> Order:
    return Order(
        OrderId(order_id), ListingId(f"l-{order_id}"), buyer, seller, created_ts=created_ts
    )


def ids(orders: list[Order]) -> list[str]:
    return [o.id for o in orders]


async def append_all(store: Store, room: str, drafts: list[Draft]) -> None:
    for draft in drafts:
        await store.append(room, draft)


# Read marks.


async def test_r10_a_mark_moves_only_forward(store: Store) -> None:
    await append_all(store, ROOM, [system(), comment(BUYER), comment(SELLER), comment(SELLER)])
    assert await store.set_read_mark(ROOM, BUYER, 2) == (2, True)
    assert await store.set_read_mark(ROOM, BUYER, 1) == (2, False)
    assert await store.set_read_mark(ROOM, BUYER, 2) == (2, False)
    assert await store.set_read_mark(ROOM, BUYER, 0) == (2, False)
    assert await store.set_read_mark(ROOM, BUYER, 3) == (3, True)
    assert await store.read_marks(ROOM) == {BUYER: 3}
    assert await store.set_read_mark(ROOM, SELLER, 4) == (4, True)
    assert await store.read_marks(ROOM) == {BUYER: 3, SELLER: 4}
    assert await store.read_marks("order:other") == {}


async def test_r10_a_mark_never_passes_the_last_message(store: Store) -> None:
    assert await store.set_read_mark(ROOM, BUYER, 5) == (0, False)  # an empty room
    await append_all(store, ROOM, [system(), comment(SELLER)])
    assert await store.set_read_mark(ROOM, BUYER, 2**63 - 1) == (2, True)
    # A receipt, an edit and a deletion are in the log, and no message to read.
    await store.append(ROOM, receipt(BUYER, 2))
    edit = Draft(kind="edit", text="Bonsoir", ts=T0, author=Author(SELLER, SELLER), target=2)
    await store.append(ROOM, edit)
    assert (await store.head(ROOM)).seq == 4
    assert await store.set_read_mark(ROOM, BUYER, 4) == (2, False)
    assert await store.set_read_mark(ROOM, SELLER, 4) == (2, True)
    await store.append(ROOM, comment(SELLER))  # seq 5
    assert await store.set_read_mark(ROOM, BUYER, 9) == (5, True)
    assert await store.read_marks(ROOM) == {BUYER: 5, SELLER: 2}


async def test_r10_concurrent_reads_keep_the_highest_mark(store: Store) -> None:
    await append_all(store, ROOM, [comment(SELLER) for _ in range(20)])
    results = await asyncio.gather(*(store.set_read_mark(ROOM, BUYER, s) for s in range(1, 21)))
    assert sum(moved for _, moved in results) >= 1
    assert max(mark for mark, _ in results) == 20
    assert await store.read_marks(ROOM) == {BUYER: 20}


async def test_r10_unread_counts_the_others_messages_after_the_mark(store: Store) -> None:
    await append_all(
        store,
        ROOM,
        [system(), comment(BUYER), comment(SELLER), comment(BUYER), comment(SELLER)],
    )
    assert await store.unread_count(ROOM, BUYER) == 3  # the system message and two of Sam's
    assert await store.unread_count(ROOM, SELLER) == 3  # the system message and two of Bea's
    assert await store.unread_count(ROOM, OTHER) == 5
    await store.set_read_mark(ROOM, BUYER, 3)
    await store.append(ROOM, receipt(BUYER, 3))  # a receipt is not a message
    assert await store.unread_count(ROOM, BUYER) == 1
    await store.append(ROOM, comment(BUYER))  # one's own message is never unread
    assert await store.unread_count(ROOM, BUYER) == 1
    await store.set_read_mark(ROOM, BUYER, 99)
    assert await store.unread_count(ROOM, BUYER) == 0
    assert await store.unread_count(ROOM, SELLER) == 4
    assert await store.unread_count("order:empty", BUYER) == 0


async def test_r10_unread_counts_stop_at_the_cap(store: Store) -> None:
    # One's own messages first: the count reads past them (Redis reads in pages).
    own = [store.append(ROOM, comment(BUYER, f"mine {i}")) for i in range(450)]
    await asyncio.gather(*own)
    theirs = [store.append(ROOM, comment(SELLER, f"theirs {i}")) for i in range(UNREAD_CAP + 5)]
    await asyncio.gather(*theirs)
    assert await store.unread_count(ROOM, BUYER) == UNREAD_CAP
    assert await store.unread_count(ROOM, SELLER) == 450
    await store.set_read_mark(ROOM, BUYER, 450 + 10)
    assert await store.unread_count(ROOM, BUYER) == UNREAD_CAP + 5 - 10


# A member's orders.


async def test_r10_orders_of_a_member_per_role_newest_first(store: Store) -> None:
    for o in [
        order("o1", T0),
        order("o2", T0 + 20),
        order("o3", T0 + 10, buyer=OTHER),  # Bea is not its buyer
        order("o4", T0 + 30, buyer=SELLER, seller=BUYER),  # Bea sells this one
        order("o5", T0 + 20),  # the same millisecond as o2: ties by id, descending
    ]:
        await store.put_order(o)
    purchases = await store.orders_of(BUYER, "buyer", None, 10)
    assert ids(purchases) == ["o5", "o2", "o1"]
    assert purchases[-1] == order("o1", T0)
    assert ids(await store.orders_of(BUYER, "seller", None, 10)) == ["o4"]
    assert ids(await store.orders_of(SELLER, "seller", None, 10)) == ["o5", "o2", "o3", "o1"]
    assert ids(await store.orders_of(SELLER, "buyer", None, 10)) == ["o4"]
    assert await store.orders_of(UserId("nobody"), "buyer", None, 10) == []


async def test_r10_orders_page_with_before_and_limit(store: Store) -> None:
    for i in range(1, 8):
        await store.put_order(order(f"o{i}", T0 + i))
    first = await store.orders_of(BUYER, "buyer", None, 3)
    assert ids(first) == ["o7", "o6", "o5"]
    second = await store.orders_of(BUYER, "buyer", first[-1].created_ts, 3)  # exclusive
    assert ids(second) == ["o4", "o3", "o2"]
    last = await store.orders_of(BUYER, "buyer", second[-1].created_ts, 3)
    assert ids(last) == ["o1"]
    assert await store.orders_of(BUYER, "buyer", last[-1].created_ts, 3) == []
    assert await store.orders_of(BUYER, "buyer", None, 0) == []


async def test_r10_an_order_reported_again_is_listed_once(store: Store) -> None:
    await store.put_order(order("o1", T0))
    stored, created = await store.put_order(order("o1", T0 + 99))  # a retry, later
    assert not created and stored.created_ts == T0
    assert await store.set_order_status(OrderId("o1"), "shipped") is not None
    [listed] = await store.orders_of(BUYER, "buyer", None, 10)
    assert listed.id == "o1" and listed.created_ts == T0 and listed.status == "shipped"


# Durability.


async def test_r10_marks_and_orders_outlive_the_store(url: str) -> None:
    async with opened(url) as store:
        await store.put_order(order("o1", T0))
        await store.put_order(order("o2", T0 + 1))
        await append_all(store, ROOM, [system(), comment(SELLER), comment(SELLER)])
        await store.set_read_mark(ROOM, BUYER, 2)
        await store.set_read_mark(ROOM, SELLER, 3)

    async with opened(url) as store:
        assert await store.read_marks(ROOM) == {BUYER: 2, SELLER: 3}
        assert await store.set_read_mark(ROOM, BUYER, 1) == (2, False)
        assert await store.unread_count(ROOM, BUYER) == 1
        assert await store.unread_count(ROOM, SELLER) == 0
        assert ids(await store.orders_of(BUYER, "buyer", None, 10)) == ["o2", "o1"]
        assert ids(await store.orders_of(SELLER, "seller", None, 10)) == ["o2", "o1"]


# What only one backend promises.


async def test_redis_keeps_a_rooms_marks_on_the_rooms_slot(redis_server: RedisServer) -> None:
    await redis_server.flushall()
    async with opened(redis_server.url) as store:
        await store.append(ROOM, comment(SELLER))
        await store.set_read_mark(ROOM, BUYER, 1)
        with redis_server.client() as admin:
            keys = set(admin.keys(f"*{{{ROOM}}}*"))
    assert any(key.endswith(b":marks") for key in keys)
    assert len({key_slot(key) for key in keys}) == 1


async def test_redis_indexes_orders_stored_before_the_indexes_existed(
    redis_server: RedisServer,
) -> None:
    await redis_server.flushall()
    async with opened(redis_server.url) as store:
        await store.put_order(order("o1", T0))
        await store.put_order(order("o2", T0 + 1))
    with redis_server.client() as admin:  # as an older version left the data set
        admin.delete(*admin.keys("*{orders}*"))
    async with opened(redis_server.url) as store:
        assert ids(await store.orders_of(BUYER, "buyer", None, 10)) == ["o2", "o1"]
        assert ids(await store.orders_of(SELLER, "seller", None, 10)) == ["o2", "o1"]
