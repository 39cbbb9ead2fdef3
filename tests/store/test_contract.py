"""The store contract: every backend in ``conftest.BACKENDS`` must pass all of it."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from parley.protocol.errors import ErrorCode, ParleyError
from parley.server.core.mentions import username_key
from parley.server.core.model import (
    Author,
    Draft,
    Entry,
    Listing,
    ListingId,
    Mention,
    Money,
    Order,
    OrderId,
    User,
    UserId,
)
from parley.server.store.base import ReadState, Store

ROOM = "listing:l1"
OTHER_ROOM = "listing:l2"
ALICE = Author(UserId("alice"), "Alice")
BOB = Author(UserId("bob"), "Bob")


def comment(text: str, *, author: Author = ALICE, cmid: str | None = None, ts: int = 1) -> Draft:
    return Draft("comment", text, ts, author, client_msg_id=cmid)


def seqs(entries: list[Entry]) -> list[int]:
    return [e.seq for e in entries]


class Announcements:
    """A fan-out listener that records what it hears."""

    def __init__(self) -> None:
        self.heard: list[tuple[Entry, str]] = []

    def __call__(self, entry: Entry, epoch: str) -> None:
        self.heard.append((entry, epoch))


# Members.


async def test_put_user_then_get(store: Store) -> None:
    user = User(UserId("u1"), "alice", "fr-CA", "alice@example.com")
    await store.put_user(user)
    assert await store.get_user(UserId("u1")) == user


async def test_put_user_replaces(store: Store) -> None:
    await store.put_user(User(UserId("u1"), "alice", "fr-CA", "alice@example.com"))
    await store.put_user(User(UserId("u1"), "alice2", "en", None))
    assert await store.get_user(UserId("u1")) == User(UserId("u1"), "alice2", "en", None)


async def test_claim_user_keeps_what_the_backend_registered(store: Store) -> None:
    alice = User(UserId("u1"), "alice", "fr-CA", "alice@example.com")
    await store.put_user(alice)
    assert await store.claim_user(UserId("u1"), "Alice_B", "en") == alice
    assert await store.get_user(UserId("u1")) == alice


async def test_claim_user_creates_a_missing_member(store: Store) -> None:
    bob = User(UserId("u2"), "bob", "fr-CA", None)
    assert await store.claim_user(UserId("u2"), "bob", "fr-CA") == bob
    assert await store.get_user(UserId("u2")) == bob


async def test_usernames_are_unique_whatever_the_case(store: Store) -> None:
    await store.put_user(User(UserId("u1"), "Zoé", "fr-CA"))
    for name in ("zoé", "ZOÉ", "zoe\u0301"):
        with pytest.raises(ParleyError) as err:
            await store.put_user(User(UserId("u2"), name))
        assert err.value.code == "conflict"
        with pytest.raises(ParleyError) as err:
            await store.claim_user(UserId("u3"), name, "en")
        assert err.value.code == "conflict"
    assert await store.get_user(UserId("u2")) is None
    # The holder may change the case of its own name.
    await store.put_user(User(UserId("u1"), "ZOÉ", "fr-CA"))


async def test_a_renamed_member_frees_the_old_name(store: Store) -> None:
    await store.put_user(User(UserId("u1"), "alice"))
    await store.put_user(User(UserId("u1"), "alicia"))
    await store.put_user(User(UserId("u2"), "Alice"))
    found = await store.users_by_name(["alice", "alicia", "nobody"])
    assert {key: user.id for key, user in found.items()} == {"alice": "u2", "alicia": "u1"}


async def test_unknown_user_is_none(store: Store) -> None:
    assert await store.get_user(UserId("nobody")) is None


# Listings.


async def test_listing_round_trip_and_replace(store: Store) -> None:
    listing = Listing(
        ListingId("l1"),
        UserId("seller"),
        "Vélo de route",
        Money(12_999, "CAD"),
        photo_url="https://img.example/l1.jpg",
        offers_enabled=True,
        status="reserved",
    )
    await store.put_listing(listing)
    assert await store.get_listing(ListingId("l1")) == listing

    changed = replace(listing, price=Money(9_999, "CAD"), offers_enabled=False, photo_url=None)
    await store.put_listing(changed)
    assert await store.get_listing(ListingId("l1")) == changed


async def test_unknown_listing_is_none(store: Store) -> None:
    assert await store.get_listing(ListingId("nope")) is None


# Orders.

ORDER = Order(OrderId("o1"), ListingId("l1"), UserId("buyer"), UserId("seller"), "created", 1000)


async def test_put_order_is_idempotent(store: Store) -> None:
    assert await store.put_order(ORDER) == (ORDER, True)
    assert await store.put_order(ORDER) == (ORDER, False)
    assert await store.get_order(OrderId("o1")) == ORDER


async def test_put_order_again_returns_the_stored_status(store: Store) -> None:
    await store.put_order(ORDER)
    await store.set_order_status(OrderId("o1"), "shipped")
    stored, new = await store.put_order(ORDER)
    assert (stored.status, new) == ("shipped", False)


@pytest.mark.parametrize(
    "change",
    [
        {"listing_id": ListingId("l2")},
        {"buyer_id": UserId("someone")},
        {"seller_id": UserId("someone")},
    ],
)
async def test_put_order_with_other_parties_is_a_conflict(
    store: Store, change: dict[str, str]
) -> None:
    await store.put_order(ORDER)
    with pytest.raises(ParleyError) as raised:
        await store.put_order(replace(ORDER, **change))  # type: ignore[arg-type]
    assert raised.value.code is ErrorCode.conflict
    assert await store.get_order(OrderId("o1")) == ORDER


async def test_set_order_status(store: Store) -> None:
    await store.put_order(ORDER)
    assert await store.set_order_status(OrderId("o1"), "shipped") == replace(
        ORDER, status="shipped"
    )
    assert await store.get_order(OrderId("o1")) == replace(ORDER, status="shipped")


async def test_unknown_order(store: Store) -> None:
    assert await store.get_order(OrderId("nope")) is None
    assert await store.set_order_status(OrderId("nope"), "shipped") is None


# Appending.


async def test_append_numbers_from_one_in_each_room(store: Store) -> None:
    first = [await store.append(ROOM, comment(f"m{i}")) for i in range(3)]
    other = await store.append(OTHER_ROOM, comment("elsewhere"))
    assert [r.entry.seq for r in first] == [1, 2, 3]
    assert other.entry.seq == 1
    assert not any(r.duplicate for r in [*first, other])
    assert first[0].entry == Entry(ROOM, 1, "comment", "m0", 1, ALICE)


async def test_concurrent_appends_are_gap_free(store: Store) -> None:
    results = await asyncio.gather(*(store.append(ROOM, comment(f"m{i}")) for i in range(200)))
    assert sorted(r.entry.seq for r in results) == list(range(1, 201))
    stored = await store.entries_after(ROOM, 0, 1000)
    assert seqs(stored) == list(range(1, 201))
    # Each caller got the seq its own text was stored under.
    by_seq = {e.seq: e.text for e in stored}
    assert all(by_seq[r.entry.seq] == r.entry.text for r in results)
    assert (await store.head(ROOM)).seq == 200


async def test_retry_with_the_same_client_msg_id_stores_nothing(store: Store) -> None:
    first = await store.append(ROOM, comment("hello", cmid="c1"))
    retry = await store.append(ROOM, comment("hello", cmid="c1"))
    assert retry.duplicate and not first.duplicate
    assert retry.entry == first.entry
    assert seqs(await store.entries_after(ROOM, 0, 10)) == [1]
    assert (await store.append(ROOM, comment("next"))).entry.seq == 2


async def test_concurrent_retries_store_once(store: Store) -> None:
    results = await asyncio.gather(
        *(store.append(ROOM, comment("hello", cmid="c1")) for _ in range(20))
    )
    assert [r.duplicate for r in results].count(False) == 1
    assert {r.entry.seq for r in results} == {1}
    assert seqs(await store.entries_after(ROOM, 0, 100)) == [1]


async def test_same_client_msg_id_from_another_author_is_a_new_entry(store: Store) -> None:
    mine = await store.append(ROOM, comment("hi", author=ALICE, cmid="c1"))
    theirs = await store.append(ROOM, comment("hi", author=BOB, cmid="c1"))
    elsewhere = await store.append(OTHER_ROOM, comment("hi", author=ALICE, cmid="c1"))
    assert not (mine.duplicate or theirs.duplicate or elsewhere.duplicate)
    assert (mine.entry.seq, theirs.entry.seq, elsewhere.entry.seq) == (1, 2, 1)


async def test_entries_without_client_msg_id_are_never_duplicates(store: Store) -> None:
    a = await store.append(ROOM, comment("same"))
    b = await store.append(ROOM, comment("same"))
    assert (a.entry.seq, b.entry.seq, b.duplicate) == (1, 2, False)


async def test_data_and_author_round_trip(store: Store) -> None:
    data = {"offer": {"id": "of1", "amount": 4500, "currency": "CAD"}, "tags": ["a", None, True]}
    system = Draft("system", "Order created", 7, None, client_msg_id="sys-1", data=data)
    appended = await store.append(ROOM, system)
    by_alice = await store.append(ROOM, comment("Is it still available?", ts=8))
    assert await store.get_entry(ROOM, 1) == appended.entry
    assert appended.entry.data == data and appended.entry.author is None
    stored = await store.get_entry(ROOM, 2)
    assert stored == by_alice.entry
    assert stored is not None and stored.author == ALICE


async def test_unknown_entry_is_none(store: Store) -> None:
    await store.append(ROOM, comment("one"))
    assert await store.get_entry(ROOM, 2) is None
    assert await store.get_entry(OTHER_ROOM, 1) is None


# Edits and deletions.


async def test_edit_replaces_the_text_and_takes_a_seq(store: Store) -> None:
    await store.append(ROOM, comment("helo", ts=10))
    edit = await store.append(ROOM, Draft("edit", "hello", 20, ALICE, target=1))
    assert edit.entry.seq == 2 and edit.entry.kind == "edit" and edit.entry.target == 1
    target = await store.get_entry(ROOM, 1)
    assert target is not None
    assert (target.text, target.edited_ts, target.deleted, target.ts) == ("hello", 20, False, 10)


async def test_delete_blanks_the_text_and_takes_a_seq(store: Store) -> None:
    await store.append(ROOM, comment("my phone is ...", ts=10))
    delete = await store.append(ROOM, Draft("delete", "", 30, ALICE, target=1))
    assert delete.entry.seq == 2 and delete.entry.kind == "delete"
    target = await store.get_entry(ROOM, 1)
    assert target is not None
    assert (target.text, target.deleted) == ("", True)


async def test_a_deleted_comments_edits_are_read_back_blank(store: Store) -> None:
    await store.append(ROOM, comment("call me"))
    await store.append(ROOM, Draft("edit", "call me at 514 555 0199", 20, ALICE, target=1))
    await store.append(ROOM, comment("another"))
    await store.append(ROOM, Draft("edit", "another, edited", 21, ALICE, target=3))
    await store.append(ROOM, Draft("delete", "", 30, ALICE, target=1))
    log = {e.seq: e for e in await store.entries_after(ROOM, 0, 10)}
    assert (log[1].text, log[2].text, log[2].kind) == ("", "", "edit")
    assert log[4].text == "another, edited"  # the other comment's edit stays
    edit = await store.get_entry(ROOM, 2)
    assert edit is not None and edit.text == ""


INBOX = "user:u1"


def notification(excerpt: str, key: str = "mention:listing:l1:1") -> Draft:
    data = {"kind": "mention", "room": ROOM, "seq": 1, "excerpt": excerpt}
    return Draft("notification", "", 1, client_msg_id=key, data=data)


async def test_r2_a_notification_is_found_by_its_key(store: Store) -> None:
    await store.append(INBOX, notification("first", key="mention:listing:l1:1"))
    second = await store.append(INBOX, notification("second", key="mention:listing:l1:2"))
    found = await store.entry_by_key(INBOX, "mention:listing:l1:2")
    assert found == second.entry
    assert await store.entry_by_key(INBOX, "mention:listing:l1:3") is None
    assert await store.entry_by_key("user:u2", "mention:listing:l1:2") is None
    # A member's own entry is never the hub's, whatever its key.
    await store.append(ROOM, comment("hi", cmid="mention:listing:l1:9"))
    assert await store.entry_by_key(ROOM, "mention:listing:l1:9") is None


async def test_r2_a_notification_follows_its_message_then_is_withdrawn(store: Store) -> None:
    first = (await store.append(INBOX, notification("meet me at 5"))).entry
    changed = {**(first.data or {}), "excerpt": "nice coat"}
    edit = await store.append(INBOX, Draft("edit", "", 2, target=first.seq, data=changed))
    assert edit.entry.to_event()["notification"] == changed
    now = await store.get_entry(INBOX, first.seq)
    assert now is not None and (now.data, now.edited_ts) == (changed, 2)
    assert (await store.read_state(INBOX)).unread == 1

    await store.append(INBOX, Draft("delete", "", 3, target=first.seq))

    log = {e.seq: e for e in await store.entries_after(INBOX, 0, 10)}
    assert (log[1].deleted, log[1].data, log[1].text) == (True, None, "")
    assert log[2].data is None  # the edit's copy of the excerpt goes too
    assert (await store.read_state(INBOX)).unread == 0
    assert (await store.entry_by_key(INBOX, "mention:listing:l1:1")) == log[1]


async def test_edits_and_deletes_are_in_the_log_but_not_in_history(store: Store) -> None:
    await store.append(ROOM, comment("one"))
    await store.append(ROOM, comment("two"))
    await store.append(ROOM, Draft("edit", "ONE", 5, ALICE, target=1))
    await store.append(ROOM, Draft("delete", "", 6, ALICE, target=2))
    await store.append(ROOM, Draft("system", "Listing updated", 7))
    log = await store.entries_after(ROOM, 0, 10)
    assert [(e.seq, e.kind) for e in log] == [
        (1, "comment"),
        (2, "comment"),
        (3, "edit"),
        (4, "delete"),
        (5, "system"),
    ]
    history = await store.history(ROOM, None, 10)
    assert [(e.seq, e.text, e.deleted) for e in history] == [
        (5, "Listing updated", False),
        (2, "", True),
        (1, "ONE", False),
    ]


# Reading back.


async def test_r1_history_pages_newest_first(store: Store) -> None:
    for i in range(1, 8):
        await store.append(ROOM, comment(f"m{i}"))
    await store.append(OTHER_ROOM, comment("not here"))
    first = await store.history(ROOM, None, 3)
    assert seqs(first) == [7, 6, 5]
    second = await store.history(ROOM, first[-1].seq, 3)
    assert seqs(second) == [4, 3, 2]
    last = await store.history(ROOM, second[-1].seq, 3)
    assert seqs(last) == [1]
    assert await store.history(ROOM, 1, 3) == []
    assert await store.history("listing:empty", None, 3) == []


async def test_entries_after_is_ascending_and_limited(store: Store) -> None:
    for i in range(1, 6):
        await store.append(ROOM, comment(f"m{i}"))
    assert seqs(await store.entries_after(ROOM, 0, 2)) == [1, 2]
    assert seqs(await store.entries_after(ROOM, 2, 10)) == [3, 4, 5]
    assert await store.entries_after(ROOM, 5, 10) == []
    assert await store.entries_after("listing:empty", 0, 10) == []


async def test_head_of_an_empty_room_has_a_stable_epoch(store: Store) -> None:
    empty = await store.head(ROOM)
    assert empty.seq == 0 and empty.epoch
    assert await store.head(ROOM) == empty
    await store.append(ROOM, comment("first"))
    await store.append(ROOM, comment("second"))
    assert await store.head(ROOM) == replace(empty, seq=2)


async def test_check_passes_on_an_open_store(store: Store) -> None:
    await store.check()


# Fan-out.


async def test_followed_room_hears_each_entry_before_append_returns(store: Store) -> None:
    heard = Announcements()
    store.fanout.listener = heard
    await store.fanout.follow(ROOM)
    epoch = (await store.head(ROOM)).epoch
    for i in range(1, 4):
        result = await store.append(ROOM, comment(f"m{i}"))
        assert heard.heard[-1] == (result.entry, epoch)
    edit = await store.append(ROOM, Draft("edit", "M1", 9, ALICE, target=1))
    assert heard.heard[-1] == (edit.entry, epoch)
    assert [e.seq for e, _ in heard.heard] == [1, 2, 3, 4]


async def test_concurrent_appends_are_heard_in_seq_order(store: Store) -> None:
    heard = Announcements()
    store.fanout.listener = heard
    await store.fanout.follow(ROOM)
    await asyncio.gather(*(store.append(ROOM, comment(f"m{i}")) for i in range(50)))
    assert [e.seq for e, _ in heard.heard] == list(range(1, 51))


async def test_rooms_not_followed_are_not_heard(store: Store) -> None:
    heard = Announcements()
    store.fanout.listener = heard
    await store.fanout.follow(ROOM)
    await store.append(OTHER_ROOM, comment("elsewhere"))
    await store.fanout.unfollow(ROOM)
    await store.append(ROOM, comment("after unfollow"))
    assert heard.heard == []


async def test_duplicates_are_not_announced_again(store: Store) -> None:
    heard = Announcements()
    store.fanout.listener = heard
    await store.fanout.follow(ROOM)
    await store.append(ROOM, comment("hello", cmid="c1"))
    await store.append(ROOM, comment("hello", cmid="c1"))
    await asyncio.gather(*(store.append(ROOM, comment("hey", cmid="c2")) for _ in range(5)))
    assert [(e.seq, e.client_msg_id) for e, _ in heard.heard] == [(1, "c1"), (2, "c2")]


# Closed rooms, the inbox, mentions.


async def test_a_retry_after_the_room_closed_is_answered_with_its_first_copy(
    store: Store,
) -> None:
    room = "listing:L1"
    author = Author(UserId("u1"), "alice")
    first = await store.append(room, Draft("comment", "hello", 1, author, "c1"))
    await store.append(room, Draft("close", "", 2, data={"reason": "listing_deleted"}))
    retry = await store.append(room, Draft("comment", "hello", 3, author, "c1"))
    assert retry.duplicate and retry.entry == first.entry
    with pytest.raises(ParleyError):  # a new message is refused
        await store.append(room, Draft("comment", "hello", 3, author, "c2"))


async def test_a_closed_room_refuses_members_writes_and_takes_system_entries(
    store: Store,
) -> None:
    room = "listing:L1"
    author = Author(UserId("u1"), "alice")
    assert not await store.room_closed(room)  # never written
    await store.append(room, Draft("comment", "hello", 1, author))
    assert not await store.room_closed(room)
    closed = await store.append(room, Draft("close", "", 2, data={"reason": "listing_deleted"}))
    assert closed.entry.seq == 2
    assert await store.room_closed(room)
    for draft in (
        Draft("comment", "still there?", 3, author),
        Draft("edit", "changed", 3, author, target=1),
        Draft("delete", "", 3, author, target=1),
    ):
        with pytest.raises(ParleyError) as err:
            await store.append(room, draft)
        assert err.value.code == ErrorCode.not_found
    assert (await store.head(room)).seq == 2  # nothing refused took a seq
    await store.append(room, Draft("system", "The listing's status changed.", 4))
    await store.append(room, Draft("reopen", "", 5))
    assert not await store.room_closed(room)
    again = await store.append(room, Draft("comment", "back", 6, author))
    assert again.entry.seq == 5
    assert [e.kind for e in await store.entries_after(room, 0, 10)] == [
        "comment",
        "close",
        "system",
        "reopen",
        "comment",
    ]
    assert [e.seq for e in await store.history(room, None, 10)] == [5, 3, 1]


async def test_read_marks_move_forward_only_and_count_unread_notifications(
    store: Store,
) -> None:
    room = "user:u1"
    for i in range(4):
        await store.append(room, Draft("notification", "", i, data={"kind": "mention", "n": i}))
    assert await store.read_state(room) == ReadState(0, 4)
    marked = await store.append(room, Draft("read", "", 9, target=2))
    assert marked.entry.data == {"up_to": 2, "unread": 2}
    assert marked.entry.to_event()["unread"] == 2
    back = await store.append(room, Draft("read", "", 10, target=1))
    assert back.entry.data == {"up_to": 2, "unread": 2}
    assert await store.read_state(room) == ReadState(2, 2)
    # The inbox's history holds the notifications, not the read marks.
    assert [e.kind for e in await store.history(room, None, 10)] == ["notification"] * 4
    # A read mark read back from the log says the same as when it was stored.
    [stored] = [e for e in await store.entries_after(room, 0, 10) if e.seq == marked.entry.seq]
    assert stored.data == {"up_to": 2, "unread": 2}


async def test_mentions_are_stored_and_replaced_by_edits(store: Store) -> None:
    room = "listing:L1"
    author = Author(UserId("u1"), "alice")
    alice = Mention(UserId("u2"), "Zoé", 0, 4)
    posted = await store.append(room, Draft("comment", "@Zoé hi", 1, author, mentions=(alice,)))
    assert (await store.get_entry(room, 1)) == posted.entry
    sam = Mention(UserId("u3"), "sam", 3, 7)
    await store.append(room, Draft("edit", "hi @sam", 2, author, target=1, mentions=(sam,)))
    edited = await store.get_entry(room, 1)
    assert edited is not None and edited.mentions == (sam,) and edited.text == "hi @sam"
    [after] = await store.entries_after(room, 1, 1)
    assert after.mentions == (sam,)


async def test_presence_counts_connections_of_this_hub(store: Store) -> None:
    presence = store.presence
    room, user = "order:O1", UserId("u1")
    assert not await presence.present(room, user)
    await presence.enter(room, user)
    await presence.enter(room, user)  # a second device
    presence.leave(room, user)
    assert await presence.present(room, user)
    presence.leave(room, user)
    assert not await presence.present(room, user)


async def test_a_burst_of_reads_far_over_the_connection_pool_is_answered_in_full(
    store: Store,
) -> None:
    # Thousands of members connecting at once: each read waits its turn for a
    # connection, none is refused because the pool is busy.
    for n in range(40):
        await store.put_user(User(UserId(f"b{n}"), f"buyer_{n}", "fr-CA"))
    found = await asyncio.gather(*(store.get_user(UserId(f"b{n % 50}")) for n in range(3000)))
    assert sum(user is not None for user in found) == 3000 * 40 // 50
    names = [[username_key(f"buyer_{(n + k) % 40}") for k in range(5)] for n in range(400)]
    pages = await asyncio.gather(*(store.users_by_name(batch) for batch in names))
    assert all(len(page) == 5 for page in pages)
