"""Requests of protocol v1: what ``parse_request`` accepts, and the code for what it refuses."""

from __future__ import annotations

from typing import Any

import pytest

from parley.protocol.errors import ErrorCode, ProtocolError
from parley.protocol.messages import (
    HISTORY_MAX_LIMIT,
    MAX_CLIENT_MSG_ID,
    MAX_REQUEST_ID,
    MAX_TOKEN,
    OPS,
    Block,
    Blocks,
    Connect,
    Conversations,
    Delete,
    Edit,
    History,
    Likers,
    Limits,
    Mute,
    Mutes,
    Notifications,
    NotificationsRead,
    OfferMake,
    OfferRespond,
    Offers,
    OffersEnable,
    OfferToLikers,
    Ping,
    Post,
    Read,
    Request,
    Subscribe,
    Typing,
    Unblock,
    Unmute,
    Unsubscribe,
    parse_request,
    parse_room,
    request_id,
)
from parley.protocol.messages import Report as ReportRequest

LIMITS = Limits(max_text_chars=20)
ROOM = "listing:42"


def refused(obj: object) -> ErrorCode:
    with pytest.raises(ProtocolError) as info:
        parse_request(obj, LIMITS)
    return info.value.code


# Every op, parsed.

GOOD: list[tuple[dict[str, Any], Request]] = [
    ({"id": 1, "op": "connect", "token": "t.o.k"}, Connect(1, "t.o.k")),
    ({"id": 2, "op": "ping"}, Ping(2)),
    ({"id": 3, "op": "subscribe", "room": ROOM}, Subscribe(3, ROOM)),
    ({"id": 3, "op": "subscribe", "room": ROOM, "since": 0}, Subscribe(3, ROOM, 0)),
    (
        {"id": 3, "op": "subscribe", "room": "order:7", "since": 12, "epoch": "e1"},
        Subscribe(3, "order:7", 12, "e1"),
    ),
    ({"id": 3, "op": "subscribe", "room": ROOM, "since": None, "epoch": None}, Subscribe(3, ROOM)),
    ({"id": 4, "op": "unsubscribe", "room": ROOM}, Unsubscribe(4, ROOM)),
    ({"id": 5, "op": "history", "room": ROOM}, History(5, ROOM, None, 50)),
    ({"id": 5, "op": "history", "room": ROOM, "limit": None}, History(5, ROOM, None, 50)),
    (
        {"id": 5, "op": "history", "room": ROOM, "before": 1, "limit": HISTORY_MAX_LIMIT},
        History(5, ROOM, 1, HISTORY_MAX_LIMIT),
    ),
    ({"id": 5, "op": "history", "room": ROOM, "limit": 1}, History(5, ROOM, None, 1)),
    (
        {"id": 6, "op": "post", "room": ROOM, "text": "Still available?", "client_msg_id": "c1"},
        Post(6, ROOM, "Still available?", "c1"),
    ),
    (
        {"id": 6, "op": "post", "room": ROOM, "text": "x" * 20, "client_msg_id": "c" * 64},
        Post(6, ROOM, "x" * 20, "c" * 64),
    ),
    ({"id": 7, "op": "edit", "room": ROOM, "seq": 3, "text": "fixed"}, Edit(7, ROOM, 3, "fixed")),
    ({"id": 8, "op": "delete", "room": ROOM, "seq": 1}, Delete(8, ROOM, 1)),
    (
        {"id": 1, "op": "connect", "token": "t", "since": 4, "epoch": "e1"},
        Connect(1, "t", 4, "e1"),
    ),
    ({"id": 10, "op": "notifications"}, Notifications(10, None, 50)),
    ({"id": 10, "op": "notifications", "before": 9, "limit": 5}, Notifications(10, 9, 5)),
    ({"id": 11, "op": "notifications_read", "up_to": 7}, NotificationsRead(11, 7)),
    ({"id": 0, "op": "ping"}, Ping(0)),
    ({"id": MAX_REQUEST_ID, "op": "ping"}, Ping(MAX_REQUEST_ID)),
    ({"op": "ping", "id": 9}, Ping(9)),
    (
        {"id": 20, "op": "offers_enable", "listing": "42", "enabled": False},
        OffersEnable(20, "42", False),
    ),
    ({"id": 21, "op": "offer_make", "listing": "42", "amount": 4000}, OfferMake(21, "42", 4000)),
    (
        {"id": 22, "op": "offer_respond", "offer": "f1", "action": "counter", "amount": 4500},
        OfferRespond(22, "f1", "counter", 4500),
    ),
    (
        {"id": 23, "op": "offer_respond", "offer": "f1", "action": "accept"},
        OfferRespond(23, "f1", "accept", None),
    ),
    ({"id": 24, "op": "likers", "listing": "42"}, Likers(24, "42", None, 50)),
    (
        {"id": 25, "op": "likers", "listing": "42", "before": 9, "limit": 5},
        Likers(25, "42", 9, 5),
    ),
    (
        {"id": 26, "op": "offer_to_likers", "listing": "42", "amount": 900, "to": "all"},
        OfferToLikers(26, "42", 900, None),
    ),
    (
        {"id": 27, "op": "offer_to_likers", "listing": "42", "amount": 900, "to": ["u1", "u2"]},
        OfferToLikers(27, "42", 900, ("u1", "u2")),
    ),
    ({"id": 28, "op": "offers"}, Offers(28, None, None, 50)),
    (
        {"id": 29, "op": "offers", "listing": "42", "state": "open", "limit": 3},
        Offers(29, "42", "open", 3),
    ),
    ({"id": 30, "op": "read", "room": "order:7", "seq": 12}, Read(30, "order:7", 12)),
    (
        {"id": 31, "op": "conversations", "role": "sales"},
        Conversations(31, "sales", None, 20),
    ),
    (
        {"id": 32, "op": "conversations", "role": "purchases", "before": 5, "limit": 50},
        Conversations(32, "purchases", 5, 50),
    ),
    ({"id": 33, "op": "typing", "room": "order:7"}, Typing(33, "order:7")),
    ({"id": 34, "op": "block", "user": "u2"}, Block(34, "u2")),
    ({"id": 35, "op": "unblock", "user": "u2"}, Unblock(35, "u2")),
    ({"id": 36, "op": "blocks"}, Blocks(36)),
    ({"id": 37, "op": "mute", "room": "order:7"}, Mute(37, "order:7")),
    ({"id": 38, "op": "unmute", "room": ROOM}, Unmute(38, ROOM)),
    ({"id": 39, "op": "mutes"}, Mutes(39)),
    (
        {"id": 40, "op": "report", "room": ROOM, "seq": 3, "reason": "off_platform"},
        ReportRequest(40, ROOM, 3, "off_platform", None),
    ),
    (
        {"id": 41, "op": "report", "room": "order:7", "seq": 1, "reason": "other", "note": "n"},
        ReportRequest(41, "order:7", 1, "other", "n"),
    ),
]

