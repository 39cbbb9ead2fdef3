"""The store contract for members' data rights: the index of what each member wrote,
kept by the append path and filled for data written before it existed."""

from __future__ import annotations

import sqlite3

import pytest
from redis.asyncio import Redis

from parley.protocol.errors import ParleyError
from parley.server.core.model import (
    Author,
    Draft,
    Entry,
    Listing,
    ListingId,
    Money,
    User,
    UserId,
)
from parley.server.core.offers import Negotiation, make_offer
from parley.server.store.base import Erasure, ReadState, Store
from parley.server.store.redis_cluster import cluster_client
from tests.store.conftest import opened

ALICE = Author(UserId("alice"), "Alice")
BOB = Author(UserId("bob"), "Bob")
ROOMS = ("listing:l1", "listing:l2", "order:o1", "user:bob")


def keyed(entries: list[Entry]) -> list[tuple[str, int, str]]:
    return [(e.room, e.seq, e.kind) for e in entries]


async def all_pages(store: Store, user_id: str, limit: int) -> list[Entry]:
    out: list[Entry] = []
    after: tuple[str, int] | None = None
    while True:
        page = await store.member_entries(UserId(user_id), after, limit)
        assert len(page) <= limit
        out.extend(page)
        if len(page) < limit:
            return out
        after = (page[-1].room, page[-1].seq)


async def write_mixed_rooms(store: Store) -> None:
    """Alice and Bob write in several rooms, with edits, a deletion and system entries."""
    for i, room in enumerate(ROOMS[:3]):
        await store.append(room, Draft("system", "opened", 1))
        await store.append(room, Draft("comment", f"alice {i}", 2, ALICE))
        await store.append(room, Draft("comment", f"bob {i}", 3, BOB))
        await store.append(room, Draft("comment", f"alice again {i}", 4, ALICE))
    await store.append("listing:l1", Draft("edit", "alice 0, edited", 5, ALICE, target=2))
    await store.append("listing:l2", Draft("delete", "", 6, ALICE, target=4))
    await store.append("user:bob", Draft("notification", "alice mentioned you", 7))


EXPECTED_ALICE = [
    ("listing:l1", 2, "comment"),
    ("listing:l1", 4, "comment"),
    ("listing:l1", 5, "edit"),
    ("listing:l2", 2, "comment"),
    ("listing:l2", 4, "comment"),
    ("listing:l2", 5, "delete"),
    ("order:o1", 2, "comment"),
    ("order:o1", 4, "comment"),
]


async def test_member_entries_lists_what_the_member_wrote_by_room_and_seq(store: Store) -> None:
    await write_mixed_rooms(store)
    found = await store.member_entries(UserId("alice"), None, 100)
    assert keyed(found) == EXPECTED_ALICE
    by_key = {(e.room, e.seq): e for e in found}
    assert by_key["listing:l1", 2].text == "alice 0, edited"
    assert by_key["listing:l1", 2].edited_ts == 5
    assert by_key["listing:l2", 4].deleted and by_key["listing:l2", 4].text == ""
    assert all(e.author == ALICE for e in found)
    bob = await store.member_entries(UserId("bob"), None, 100)
    assert keyed(bob) == [(r, 3, "comment") for r in ROOMS[:3]]
    assert await store.member_entries(UserId("carol"), None, 100) == []


async def test_member_entries_pages_from_a_cursor_across_rooms(store: Store) -> None:
    await write_mixed_rooms(store)
    for limit in (1, 2, 3, 7):
        assert keyed(await all_pages(store, "alice", limit)) == EXPECTED_ALICE
    page = await store.member_entries(UserId("alice"), ("listing:l1", 4), 2)
    assert keyed(page) == [("listing:l1", 5, "edit"), ("listing:l2", 2, "comment")]
    assert await store.member_entries(UserId("alice"), ("order:o1", 4), 10) == []
    assert await store.member_entries(UserId("alice"), None, 0) == []


