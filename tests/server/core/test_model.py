"""The room log's entries as the wire shows them: messages, edits, deletions."""

from __future__ import annotations

from parley.server.core.model import Author, Draft, Entry, ListingId, Order, OrderId, UserId

AUTHOR = Author(UserId("u7"), "marie")


def test_a_comment_on_the_wire() -> None:
    entry = Entry("listing:42", 3, "comment", "Still available?", 1_800_000_000_000, AUTHOR)
    assert entry.is_message
    assert entry.to_wire() == {
        "room": "listing:42",
        "seq": 3,
        "kind": "comment",
        "author": {"id": "u7", "name": "marie"},
        "text": "Still available?",
        "ts": 1_800_000_000_000,
    }
    assert entry.to_event() == {"event": "message", **entry.to_wire()}


def test_a_system_message_has_no_author_and_carries_data() -> None:
    entry = Entry("order:o1", 1, "system", "Order confirmed.", 5, data={"type": "order_opened"})
    assert entry.to_wire()["author"] is None
    assert entry.to_wire()["data"] == {"type": "order_opened"}


def test_an_edited_and_a_deleted_message_say_so() -> None:
    edited = Entry("listing:42", 3, "comment", "new", 5, AUTHOR, edited_ts=9)
    assert edited.to_wire()["edited_ts"] == 9
    deleted = Entry("listing:42", 3, "comment", "", 5, AUTHOR, deleted=True)
    assert deleted.to_wire()["deleted"] is True
    assert "deleted" not in edited.to_wire()
    assert "edited_ts" not in deleted.to_wire()


def test_edits_and_deletions_are_events_about_a_target() -> None:
    edit = Entry("listing:42", 4, "edit", "fixed", 7, AUTHOR, target=3)
    delete = Entry("listing:42", 5, "delete", "", 8, AUTHOR, target=3)
    assert not edit.is_message
    assert not delete.is_message
    assert edit.to_event() == {
        "event": "message_edited",
        "room": "listing:42",
        "seq": 4,
        "target": 3,
        "text": "fixed",
        "ts": 7,
        "mentions": [],
        "masked_kinds": [],
    }
    assert delete.to_event() == {
        "event": "message_deleted",
        "room": "listing:42",
        "seq": 5,
        "target": 3,
        "ts": 8,
    }


def test_an_entry_is_a_draft_with_a_seq() -> None:
    draft = Draft("comment", "hi", 5, AUTHOR, client_msg_id="c1")
    entry = Entry.from_draft("listing:42", 9, draft)
    assert (entry.room, entry.seq, entry.kind, entry.text, entry.ts) == (
        "listing:42",
        9,
        "comment",
        "hi",
        5,
    )
    assert entry.author == AUTHOR
    assert entry.client_msg_id == "c1"


def test_only_buyer_and_seller_are_parties_to_an_order() -> None:
    order = Order(OrderId("o1"), ListingId("42"), UserId("u-buyer"), UserId("u-seller"))
    assert order.is_party("u-buyer")
    assert order.is_party("u-seller")
    assert not order.is_party("u-other")