BAD_OFFERS: list[dict[str, Any]] = [
    {"op": "offers_enable", "listing": "42", "enabled": 1},
    {"op": "offers_enable", "listing": "42"},
    {"op": "offer_make", "listing": "42", "amount": 0},
    {"op": "offer_make", "listing": "42", "amount": -5},
    {"op": "offer_make", "listing": "42", "amount": 12.5},
    {"op": "offer_make", "listing": "42", "amount": "12"},
    {"op": "offer_make", "listing": "42", "amount": True},
    {"op": "offer_make", "listing": "42", "amount": 2**53},
    {"op": "offer_make", "listing": "listing:42", "amount": 10},
    {"op": "offer_make", "listing": "", "amount": 10},
    {"op": "offer_respond", "offer": "f1", "action": "counter"},
    {"op": "offer_respond", "offer": "f1", "action": "accept", "amount": 10},
    {"op": "offer_respond", "offer": "f1", "action": "ACCEPT"},
    {"op": "offer_respond", "offer": "f1", "action": "buy"},
    {"op": "offer_respond", "offer": "f 1", "action": "decline"},
    {"op": "likers", "listing": "42", "limit": 0},
    {"op": "likers", "listing": "42", "limit": 101},
    {"op": "offer_to_likers", "listing": "42", "amount": 900, "to": []},
    {"op": "offer_to_likers", "listing": "42", "amount": 900, "to": "everyone"},
    {"op": "offer_to_likers", "listing": "42", "amount": 900, "to": ["u1", 7]},
    {"op": "offer_to_likers", "listing": "42", "amount": 900, "to": [f"u{i}" for i in range(101)]},
    {"op": "offers", "state": "pending"},
    {"op": "offers", "listing": 42},
    {"op": "offers", "extra": 1},
    {"op": "read", "room": "listing:42", "seq": 1},
    {"op": "read", "room": "order:7", "seq": -1},
    {"op": "read", "room": "order:7"},
    {"op": "typing", "room": "listing:42"},
    {"op": "conversations", "role": "buyer"},
    {"op": "conversations", "role": "sales", "limit": 51},
    {"op": "block"},
    {"op": "block", "user": ""},
    {"op": "block", "user": "u 2"},
    {"op": "block", "user": 7},
    {"op": "block", "user": "u" * 65},
    {"op": "unblock", "user": None},
    {"op": "blocks", "limit": 5},
    {"op": "mute", "room": "user:u1"},
    {"op": "mute", "room": "backend:events"},
    {"op": "unmute"},
    {"op": "mutes", "room": ROOM},
    {"op": "report", "room": ROOM, "seq": 1},
    {"op": "report", "room": ROOM, "seq": 0, "reason": "spam"},
    {"op": "report", "room": ROOM, "seq": 1, "reason": "Spam"},
    {"op": "report", "room": ROOM, "seq": 1, "reason": "spam", "note": ""},
    {"op": "report", "room": ROOM, "seq": 1, "reason": "spam", "note": "x" * 501},
    {"op": "report", "room": "user:u1", "seq": 1, "reason": "spam"},
    {"op": "report", "room": ROOM, "seq": 1, "reason": "spam", "reporter": "u2"},
]


