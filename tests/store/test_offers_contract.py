"""The likes and negotiations contract: every backend in ``conftest.BACKENDS`` passes it.

Negotiations are made by the pure rules of ``server.core.offers`` at explicit
times (ms); the store only keeps them, so nothing here reads a clock.
"""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from dataclasses import replace
from pathlib import Path

import pytest
from redis.crc import key_slot

from parley.protocol.errors import ErrorCode, ParleyError
from parley.server.core.model import Listing, ListingId, Money, UserId
from parley.server.core.offers import (
    OFFER_TTL_MS,
    Negotiation,
    OfferState,
    Party,
    counter_bounds,
    expire,
    make_offer,
    respond,
    seller_offer,
)
from parley.server.store import Store
from parley.server.store.base import Like
from parley.server.store.sqlite import SCHEMA_VERSION, SqliteStore
from tests.store.conftest import opened
from tests.support.redis_server import RedisServer

T0 = 1_800_000_000_000
TTL = OFFER_TTL_MS
SELLER = UserId("seller")
BUYER = UserId("buyer")
OTHER = UserId("other")
L1 = ListingId("l1")
LISTING = Listing(L1, SELLER, "Vélo de course", Money(10_000, "EUR"), offers_enabled=True)
LISTING_2 = Listing(ListingId("l2"), SELLER, "Lampe", Money(4_000, "EUR"), offers_enabled=True)


def offer(
    offer_id: str,
    *,
    buyer: UserId = BUYER,
    listing: Listing = LISTING,
    amount: int = 8_000,
    at: int = T0,
) -> Negotiation:
    """A buyer's first price (R5)."""
    return make_offer(offer_id=offer_id, listing=listing, buyer_id=buyer, amount=amount, now_ms=at)


def counter(neg: Negotiation, actor: UserId, amount: int, at: int) -> Negotiation:
    return respond(neg, actor_id=actor, action="counter", amount=amount, now_ms=at)


def answer(neg: Negotiation, actor: UserId, action: str, at: int) -> Negotiation:
    return respond(neg, actor_id=actor, action=action, now_ms=at)


async def change(store: Store, neg: Negotiation) -> Negotiation:
    assert await store.replace_negotiation(neg)
    return neg


def ids(negotiations: list[Negotiation]) -> list[str]:
    return [n.id for n in negotiations]


# Likes.


async def test_a_like_is_stored_once_and_keeps_its_first_time(store: Store) -> None:
    assert await store.put_like(L1, BUYER, T0)
    assert not await store.put_like(L1, BUYER, T0 + 50)  # a retry does not reorder
    assert await store.likers(L1, None, 10) == [Like(BUYER, T0)]


async def test_a_deleted_like_is_gone_and_may_come_back(store: Store) -> None:
    await store.put_like(L1, BUYER, T0)
    assert await store.delete_like(L1, BUYER)
    assert not await store.delete_like(L1, BUYER)
    assert not await store.delete_like(L1, OTHER)
    assert await store.likers(L1, None, 10) == []
    assert await store.put_like(L1, BUYER, T0 + 9)
    assert await store.likers(L1, None, 10) == [Like(BUYER, T0 + 9)]


async def test_likers_are_most_recent_first_ties_by_user_id(store: Store) -> None:
    for user, ts in [("anna", 10), ("cleo", 20), ("bert", 20), ("dana", 5), ("abel", 20)]:
        await store.put_like(L1, UserId(user), ts)
    await store.put_like(LISTING_2.id, UserId("zoe"), 30)  # another listing's
    assert await store.likers(L1, None, 10) == [
        Like(UserId("abel"), 20),
        Like(UserId("bert"), 20),
        Like(UserId("cleo"), 20),
        Like(UserId("anna"), 10),
        Like(UserId("dana"), 5),
    ]
    assert await store.likers(ListingId("nothing"), None, 10) == []