async def test_a_retried_post_is_indexed_once(store: Store) -> None:
    draft = Draft("comment", "once", 1, ALICE, client_msg_id="c1")
    await store.append("listing:l1", draft)
    assert (await store.append("listing:l1", draft)).duplicate
    assert keyed(await store.member_entries(UserId("alice"), None, 10)) == [
        ("listing:l1", 1, "comment")
    ]


async def likes_of(store: Store, user_id: str) -> list[tuple[ListingId, int]]:
    return sorted(
        like for page in [p async for p in store.member_likes(UserId(user_id))] for like in page
    )


async def negotiations_of(store: Store, user_id: str) -> list[str]:
    pages = [page async for page in store.member_negotiations(UserId(user_id))]
    assert all(pages)  # no empty page
    return sorted({n.id for page in pages for n in page})


def offer(i: int, buyer: str) -> Negotiation:
    listing = Listing(
        ListingId(f"l{i}"), UserId("seller"), "Lamp", Money(10_000, "CAD"), None, True
    )
    return make_offer(
        offer_id=f"o{i:04d}",
        listing=listing,
        buyer_id=UserId(buyer),
        amount=8_000,
        now_ms=1_000 + i,
    )


async def test_a_members_likes_and_negotiations_are_listed_page_by_page(store: Store) -> None:
    for i in range(450):  # more than two pages
        await store.put_like(ListingId(f"l{i:03d}"), UserId("alice"), 1_000 + i)
    await store.put_like(ListingId("l000"), UserId("bob"), 5)
    await store.delete_like(ListingId("l001"), UserId("alice"))
    await store.put_like(ListingId("l002"), UserId("alice"), 99)  # a repeat keeps the first
    likes = await likes_of(store, "alice")
    assert len(likes) == 449 and (ListingId("l001"), 1_001) not in likes
    assert (ListingId("l002"), 1_002) in likes
    assert await likes_of(store, "bob") == [(ListingId("l000"), 5)]
    assert await likes_of(store, "carol") == []
    for i in range(230):
        await store.create_negotiation(offer(i, "alice" if i % 2 else "bob"))
    assert await negotiations_of(store, "alice") == [f"o{i:04d}" for i in range(1, 230, 2)]
    assert len(await negotiations_of(store, "seller")) == 230
    assert await negotiations_of(store, "carol") == []


async def forget_the_index(url: str) -> None:
    """Make the data set look written by a version without the index."""
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            conn.execute("DROP INDEX entries_author")
            conn.execute("DROP INDEX likes_member")
        return
    client = (
        cluster_client(url, max_connections=4, socket_timeout=5, connect_timeout=2)
        if "+cluster" in url
        else Redis.from_url(url)
    )
    try:
        keys = [key async for key in client.scan_iter(match="parley:*", count=1000)]
        dropped = [
            k
            for k in keys
            if b":by:" in k or b"{member:" in k or b":liked:" in k or k.endswith(b":indexed")
        ]
        assert dropped
        for key in dropped:
            await client.delete(key)
    finally:
        await client.aclose()


async def test_opening_a_store_indexes_entries_written_before_the_index(url: str) -> None:
    async with opened(url) as store:
        await write_mixed_rooms(store)
        await store.put_like(ListingId("l1"), UserId("alice"), 7)
    await forget_the_index(url)
    async with opened(url) as store:
        assert keyed(await store.member_entries(UserId("alice"), None, 100)) == EXPECTED_ALICE
        assert await likes_of(store, "alice") == [(ListingId("l1"), 7)]
        await store.append("order:o1", Draft("comment", "after", 9, ALICE))
    async with opened(url) as store:  # opened again: nothing indexed twice, nothing lost
        found = keyed(await store.member_entries(UserId("alice"), None, 100))
        assert found == [*EXPECTED_ALICE, ("order:o1", 5, "comment")]


# Erasure steps.