@pytest.mark.parametrize("fields", BAD_OFFERS, ids=repr)
def test_bad_offer_requests_are_bad_request(fields: dict[str, Any]) -> None:
    assert refused({"id": 1, **fields}) is ErrorCode.bad_request


@pytest.mark.parametrize(("obj", "expected"), GOOD)
def test_good_request_is_parsed(obj: dict[str, Any], expected: Request) -> None:
    assert parse_request(obj, LIMITS) == expected


def test_every_op_has_a_good_example() -> None:
    assert {str(obj["op"]) for obj, _ in GOOD} == OPS
    every_op = {
        "connect",
        "ping",
        "subscribe",
        "unsubscribe",
        "history",
        "post",
        "edit",
        "delete",
        "notifications",
        "notifications_read",
        "offers_enable",
        "offer_make",
        "offer_respond",
        "likers",
        "offer_to_likers",
        "offers",
        "read",
        "conversations",
        "typing",
        "block",
        "unblock",
        "blocks",
        "mute",
        "unmute",
        "mutes",
        "report",
    }
    assert every_op == OPS


# The envelope.


@pytest.mark.parametrize("obj", [[], [1, 2], "ping", 7, None, True, 1.5])
def test_a_request_that_is_not_an_object_is_bad_frame(obj: object) -> None:
    assert refused(obj) is ErrorCode.bad_frame