async def test_likers_page_with_before_and_limit(store: Store) -> None:
    for i in range(1, 8):
        await store.put_like(L1, UserId(f"u{i}"), T0 + i)
    first = await store.likers(L1, None, 3)
    assert [like.ts for like in first] == [T0 + 7, T0 + 6, T0 + 5]
    second = await store.likers(L1, first[-1].ts, 3)  # before is exclusive
    assert [like.ts for like in second] == [T0 + 4, T0 + 3, T0 + 2]
    last = await store.likers(L1, second[-1].ts, 3)
    assert last == [Like(UserId("u1"), T0 + 1)]
    assert await store.likers(L1, last[-1].ts, 3) == []
    assert await store.likers(L1, None, 0) == []


# Offers on or off (R5).


async def test_set_offers_enabled_changes_the_flag_only(store: Store) -> None:
    photo = "https://x.example/1.jpg"
    listing = Listing(L1, SELLER, "Vélo", Money(10_000, "EUR"), photo, status="reserved")
    await store.put_listing(listing)
    switched_on = replace(listing, offers_enabled=True)
    assert await store.set_offers_enabled(L1, True) == switched_on
    assert await store.get_listing(L1) == switched_on
    assert await store.set_offers_enabled(L1, True) == switched_on
    assert await store.set_offers_enabled(L1, False) == listing
    assert await store.get_listing(L1) == listing


async def test_set_offers_enabled_on_an_unknown_listing_is_none(store: Store) -> None:
    assert await store.set_offers_enabled(ListingId("nothing"), True) is None
    assert await store.get_listing(ListingId("nothing")) is None


# Creating.


async def test_every_field_of_a_negotiation_round_trips(store: Store) -> None:
    opened_by_seller = seller_offer(
        offer_id="n1", listing=LISTING, buyer_id=BUYER, amount=8_500, now_ms=T0
    )
    assert await store.create_negotiation(opened_by_seller) == opened_by_seller
    assert await store.get_negotiation("n1") == opened_by_seller
    countered = await change(store, counter(opened_by_seller, BUYER, 7_000, T0 + 5))
    accepted = await change(store, answer(countered, SELLER, "accept", T0 + 9))
    assert accepted.state is OfferState.accepted and accepted.ended_by is Party.seller
    assert accepted.origin is Party.seller and len(accepted.prices) == 2
    assert await store.get_negotiation("n1") == accepted
    assert await store.get_negotiation("n2") is None


async def test_a_second_open_negotiation_for_a_buyer_is_offer_exists(store: Store) -> None:
    first = await store.create_negotiation(offer("n1"))
    with pytest.raises(ParleyError) as refused:
        await store.create_negotiation(offer("n2", amount=9_000, at=T0 + 1))
    assert refused.value.code is ErrorCode.offer_exists
    assert refused.value.details == {"offer_id": "n1"}
    assert await store.get_negotiation("n2") is None
    assert await store.negotiations_of(BUYER) == [first]
    assert await store.open_negotiations(L1) == [first]
    assert await store.next_deadline() == first.expires_at_ms


async def test_an_open_negotiation_past_its_deadline_still_counts(store: Store) -> None:
    first = await store.create_negotiation(offer("n1"))
    late = T0 + TTL + 1
    with pytest.raises(ParleyError) as refused:
        await store.create_negotiation(offer("n2", at=late))
    assert refused.value.code is ErrorCode.offer_exists
    assert refused.value.details == {"offer_id": "n1"}
    # The caller expires it first; then the new one is stored.
    expired = expire(first, late)
    assert expired is not None
    await change(store, expired)
    second = await store.create_negotiation(offer("n2", at=late))
    assert await store.open_negotiations(L1) == [second]


async def test_a_new_negotiation_is_allowed_once_the_first_is_closed(store: Store) -> None:
    first = await store.create_negotiation(offer("n1"))
    declined = await change(store, answer(first, SELLER, "decline", T0 + 1))
    second = await store.create_negotiation(offer("n2", at=T0 + 2))
    assert await store.get_negotiation("n1") == declined
    assert await store.negotiations_of(BUYER) == [second, declined]


