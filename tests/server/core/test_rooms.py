"""Who may do what in which room: R1 (public listing rooms), R2 (nothing private
before an order), R9 (order rooms for buyer and seller only), edits and deletions."""

from __future__ import annotations

import pytest

from parley.protocol.errors import ErrorCode, ParleyError
from parley.protocol.messages import parse_room
from parley.server.core.model import (
    LISTING_STATUSES,
    Author,
    Entry,
    Listing,
    ListingId,
    Money,
    Order,
    OrderId,
    UserId,
)
from parley.server.core.rooms import (
    RoomCheck,
    RoomRef,
    check_may_delete,
    check_may_edit,
    check_may_post,
    check_may_read,
    listing_room,
    order_room,
    room_ref,
    user_room,
)

SELLER, BUYER, MEMBER = "u-seller", "u-buyer", "u-member"
LISTING = Listing(ListingId("42"), UserId(SELLER), "Wool coat", Money(5000, "CAD"))
ORDER = Order(OrderId("o1"), ListingId("42"), UserId(BUYER), UserId(SELLER))
LISTING_ROOM = RoomRef("listing", "42")
ORDER_ROOM = RoomRef("order", "o1")
READ_AND_POST: list[RoomCheck] = [check_may_read, check_may_post]


def refusal(
    check: RoomCheck, user: str, ref: RoomRef, listing: Listing | None, order: Order | None
) -> ErrorCode:
    with pytest.raises(ParleyError) as info:
        check(user, ref, listing, order)
    return info.value.code


def comment(seq: int, author: str, *, deleted: bool = False) -> Entry:
    return Entry(
        "listing:42",
        seq,
        "comment",
        "Is it still available?",
        1_800_000_000_000,
        Author(UserId(author), author),
        deleted=deleted,
    )


def system_message(seq: int) -> Entry:
    return Entry("listing:42", seq, "system", "The seller added 2 photos.", 1_800_000_000_000)


# Room names.


@pytest.mark.parametrize(
    ("name", "ref"),
    [
        ("listing:42", RoomRef("listing", "42")),
        ("order:o-1.a_b", RoomRef("order", "o-1.a_b")),
        ("user:u7", RoomRef("user", "u7")),
    ],
)
def test_room_names_split_and_join(name: str, ref: RoomRef) -> None:
    assert room_ref(name) == ref
    assert ref.name == name


def test_room_name_builders() -> None:
    assert listing_room("42") == "listing:42"
    assert order_room("o1") == "order:o1"
    assert user_room("u7") == "user:u7"


# R1.


@pytest.mark.parametrize("check", READ_AND_POST, ids=lambda c: c.__name__)
@pytest.mark.parametrize("user", [MEMBER, BUYER, SELLER])
def test_r1_any_member_reads_and_posts_in_a_listing_room(check: RoomCheck, user: str) -> None:
    check(user, LISTING_ROOM, LISTING, None)


@pytest.mark.parametrize("status", sorted(LISTING_STATUSES - {"deleted"}))
def test_r1_comments_stay_readable_whatever_the_listing_status(status: str) -> None:
    listing = Listing(LISTING.id, LISTING.seller_id, LISTING.title, LISTING.price, status=status)
    for check in READ_AND_POST:
        check(MEMBER, LISTING_ROOM, listing, None)


@pytest.mark.parametrize("check", READ_AND_POST, ids=lambda c: c.__name__)
def test_r1_unknown_listing_is_not_found(check: RoomCheck) -> None:
    assert refusal(check, MEMBER, LISTING_ROOM, None, None) is ErrorCode.not_found
    # Not even its seller-to-be has a way in before the backend registers it.
    assert refusal(check, SELLER, LISTING_ROOM, None, None) is ErrorCode.not_found


@pytest.mark.parametrize("check", READ_AND_POST, ids=lambda c: c.__name__)
def test_r1_deleted_listing_is_not_found(check: RoomCheck) -> None:
    deleted = Listing(LISTING.id, LISTING.seller_id, LISTING.title, LISTING.price, status="deleted")
    assert refusal(check, MEMBER, LISTING_ROOM, deleted, None) is ErrorCode.not_found


# R2.


@pytest.mark.parametrize("check", READ_AND_POST, ids=lambda c: c.__name__)
@pytest.mark.parametrize("user", [MEMBER, BUYER, SELLER])
def test_r2_order_room_before_order_is_order_required(check: RoomCheck, user: str) -> None:
    # Even the future buyer and seller: before the order, nothing private exists.
    assert refusal(check, user, ORDER_ROOM, LISTING, None) is ErrorCode.order_required
    assert refusal(check, user, ORDER_ROOM, None, None) is ErrorCode.order_required