@pytest.mark.parametrize(
    "rid",
    ["1", 1.0, True, False, -1, MAX_REQUEST_ID + 1, 2**63, None, [1], {"n": 1}],
    ids=repr,
)
def test_an_unusable_id_is_missing_id(rid: object) -> None:
    assert refused({"id": rid, "op": "ping"}) is ErrorCode.missing_id
    assert request_id({"id": rid, "op": "ping"}) is None


def test_no_id_is_missing_id() -> None:
    assert refused({"op": "ping"}) is ErrorCode.missing_id
    assert request_id({"op": "ping"}) is None


def test_a_usable_id_is_echoed_even_when_the_rest_is_bad() -> None:
    obj = {"id": 41, "op": "nope"}
    assert refused(obj) is ErrorCode.unknown_op
    assert request_id(obj) == 41
    assert request_id("not an object") is None


@pytest.mark.parametrize("op", ["Ping", "PING", "send", "dm", "direct_message", "message", ""])
def test_unknown_op(op: str) -> None:
    assert refused({"id": 1, "op": op}) is ErrorCode.unknown_op


@pytest.mark.parametrize("op", [None, 1, True, ["ping"], {"op": "ping"}], ids=repr)
def test_op_not_a_string_is_bad_request(op: object) -> None:
    assert refused({"id": 1, "op": op}) is ErrorCode.bad_request


def test_no_op_is_bad_request() -> None:
    assert refused({"id": 1}) is ErrorCode.bad_request


def test_r2_no_op_reaches_a_member_directly() -> None:
    # R2: the only ops are room ops and session ops; nothing names a member.
    for op in ("dm", "direct", "private", "whisper", "send_to_user", "open_private_room"):
        assert refused({"id": 1, "op": op, "to": "u2", "text": "hi"}) is ErrorCode.unknown_op
    post = {"id": 1, "op": "post", "room": ROOM, "text": "hi", "client_msg_id": "c"}
    assert refused({**post, "to": "u2"}) is ErrorCode.bad_request


# Fields: unknown, missing, of the wrong type.