async def test_other_buyers_and_other_listings_are_independent(store: Store) -> None:
    mine = await store.create_negotiation(offer("n1"))
    theirs = await store.create_negotiation(offer("n2", buyer=OTHER, at=T0 + 1))
    elsewhere = await store.create_negotiation(offer("n3", listing=LISTING_2, amount=3_000))
    assert ids(await store.open_negotiations(L1)) == ["n2", "n1"]
    assert await store.open_negotiations(LISTING_2.id) == [elsewhere]
    assert {n.id for n in await store.negotiations_of(SELLER)} == {mine.id, theirs.id, "n3"}


async def test_an_id_taken_is_a_conflict(store: Store) -> None:
    first = await store.create_negotiation(offer("n1"))
    with pytest.raises(ParleyError) as refused:
        await store.create_negotiation(offer("n1", buyer=OTHER, at=T0 + 1))
    assert refused.value.code is ErrorCode.conflict
    assert await store.get_negotiation("n1") == first
    assert await store.negotiations_of(OTHER) == []
    assert await store.open_negotiations(L1) == [first]


async def test_only_an_open_negotiation_is_created(store: Store) -> None:
    declined = answer(offer("n1"), SELLER, "decline", T0 + 1)
    with pytest.raises(ValueError):
        await store.create_negotiation(declined)
    assert await store.get_negotiation("n1") is None


# Compare-and-set.


async def test_replace_stores_the_next_version_only(store: Store) -> None:
    first = await store.create_negotiation(offer("n1"))
    countered = await change(store, counter(first, SELLER, 9_000, T0 + 10))
    stale = answer(first, SELLER, "accept", T0 + 11)  # made from version 1
    assert not await store.replace_negotiation(stale)
    assert not await store.replace_negotiation(countered)  # version 2 again
    skipping = replace(answer(countered, BUYER, "accept", T0 + 12), version=4)
    assert not await store.replace_negotiation(skipping)
    assert await store.get_negotiation("n1") == countered
    assert await store.open_negotiations(L1) == [countered]
    assert await store.due_negotiations(T0 + 10 + TTL, 10) == [countered]
    assert await store.next_deadline() == T0 + 10 + TTL


async def test_replacing_an_unknown_negotiation_stores_nothing(store: Store) -> None:
    ghost = answer(offer("n1"), SELLER, "accept", T0 + 1)
    assert not await store.replace_negotiation(ghost)
    assert await store.get_negotiation("n1") is None
    assert await store.negotiations_of(SELLER) == []


async def test_a_replace_naming_other_parties_or_listing_stores_nothing(store: Store) -> None:
    first = await store.create_negotiation(offer("n1"))
    countered = counter(first, SELLER, 9_000, T0 + 1)
    for other in (
        replace(countered, buyer_id=OTHER),
        replace(countered, seller_id=OTHER),
        replace(countered, listing_id=LISTING_2.id),
    ):
        assert not await store.replace_negotiation(other)
    assert await store.get_negotiation("n1") == first
    assert await store.negotiations_of(OTHER) == []


async def test_reopening_beside_another_open_one_is_offer_exists(store: Store) -> None:
    first = await store.create_negotiation(offer("n1"))
    declined = await change(store, answer(first, SELLER, "decline", T0 + 1))
    second = await store.create_negotiation(offer("n2", at=T0 + 2))
    reopened = replace(
        declined,
        state=OfferState.open,
        expires_at_ms=T0 + 3 + TTL,
        ended_by=None,
        updated_ms=T0 + 3,
        version=3,
    )
    with pytest.raises(ParleyError) as refused:
        await store.replace_negotiation(reopened)
    assert refused.value.code is ErrorCode.offer_exists
    assert refused.value.details == {"offer_id": "n2"}
    assert await store.get_negotiation("n1") == declined
    assert await store.open_negotiations(L1) == [second]