async def test_an_erasure_goes_from_erasing_to_erased_and_stays_erased(store: Store) -> None:
    assert await store.erasure(UserId("alice")) is None
    assert await store.set_erasure(UserId("alice"), "erasing", 10) == Erasure("erasing", 10)
    assert await store.set_erasure(UserId("alice"), "erasing", 20) == Erasure("erasing", 10)
    assert await store.set_erasure(UserId("alice"), "erased", 30) == Erasure("erased", 30)
    assert await store.set_erasure(UserId("alice"), "erasing", 40) == Erasure("erased", 30)
    assert await store.erasure(UserId("alice")) == Erasure("erased", 30)
    assert await store.erasure(UserId("bob")) is None


async def test_an_erased_profile_has_no_name_to_mention_and_frees_it(store: Store) -> None:
    await store.put_user(User(UserId("u1"), "Alice", "fr-CA", "alice@example.com"))
    for _ in range(2):  # idempotent
        await store.erase_profile(UserId("u1"), "former member")
        assert await store.get_user(UserId("u1")) == User(
            UserId("u1"), "former member", "fr-CA", None
        )
    assert await store.users_by_name(["alice", "former member"]) == {}
    await store.put_user(User(UserId("u2"), "alice", "en"))  # the name is free
    assert (await store.users_by_name(["alice"]))["alice"].id == "u2"
    await store.erase_profile(UserId("ghost"), "former member")  # never registered
    assert await store.get_user(UserId("ghost")) == User(UserId("ghost"), "former member", "en")
    assert await store.claim_user(UserId("ghost"), "ghost", "en") == User(
        UserId("ghost"), "former member", "en"
    )


async def test_rename_author_renames_only_the_members_entries(store: Store) -> None:
    await write_mixed_rooms(store)
    for _ in range(2):
        await store.rename_author("listing:l1", UserId("alice"), [2, 3, 4, 5], "former member")
    log = {e.seq: e for e in await store.entries_after("listing:l1", 0, 100)}
    assert log[2].author == Author(UserId("alice"), "former member")
    assert log[2].text == "alice 0, edited"  # only the name
    assert log[5].author == Author(UserId("alice"), "former member")
    assert log[3].author == BOB and log[1].author is None
    other = await store.entries_after("listing:l2", 0, 100)
    assert all(e.author in (None, ALICE, BOB) for e in other)


async def test_a_members_own_room_can_be_emptied_without_reusing_a_seq(store: Store) -> None:
    for i in range(3):
        await store.append("user:alice", Draft("notification", "", i, None, data={"kind": "x"}))
    await store.append("user:alice", Draft("read", "", 4, ALICE, target=2))
    await store.drop_room_entries("user:alice")
    assert await store.entries_after("user:alice", 0, 10) == []
    assert await store.read_state("user:alice") == ReadState(0, 0)
    assert (await store.head("user:alice")).seq == 4
    appended = await store.append("user:alice", Draft("notification", "", 5, None, data={}))
    assert appended.entry.seq == 5


async def test_drop_read_marks_forgets_the_members_marks_only(store: Store) -> None:
    await write_mixed_rooms(store)
    await store.set_read_mark("order:o1", UserId("alice"), 3)
    await store.set_read_mark("order:o1", UserId("bob"), 4)
    await store.drop_read_marks(UserId("alice"), ["order:o1"])
    assert await store.read_marks("order:o1") == {UserId("bob"): 4}


async def test_an_author_less_delete_erases_in_a_closed_room(store: Store) -> None:
    await store.append("order:o1", Draft("comment", "rue Saint-Denis", 1, ALICE))
    await store.append("order:o1", Draft("close", "", 2))
    with pytest.raises(ParleyError):
        await store.append("order:o1", Draft("delete", "", 3, ALICE, target=1))
    await store.append("order:o1", Draft("delete", "", 3, None, client_msg_id="erase:1", target=1))
    again = await store.append(
        "order:o1", Draft("delete", "", 4, None, client_msg_id="erase:1", target=1)
    )
    assert again.duplicate
    first = await store.get_entry("order:o1", 1)
    assert first is not None and first.deleted and first.text == ""
    assert (await store.head("order:o1")).seq == 3