BAD_REQUEST: list[dict[str, Any]] = [
    # Unknown fields.
    {"id": 1, "op": "ping", "room": ROOM},
    {"id": 1, "op": "connect", "token": "t", "user": "u1"},
    {"id": 1, "op": "subscribe", "room": ROOM, "from": 3},
    {"id": 1, "op": "unsubscribe", "room": ROOM, "since": 1},
    {"id": 1, "op": "history", "room": ROOM, "after": 3},
    {"id": 1, "op": "post", "room": ROOM, "text": "hi", "client_msg_id": "c", "kind": "system"},
    {"id": 1, "op": "edit", "room": ROOM, "seq": 1, "text": "hi", "author": "u2"},
    {"id": 1, "op": "delete", "room": ROOM, "seq": 1, "reason": "spam"},
    # Missing fields.
    {"id": 1, "op": "connect"},
    {"id": 1, "op": "subscribe"},
    {"id": 1, "op": "unsubscribe"},
    {"id": 1, "op": "history"},
    {"id": 1, "op": "post", "room": ROOM, "text": "hi"},
    {"id": 1, "op": "post", "room": ROOM, "client_msg_id": "c"},
    {"id": 1, "op": "post", "text": "hi", "client_msg_id": "c"},
    {"id": 1, "op": "edit", "room": ROOM, "text": "hi"},
    {"id": 1, "op": "edit", "room": ROOM, "seq": 1},
    {"id": 1, "op": "delete", "room": ROOM},
    # Wrong types: a bool, a string or a float is never an integer.
    {"id": 1, "op": "subscribe", "room": ROOM, "since": True},
    {"id": 1, "op": "subscribe", "room": ROOM, "since": "5"},
    {"id": 1, "op": "subscribe", "room": ROOM, "since": 5.0},
    {"id": 1, "op": "subscribe", "room": ROOM, "since": -1},
    {"id": 1, "op": "subscribe", "room": ROOM, "since": 2**63},
    {"id": 1, "op": "subscribe", "room": ROOM, "since": 2**53},
    {"id": 1, "op": "connect", "token": "t", "since": 2**63 - 1},
    {"id": 1, "op": "edit", "room": ROOM, "seq": 2**53, "text": "hi"},
    {"id": 1, "op": "delete", "room": ROOM, "seq": 2**63 - 1},
    {"id": 1, "op": "history", "room": ROOM, "before": 2**53},
    {"id": 1, "op": "post", "room": ROOM, "text": "hi\0", "client_msg_id": "c"},
    {"id": 1, "op": "edit", "room": ROOM, "seq": 1, "text": "a\x00b"},
    {"id": 1, "op": "subscribe", "room": ROOM, "since": 1, "epoch": 5},
    {"id": 1, "op": "subscribe", "room": ROOM, "epoch": ["e1"]},
    {"id": 1, "op": "history", "room": ROOM, "limit": "10"},
    {"id": 1, "op": "history", "room": ROOM, "limit": True},
    {"id": 1, "op": "history", "room": ROOM, "limit": 10.0},
    {"id": 1, "op": "history", "room": ROOM, "before": "9"},
    {"id": 1, "op": "edit", "room": ROOM, "seq": True, "text": "hi"},
    {"id": 1, "op": "edit", "room": ROOM, "seq": "3", "text": "hi"},
    {"id": 1, "op": "edit", "room": ROOM, "seq": 0, "text": "hi"},
    {"id": 1, "op": "edit", "room": ROOM, "seq": 3, "text": 3},
    {"id": 1, "op": "delete", "room": ROOM, "seq": 1.0},
    {"id": 1, "op": "delete", "room": ROOM, "seq": None},
    {"id": 1, "op": "delete", "room": ROOM, "seq": -4},
    {"id": 1, "op": "post", "room": ROOM, "text": None, "client_msg_id": "c"},
    {"id": 1, "op": "post", "room": ROOM, "text": ["hi"], "client_msg_id": "c"},
    {"id": 1, "op": "post", "room": ROOM, "text": b"hi", "client_msg_id": "c"},
    {"id": 1, "op": "post", "room": ROOM, "text": "hi", "client_msg_id": 7},
    {"id": 1, "op": "post", "room": ROOM, "text": "hi", "client_msg_id": ""},
    {"id": 1, "op": "post", "room": ROOM, "text": "hi", "client_msg_id": "c" * 65},
    {"id": 1, "op": "post", "room": 42, "text": "hi", "client_msg_id": "c"},
    {"id": 1, "op": "connect", "token": 12},
    {"id": 1, "op": "connect", "token": ""},
    {"id": 1, "op": "connect", "token": None},
    {"id": 1, "op": "connect", "token": "t" * (MAX_TOKEN + 1)},
    # Blank texts.
    {"id": 1, "op": "post", "room": ROOM, "text": "", "client_msg_id": "c"},
    {"id": 1, "op": "post", "room": ROOM, "text": " \n\t ", "client_msg_id": "c"},
    {"id": 1, "op": "edit", "room": ROOM, "seq": 3, "text": "   "},
    # History bounds.
    {"id": 1, "op": "history", "room": ROOM, "limit": 0},
    {"id": 1, "op": "history", "room": ROOM, "limit": HISTORY_MAX_LIMIT + 1},
    {"id": 1, "op": "history", "room": ROOM, "limit": -1},
    {"id": 1, "op": "history", "room": ROOM, "before": 0},
]


@pytest.mark.parametrize("obj", BAD_REQUEST, ids=repr)
def test_bad_field_is_bad_request(obj: dict[str, Any]) -> None:
    assert refused(obj) is ErrorCode.bad_request


def test_limits_used_above_are_the_published_ones() -> None:
    assert MAX_CLIENT_MSG_ID == 64
    assert HISTORY_MAX_LIMIT == 100
    assert Limits().max_text_chars == 4000