async def test_of_two_changes_from_one_version_exactly_one_is_stored(store: Store) -> None:
    first = await store.create_negotiation(offer("n1"))
    accept = answer(first, SELLER, "accept", T0 + 5)
    withdraw = answer(first, BUYER, "withdraw", T0 + 5)
    results = await asyncio.gather(
        store.replace_negotiation(accept), store.replace_negotiation(withdraw)
    )
    assert sorted(results) == [False, True]
    winner = accept if results[0] else withdraw
    assert await store.get_negotiation("n1") == winner
    assert await store.open_negotiations(L1) == []
    assert await store.next_deadline() is None


async def test_many_concurrent_changes_from_one_version_store_one(store: Store) -> None:
    first = await store.create_negotiation(offer("n1"))
    changes = [counter(first, SELLER, 8_000 + i, T0 + i) for i in range(1, 20)]
    results = await asyncio.gather(*(store.replace_negotiation(c) for c in changes))
    assert results.count(True) == 1
    assert await store.get_negotiation("n1") == changes[results.index(True)]


async def test_two_redis_stores_settle_a_race_the_same_way(redis_server: RedisServer) -> None:
    await redis_server.flushall()
    async with opened(redis_server.url) as hub_a, opened(redis_server.url) as hub_b:
        first = await hub_a.create_negotiation(offer("n1"))
        assert await hub_b.get_negotiation("n1") == first
        for round_ in range(1, 6):
            current = await hub_a.get_negotiation("n1")
            assert current is not None
            actor = SELLER if current.turn is Party.seller else BUYER
            low, high = counter_bounds(current)
            at = T0 + 10 * round_
            third = (high - low) // 3
            mine = counter(current, actor, low + third, at)
            theirs = counter(current, actor, high - third, at)
            results = await asyncio.gather(
                hub_a.replace_negotiation(mine), hub_b.replace_negotiation(theirs)
            )
            assert sorted(results) == [False, True]
            winner = mine if results[0] else theirs
            assert await hub_a.get_negotiation("n1") == winner
            assert await hub_b.get_negotiation("n1") == winner
        final = await hub_b.get_negotiation("n1")
        assert final is not None and final.version == 6
        assert await hub_a.due_negotiations(final.updated_ms + TTL, 10) == [final]


# Reading.


async def test_negotiations_of_a_member_as_buyer_or_seller_latest_first(store: Store) -> None:
    n1 = await store.create_negotiation(offer("n1"))
    n2 = await store.create_negotiation(offer("n2", buyer=OTHER, at=T0 + 1))
    n3 = await store.create_negotiation(offer("n3", listing=LISTING_2, amount=3_000, at=T0 + 2))
    n1 = await change(store, counter(n1, SELLER, 9_000, T0 + 3))
    assert await store.negotiations_of(SELLER) == [n1, n3, n2]
    assert await store.negotiations_of(BUYER) == [n1, n3]
    assert await store.negotiations_of(OTHER) == [n2]
    assert await store.negotiations_of(UserId("nobody")) == []


async def test_negotiations_of_with_listing_open_only_and_limit(store: Store) -> None:
    n1 = await store.create_negotiation(offer("n1"))
    n2 = await store.create_negotiation(offer("n2", buyer=OTHER, at=T0 + 1))
    n3 = await store.create_negotiation(offer("n3", listing=LISTING_2, amount=3_000, at=T0 + 2))
    n4 = await store.create_negotiation(offer("n4", buyer=UserId("third"), at=T0 + 3))
    n2 = await change(store, answer(n2, SELLER, "decline", T0 + 4))
    assert await store.negotiations_of(SELLER, listing_id=L1) == [n2, n4, n1]
    assert await store.negotiations_of(SELLER, open_only=True) == [n4, n3, n1]
    assert await store.negotiations_of(SELLER, listing_id=L1, open_only=True) == [n4, n1]
    assert await store.negotiations_of(OTHER, open_only=True) == []
    assert await store.negotiations_of(SELLER, limit=2) == [n2, n4]
    assert await store.negotiations_of(SELLER, listing_id=L1, open_only=True, limit=1) == [n4]
    assert await store.negotiations_of(SELLER, limit=0) == []
    assert await store.negotiations_of(BUYER, listing_id=LISTING_2.id) == [n3]