def test_r2_no_room_kind_other_than_listing_and_order_is_reachable() -> None:
    # A client can name only listing and order rooms...
    names = ["user:u-seller", "dm:u-seller", "direct:u-buyer:u-seller", "private:x", "group:x"]
    for name in names:
        with pytest.raises(ParleyError) as info:
            parse_room(name)
        assert info.value.code is ErrorCode.bad_request
    # ...a member's own channel is not a way in either, not even one's own...
    for user in (BUYER, SELLER):
        for check in READ_AND_POST:
            code = refusal(check, user, RoomRef("user", SELLER), LISTING, ORDER)
            assert code is ErrorCode.forbidden
    # ...and the domain knows no other kind of room.
    for name in ("dm:u-seller", "private:x"):
        with pytest.raises(ParleyError) as info:
            room_ref(name)
        assert info.value.code is ErrorCode.bad_request


# R9.


@pytest.mark.parametrize("check", READ_AND_POST, ids=lambda c: c.__name__)
def test_r9_only_buyer_and_seller_in_order_room(check: RoomCheck) -> None:
    check(BUYER, ORDER_ROOM, None, ORDER)
    check(SELLER, ORDER_ROOM, None, ORDER)
    assert refusal(check, MEMBER, ORDER_ROOM, None, ORDER) is ErrorCode.forbidden
    assert refusal(check, "", ORDER_ROOM, None, ORDER) is ErrorCode.forbidden


# Edits.


def test_members_edit_their_own_comments() -> None:
    target = comment(3, MEMBER)
    assert check_may_edit(MEMBER, target) is target


@pytest.mark.parametrize("user", [BUYER, SELLER])
def test_nobody_edits_somebody_elses_comment_not_even_the_seller(user: str) -> None:
    with pytest.raises(ParleyError) as info:
        check_may_edit(user, comment(3, MEMBER))
    assert info.value.code is ErrorCode.forbidden


@pytest.mark.parametrize("user", [MEMBER, SELLER])
def test_system_messages_cannot_be_edited(user: str) -> None:
    with pytest.raises(ParleyError) as info:
        check_may_edit(user, system_message(1))
    assert info.value.code is ErrorCode.forbidden


@pytest.mark.parametrize(
    "target",
    [
        None,
        comment(3, MEMBER, deleted=True),
        Entry("listing:42", 4, "edit", "new", 0, Author(UserId(MEMBER), MEMBER), target=3),
        Entry("listing:42", 5, "delete", "", 0, Author(UserId(MEMBER), MEMBER), target=3),
    ],
    ids=["missing", "deleted", "an-edit", "a-deletion"],
)
def test_editing_what_is_no_message_is_not_found(target: Entry | None) -> None:
    with pytest.raises(ParleyError) as info:
        check_may_edit(MEMBER, target)
    assert info.value.code is ErrorCode.not_found


# Deletions.


def test_members_delete_their_own_comments() -> None:
    target = comment(3, MEMBER)
    assert check_may_delete(MEMBER, target, LISTING) is target
    assert check_may_delete(BUYER, comment(4, BUYER), None) is not None  # in an order room


def test_seller_deletes_any_comment_on_their_own_listing() -> None:
    target = comment(3, MEMBER)
    assert check_may_delete(SELLER, target, LISTING) is target


def test_seller_of_another_listing_deletes_nothing_here() -> None:
    other = Listing(ListingId("43"), UserId("u-other"), "Boots", Money(2000, "CAD"))
    with pytest.raises(ParleyError) as info:
        check_may_delete("u-other", comment(3, MEMBER), LISTING)
    assert info.value.code is ErrorCode.forbidden
    assert check_may_delete("u-other", comment(3, "u-other"), other) is not None


def test_members_do_not_delete_each_others_comments() -> None:
    with pytest.raises(ParleyError) as info:
        check_may_delete(BUYER, comment(3, MEMBER), LISTING)
    assert info.value.code is ErrorCode.forbidden


def test_in_an_order_room_each_party_deletes_only_their_own() -> None:
    # The hub passes no listing for an order room: the seller has no special right there.
    with pytest.raises(ParleyError) as info:
        check_may_delete(SELLER, comment(3, BUYER), None)
    assert info.value.code is ErrorCode.forbidden


@pytest.mark.parametrize("user", [MEMBER, SELLER])
def test_system_messages_cannot_be_deleted(user: str) -> None:
    with pytest.raises(ParleyError) as info:
        check_may_delete(user, system_message(1), LISTING)
    assert info.value.code is ErrorCode.forbidden


@pytest.mark.parametrize(
    "target", [None, comment(3, MEMBER, deleted=True)], ids=["missing", "already-deleted"]
)
def test_deleting_what_is_no_message_is_not_found(target: Entry | None) -> None:
    with pytest.raises(ParleyError) as info:
        check_may_delete(SELLER, target, LISTING)
    assert info.value.code is ErrorCode.not_found