def test_the_message_names_the_field() -> None:
    with pytest.raises(ProtocolError, match="since"):
        parse_request({"id": 1, "op": "subscribe", "room": ROOM, "since": "5"}, LIMITS)
    with pytest.raises(ProtocolError, match="client_msg_id"):
        parse_request({"id": 1, "op": "post", "room": ROOM, "text": "hi"}, LIMITS)
    with pytest.raises(ProtocolError, match="nickname"):
        parse_request({"id": 1, "op": "ping", "nickname": "x"}, LIMITS)


# Texts over the limit.


@pytest.mark.parametrize(
    "obj",
    [
        {"id": 1, "op": "post", "room": ROOM, "text": "x" * 21, "client_msg_id": "c"},
        {"id": 1, "op": "post", "room": ROOM, "text": "é" * 21, "client_msg_id": "c"},
        {"id": 1, "op": "edit", "room": ROOM, "seq": 1, "text": "x" * 21},
    ],
    ids=["post", "post-non-ascii", "edit"],
)
def test_text_over_max_text_chars_is_too_large(obj: dict[str, Any]) -> None:
    assert refused(obj) is ErrorCode.too_large


def test_max_text_chars_counts_characters_not_bytes() -> None:
    text = "é" * 20  # 40 bytes of UTF-8, 20 characters
    request = parse_request(
        {"id": 1, "op": "post", "room": ROOM, "text": text, "client_msg_id": "c"}, LIMITS
    )
    assert isinstance(request, Post)
    assert request.text == text


# Rooms.

GOOD_ROOMS = [
    "listing:x",
    "order:x",
    "listing:42",
    "order:ord_2024-11.7",
    "listing:" + "a" * 64,
    "order:" + "Z" * 64,
]
BAD_ROOMS: list[object] = [
    "user:x",
    "dm:x",
    "direct:u1:u2",
    "private:x",
    "listing:",
    "order:",
    "listing",
    ":x",
    "",
    "LISTING:x",
    "listing:a b",
    "listing:a/b",
    "listing:x:y",
    "listing:é",
    "listing:x\n",
    " listing:x",
    "listing:" + "a" * 65,
    42,
    None,
    ["listing:x"],
]


@pytest.mark.parametrize("room", GOOD_ROOMS)
def test_listing_and_order_rooms_are_accepted(room: str) -> None:
    assert parse_room(room) == room
    request = parse_request({"id": 1, "op": "subscribe", "room": room}, LIMITS)
    assert request == Subscribe(1, room)


ROOM_OP_FIELDS: dict[str, dict[str, Any]] = {
    "subscribe": {},
    "unsubscribe": {},
    "history": {},
    "post": {"text": "hi", "client_msg_id": "c"},
    "edit": {"seq": 1, "text": "hi"},
    "delete": {"seq": 1},
}


@pytest.mark.parametrize("room", BAD_ROOMS, ids=repr)
@pytest.mark.parametrize("op", sorted(ROOM_OP_FIELDS))
def test_any_other_room_is_bad_request(op: str, room: object) -> None:
    assert refused({"id": 1, "op": op, "room": room, **ROOM_OP_FIELDS[op]}) is ErrorCode.bad_request


@pytest.mark.parametrize("room", BAD_ROOMS, ids=repr)
def test_parse_room_refuses(room: object) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_room(room)
    assert info.value.code is ErrorCode.bad_request


# Shape of the errors.


def test_errors_are_protocol_errors_with_a_short_message() -> None:
    with pytest.raises(ProtocolError) as info:
        parse_request({"id": 1, "op": "x" * 10_000}, LIMITS)
    assert info.value.code is ErrorCode.unknown_op
    assert len(info.value.message) < 100
    assert info.value.to_wire() == {"code": "unknown_op", "message": info.value.message}


def test_the_largest_seq_is_2_53_minus_1() -> None:
    big = 2**53 - 1
    request = parse_request({"id": 1, "op": "subscribe", "room": ROOM, "since": big}, LIMITS)
    assert request.since == big  # type: ignore[union-attr]