async def test_negotiations_of_filters_past_many_others(store: Store) -> None:
    """More negotiations than one page of a backend's scan: the filter still finds all."""
    wanted = await store.create_negotiation(offer("n-first"))
    for i in range(250):
        buyer = UserId(f"b{i}")
        neg = await store.create_negotiation(offer(f"n{i:03}", buyer=buyer, at=T0 + 1 + i))
        await change(store, answer(neg, SELLER, "decline", T0 + 1 + i))
    assert await store.negotiations_of(SELLER, open_only=True) == [wanted]
    assert len(await store.negotiations_of(SELLER, limit=1000)) == 251
    assert ids(await store.negotiations_of(SELLER, limit=3)) == ["n249", "n248", "n247"]


async def test_open_negotiations_whatever_their_deadline(store: Store) -> None:
    n1 = await store.create_negotiation(offer("n1"))
    n2 = await store.create_negotiation(offer("n2", buyer=OTHER, at=T0 + 1))
    n3 = await store.create_negotiation(offer("n3", buyer=UserId("third"), at=T0 + 2))
    await store.create_negotiation(offer("n4", listing=LISTING_2, amount=3_000))
    await change(store, answer(n2, OTHER, "withdraw", T0 + 3))
    # n1 is past its deadline but nobody expired it yet: still open.
    assert sorted(ids(await store.open_negotiations(L1))) == [n1.id, n3.id]
    assert await store.open_negotiations(ListingId("nothing")) == []


async def test_due_negotiations_are_open_ones_at_or_past_deadline_earliest_first(
    store: Store,
) -> None:
    n1 = await store.create_negotiation(offer("n1"))
    n2 = await store.create_negotiation(offer("n2", buyer=OTHER, at=T0 + 1))
    n3 = await store.create_negotiation(offer("n3", listing=LISTING_2, amount=3_000, at=T0 + 2))
    assert await store.due_negotiations(T0 + TTL - 1, 10) == []
    assert await store.due_negotiations(T0 + TTL, 10) == [n1]
    assert await store.due_negotiations(T0 + TTL + 2, 10) == [n1, n2, n3]
    assert await store.due_negotiations(T0 + TTL + 2, 2) == [n1, n2]
    assert await store.due_negotiations(T0 + TTL + 2, 0) == []


async def test_a_closed_negotiation_leaves_the_due_set(store: Store) -> None:
    n1 = await store.create_negotiation(offer("n1"))
    n2 = await store.create_negotiation(offer("n2", buyer=OTHER, at=T0 + 1))
    n3 = await store.create_negotiation(offer("n3", listing=LISTING_2, amount=3_000, at=T0 + 2))
    await change(store, answer(n1, SELLER, "decline", T0 + 5))
    swept = expire(n2, T0 + TTL + 100)
    assert swept is not None and swept.state is OfferState.expired
    await change(store, swept)
    assert await store.due_negotiations(T0 + 10 * TTL, 10) == [n3]


async def test_a_counter_moves_the_deadline(store: Store) -> None:
    n1 = await store.create_negotiation(offer("n1"))
    n2 = await store.create_negotiation(offer("n2", buyer=OTHER, at=T0 + 1))
    n1 = await change(store, counter(n1, SELLER, 9_500, T0 + 10))
    assert await store.due_negotiations(T0 + TTL, 10) == []
    assert await store.due_negotiations(T0 + 10 + TTL, 10) == [n2, n1]
    assert await store.next_deadline() == T0 + 1 + TTL


async def test_next_deadline_is_the_earliest_open_one(store: Store) -> None:
    assert await store.next_deadline() is None
    n1 = await store.create_negotiation(offer("n1", at=T0 + 5))
    assert await store.next_deadline() == T0 + 5 + TTL
    n2 = await store.create_negotiation(offer("n2", buyer=OTHER, at=T0))
    assert await store.next_deadline() == T0 + TTL
    await change(store, answer(n2, SELLER, "accept", T0 + 6))
    assert await store.next_deadline() == T0 + 5 + TTL
    n1 = await change(store, counter(n1, SELLER, 9_000, T0 + 7))
    assert await store.next_deadline() == T0 + 7 + TTL
    await change(store, answer(n1, BUYER, "decline", T0 + 8))
    assert await store.next_deadline() is None


# Durability.


async def test_likes_and_negotiations_outlive_the_store(url: str) -> None:
    async with opened(url) as store:
        await store.put_listing(replace(LISTING, offers_enabled=False))
        await store.set_offers_enabled(L1, True)
        await store.put_like(L1, OTHER, T0 - 10)
        await store.put_like(L1, BUYER, T0 - 5)
        n1 = await store.create_negotiation(offer("n1"))
        n1 = await change(store, counter(n1, SELLER, 9_000, T0 + 1))
        n2 = await store.create_negotiation(offer("n2", buyer=OTHER, at=T0 + 2))
        n2 = await change(store, answer(n2, SELLER, "decline", T0 + 3))

    async with opened(url) as store:
        assert await store.get_listing(L1) == LISTING
        assert await store.likers(L1, None, 10) == [Like(BUYER, T0 - 5), Like(OTHER, T0 - 10)]
        assert not await store.put_like(L1, BUYER, T0)
        assert await store.get_negotiation("n1") == n1
        assert await store.get_negotiation("n2") == n2
        assert await store.negotiations_of(SELLER) == [n2, n1]
        assert await store.open_negotiations(L1) == [n1]
        assert await store.due_negotiations(T0 + 1 + TTL, 10) == [n1]
        assert await store.next_deadline() == T0 + 1 + TTL
        with pytest.raises(ParleyError) as refused:
            await store.create_negotiation(offer("n3", at=T0 + 4))
        assert refused.value.details == {"offer_id": "n1"}
        assert not await store.replace_negotiation(n1)  # its version is stored already
        assert await store.replace_negotiation(answer(n1, BUYER, "decline", T0 + 4))
        assert await store.next_deadline() is None


# What only one backend promises.


async def test_redis_keeps_every_offer_key_on_one_slot(redis_server: RedisServer) -> None:
    await redis_server.flushall()
    async with opened(redis_server.url) as store:
        with redis_server.client() as admin:
            before = set(admin.keys("*"))
            await store.put_like(L1, BUYER, T0)
            n1 = await store.create_negotiation(offer("n1", buyer=OTHER))
            await change(store, answer(n1, OTHER, "withdraw", T0 + 1))
            await store.create_negotiation(offer("n2", listing=LISTING_2, amount=3_000))
            new = set(admin.keys("*")) - before
    assert new and all(b":{offers}:" in key for key in new)
    assert len({key_slot(key) for key in new}) == 1


# A schema-2 file as written before likes and negotiations existed.
SCHEMA_2_BEFORE_OFFERS = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE users (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, locale TEXT NOT NULL, email TEXT,
    name_key TEXT);
CREATE TABLE listings (
    id TEXT PRIMARY KEY, seller_id TEXT NOT NULL, title TEXT NOT NULL,
    amount INTEGER NOT NULL, currency TEXT NOT NULL, photo_url TEXT,
    offers_enabled INTEGER NOT NULL, status TEXT NOT NULL);
CREATE TABLE orders (
    id TEXT PRIMARY KEY, listing_id TEXT NOT NULL, buyer_id TEXT NOT NULL,
    seller_id TEXT NOT NULL, status TEXT NOT NULL, created_ts INTEGER NOT NULL);
CREATE TABLE rooms (
    room TEXT PRIMARY KEY, last_seq INTEGER NOT NULL, epoch TEXT NOT NULL,
    closed INTEGER NOT NULL DEFAULT 0, read_seq INTEGER NOT NULL DEFAULT 0);
CREATE TABLE entries (
    room TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL, text TEXT NOT NULL,
    ts INTEGER NOT NULL, author_id TEXT, author_name TEXT, client_msg_id TEXT,
    target INTEGER, data TEXT, edited_ts INTEGER, deleted INTEGER NOT NULL DEFAULT 0,
    mentions TEXT, masked TEXT, PRIMARY KEY (room, seq)) WITHOUT ROWID;
CREATE UNIQUE INDEX entries_client_msg_id
    ON entries (room, coalesce(author_id, ''), client_msg_id)
    WHERE client_msg_id IS NOT NULL;
CREATE UNIQUE INDEX users_name_key ON users (name_key);
INSERT INTO meta VALUES ('schema_version', '2'), ('store_id', 'abcdef0123456789');
INSERT INTO listings VALUES ('l1', 'seller', 'Vélo', 10000, 'EUR', NULL, 0, 'active');
"""


async def test_a_schema_2_file_from_before_offers_gets_their_tables(tmp_path: Path) -> None:
    path = tmp_path / "parley.sqlite3"
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.executescript(SCHEMA_2_BEFORE_OFFERS)
    store = SqliteStore(str(path))
    await store.open()
    try:
        listing = await store.set_offers_enabled(L1, True)
        assert listing is not None and listing.offers_enabled
        assert await store.put_like(L1, BUYER, T0)
        assert await store.likers(L1, None, 10) == [Like(BUYER, T0)]
        n1 = await store.create_negotiation(offer("n1"))
        assert await store.due_negotiations(T0 + TTL, 10) == [n1]
    finally:
        await store.close()
    with closing(sqlite3.connect(path)) as conn:
        [(version,)] = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'")
        names = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
    # Offers' tables are added without a migration of their own; schema 3 is the username
    # index keyed by look, 4 the entries in a rowid table (``test_sqlite_migration``).
    assert version == SCHEMA_VERSION == "4"
    assert {"likes", "negotiations", "negotiations_open", "negotiations_due"} <= names


# Changes stored and not told yet (the hub tells them, then marks them told).


async def test_every_stored_change_is_untold_until_marked_told(store: Store) -> None:
    first = await store.create_negotiation(offer("o1", at=T0))
    other = await store.create_negotiation(offer("o2", buyer=OTHER, at=T0 + 5))
    assert ids(await store.untold_negotiations(T0 + 100, 10)) == ["o1", "o2"]
    assert ids(await store.untold_negotiations(T0 + 5, 10)) == ["o1"]  # changed before only
    assert ids(await store.untold_negotiations(T0 + 100, 1)) == ["o1"]
    await store.mark_told(first.id, 1)
    countered = await change(store, counter(other, SELLER, 9_000, T0 + 10))
    # Each version as it was: the first price is still to be told, and the counter.
    assert await store.untold_negotiations(T0 + 100, 10) == [other, countered]
    await store.mark_told(other.id, 2)
    assert await store.untold_negotiations(T0 + 100, 10) == [other]
    await store.mark_told(other.id, 1)
    await store.mark_told("unknown", 1)
    assert await store.untold_negotiations(T0 + 100, 10) == []


async def test_a_change_that_lost_its_race_leaves_nothing_untold(store: Store) -> None:
    neg = await store.create_negotiation(offer("o1", at=T0))
    await store.mark_told(neg.id, 1)
    accepted = answer(neg, SELLER, "accept", T0 + 1)
    assert await store.replace_negotiation(accepted)
    assert not await store.replace_negotiation(answer(neg, SELLER, "decline", T0 + 2))
    assert await store.untold_negotiations(T0 + 100, 10) == [accepted]
